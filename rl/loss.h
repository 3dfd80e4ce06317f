// The policy loss of GRPO-family training: PPO's clipped surrogate on per-token importance
// ratios, KL to a frozen reference policy, an optional entropy bonus, the aggregation modes of
// veRL, and truncated importance sampling (TIS) for rollouts sampled from another copy of the
// weights. Every term and every logged metric uses the same loss mask (policy tokens only; the
// prompt and retrieved tokens are 0).
//
// TIS: when the rollouts sample from a bf16 or int8 copy of the policy, the tokens come from
// pi_rollout, not from pi_trained (whose log-probs the loss's old log-probs are). PPO's ratio
// pi / pi_old then corrects for the policy's moves but not for the sampler's mismatch: every
// token's gradient is weighted by how likely the *sampler* found it, so tokens the copy
// over-samples pull harder, and the expected gradient is that of another policy (a bias that
// grows with the mismatch and, left alone, can end in collapse, as reported for vLLM samplers).
// The correction weights each token's policy-gradient term by
//   w = min(exp(logp_old - logp_rollout), C),   C = tis_cap
// (as veRL, slime and SkyRL do): the importance weight of the sample, truncated at C to bound
// its variance. The weights carry no gradient; the KL and entropy terms are not weighted.
#pragma once

#include <torch/torch.h>

#include <string>

#include "core/config.h"

namespace strata::rl {

// The per-token KL estimator (see kl_estimate), or off.
enum class KlEstimator { kK1, kK2, kK3, kOff };
inline constexpr config::EnumName<KlEstimator> kKlEstimatorNames[] = {
    {KlEstimator::kK1, "k1"}, {KlEstimator::kK2, "k2"}, {KlEstimator::kK3, "k3"}, {KlEstimator::kOff, "off"}};
inline config::EnumTable<KlEstimator> enum_names(KlEstimator) { return kKlEstimatorNames; }

// How a [B, T] per-token quantity becomes one number (veRL's loss_agg_mode).
enum class Aggregation { kTokenMean, kSeqMeanTokenMean, kSeqMeanTokenSum, kSeqMeanTokenSumNorm };
inline constexpr config::EnumName<Aggregation> kAggregationNames[] = {
    {Aggregation::kTokenMean, "token-mean"},
    {Aggregation::kSeqMeanTokenMean, "seq-mean-token-mean"},
    {Aggregation::kSeqMeanTokenSum, "seq-mean-token-sum"},
    {Aggregation::kSeqMeanTokenSumNorm, "seq-mean-token-sum-norm"}};
inline config::EnumTable<Aggregation> enum_names(Aggregation) { return kAggregationNames; }

struct LossOptions {
  double clip_low = 0.2;        // ratio floor 1 - clip_low
  double clip_high = 0.2;       // ratio ceiling 1 + clip_high (DAPO suggests 0.28)
  double dual_clip = 0.0;       // c > 1 bounds the loss of negative advantages at c*|A|; 0 = off
  double log_ratio_clamp = 20;  // |log ratio| is clamped before exp
  KlEstimator kl_estimator = KlEstimator::kK3;  // k1, k2, k3 (low-variance) or off
  double kl_coef = 0.001;       // weight of the KL term (ignored when kl_estimator is off)
  double entropy_coef = 0.0;    // weight of the entropy bonus (subtracted from the loss)
  Aggregation aggregation = Aggregation::kTokenMean;
  int norm_length = 0;          // seq-mean-token-sum-norm divides each sequence's sum by this;
                                // 0 = the batch's padded length T
  double tis_cap = 2.0;         // TIS cap C (used when rollout log-probs are given); 0 = TIS off

  void validate() const;  // throws strata::Error naming the bad key and value
  bool kl_on() const { return kl_estimator != KlEstimator::kOff && kl_coef > 0; }
  template <class V>
  void visit(V& v) {
    v("clip_low", clip_low, "PPO ratio floor is 1 - clip_low");
    v("clip_high", clip_high, "PPO ratio ceiling is 1 + clip_high");
    v("dual_clip", dual_clip, "dual-clip constant c > 1 for negative advantages; 0 = off");
    v("log_ratio_clamp", log_ratio_clamp, "clamp of |log ratio| before exp");
    v("kl_estimator", kl_estimator, "k1, k2, k3 or off");
    v("kl_coef", kl_coef, "weight of the KL-to-reference term");
    v("entropy_coef", entropy_coef, "weight of the entropy bonus");
    v("aggregation", aggregation,
      "token-mean, seq-mean-token-mean, seq-mean-token-sum or seq-mean-token-sum-norm");
    v("norm_length", norm_length, "divisor of seq-mean-token-sum-norm; 0 = padded length");
    v("tis_cap", tis_cap,
      "truncated importance sampling for rollouts from a bf16/int8 copy: each token's policy-gradient term is "
      "weighted by min(pi_trained_old / pi_rollout, tis_cap); 0 = off (>= 1 otherwise)");
  }
};

struct LossInputs {
  torch::Tensor logprobs;      // [B, T] current policy log-probs of the taken tokens (grad)
  torch::Tensor old_logprobs;  // [B, T] behaviour log-probs (no grad)
  torch::Tensor ref_logprobs;  // [B, T] reference policy log-probs; undefined when KL is off
  torch::Tensor advantages;    // [B] per sequence, or [B, T] per token
  torch::Tensor mask;          // [B, T] 1 for policy tokens, 0 for prompt/observation/padding
  torch::Tensor entropy;       // [B, T] per-token entropy; undefined when entropy_coef is 0
  // [B, T] the sampler's log-probs of the taken tokens when it was another copy of the weights
  // (bf16, int8): TIS applies (when tis_cap > 0). Undefined = the policy sampled itself.
  torch::Tensor rollout_logprobs;
};

struct LossOutput {
  torch::Tensor loss;       // scalar, differentiable
  double pg_loss = 0;       // aggregated clipped surrogate
  double kl = 0;            // aggregated KL estimate (0 when off)
  double entropy = 0;       // aggregated entropy (0 when not given)
  double clip_frac = 0;     // share of masked tokens whose ratio was clipped
  double dual_clip_frac = 0;
  double ratio_mean = 0;    // mean importance ratio over masked tokens
  double approx_kl_behaviour = 0;  // mean (old - new) log-prob over masked tokens
  int64_t tokens = 0;       // masked-in tokens
  // TIS (only when it ran): the ratio exp(logp_old - logp_rollout) before the cap, over masked
  // tokens: sum (for means across micro-batches), max, and how many exceeded the cap.
  bool tis = false;
  double tis_ratio_sum = 0, tis_ratio_max = 0;
  int64_t tis_capped = 0;
};

// TIS weights min(exp(old_logprobs - rollout_logprobs), cap) per token ([B, T], no gradient); the
// log ratio is clamped to +-log_ratio_clamp first, as PPO's.
torch::Tensor tis_weights(const torch::Tensor& old_logprobs, const torch::Tensor& rollout_logprobs, double cap,
                          double log_ratio_clamp = 20);

// Aggregates a [B, T] per-token quantity under the mask with the given mode.
torch::Tensor aggregate(const torch::Tensor& values, const torch::Tensor& mask,
                        Aggregation mode, int norm_length);

// Per-token KL estimate of the current policy from the reference, from log-probs of the taken
// tokens: with d = ref - logp, k1 = -d, k2 = d^2 / 2, k3 = exp(d) - d - 1 (clamped to [-10, 10]).
torch::Tensor kl_estimate(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs,
                          KlEstimator estimator);

LossOutput policy_loss(const LossInputs& in, const LossOptions& opts);

}  // namespace strata::rl
