#include "rl/loss.h"

#include "core/error.h"

namespace strata::rl {

void LossOptions::validate() const {
  STRATA_CHECK(clip_low >= 0 && clip_low < 1, "clip_low: expected [0, 1), got " << clip_low);
  STRATA_CHECK(clip_high >= 0, "clip_high: expected >= 0, got " << clip_high);
  STRATA_CHECK(dual_clip == 0 || dual_clip > 1,
               "dual_clip: expected 0 (off) or a value > 1, got " << dual_clip);
  STRATA_CHECK(log_ratio_clamp > 0, "log_ratio_clamp: expected > 0, got " << log_ratio_clamp);
  STRATA_CHECK(kl_coef >= 0, "kl_coef: expected >= 0, got " << kl_coef);
  STRATA_CHECK(norm_length >= 0, "norm_length: expected >= 0, got " << norm_length);
  STRATA_CHECK(tis_cap == 0 || tis_cap >= 1, "tis_cap: expected 0 (off) or a value >= 1, got " << tis_cap);
}

torch::Tensor aggregate(const torch::Tensor& values, const torch::Tensor& mask,
                        Aggregation mode, int norm_length) {
  const auto m = mask.to(values.scalar_type());
  // where(), not a product: a NaN or inf at a masked-out position must not leak into the sum.
  const auto masked = torch::where(mask > 0, values, torch::zeros_like(values));  // [B, T]
  if (mode == Aggregation::kTokenMean) return masked.sum() / m.sum().clamp_min(1.0);
  const auto per_seq_sum = masked.sum(1);  // [B]
  const auto seq_tokens = m.sum(1);        // [B]
  const auto has_tokens = (seq_tokens > 0).to(values.scalar_type());
  const auto num_seqs = has_tokens.sum().clamp_min(1.0);
  if (mode == Aggregation::kSeqMeanTokenMean)
    return (per_seq_sum / seq_tokens.clamp_min(1.0) * has_tokens).sum() / num_seqs;
  if (mode == Aggregation::kSeqMeanTokenSum) return (per_seq_sum * has_tokens).sum() / num_seqs;
  STRATA_ASSERT(mode == Aggregation::kSeqMeanTokenSumNorm, "aggregation " << static_cast<int>(mode));
  const double norm = norm_length > 0 ? norm_length : static_cast<double>(values.size(1));
  return (per_seq_sum * has_tokens).sum() / num_seqs / norm;
}

torch::Tensor kl_estimate(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs,
                          KlEstimator estimator) {
  const auto d = ref_logprobs - logprobs;
  switch (estimator) {
    case KlEstimator::kK1: return -d;
    case KlEstimator::kK2: return 0.5 * d * d;
    case KlEstimator::kK3: return (torch::exp(d) - d - 1).clamp(-10.0, 10.0);
    case KlEstimator::kOff: break;
  }
  STRATA_FAIL("kl_estimator: kl_estimate needs k1, k2 or k3, got off");
}

torch::Tensor tis_weights(const torch::Tensor& old_logprobs, const torch::Tensor& rollout_logprobs, double cap,
                          double log_ratio_clamp) {
  torch::NoGradGuard ng;
  const auto log_ratio = (old_logprobs.detach() - rollout_logprobs.detach()).clamp(-log_ratio_clamp, log_ratio_clamp);
  return torch::exp(log_ratio).clamp_max(cap);
}

LossOutput policy_loss(const LossInputs& in, const LossOptions& opts) {
  opts.validate();
  STRATA_CHECK(in.logprobs.dim() == 2, "logprobs must be [B, T], got " << in.logprobs.sizes());
  STRATA_CHECK(in.old_logprobs.sizes() == in.logprobs.sizes() && in.mask.sizes() == in.logprobs.sizes(),
               "logprobs, old_logprobs and mask must have the same [B, T] shape");
  const auto dtype = in.logprobs.scalar_type();
  const auto mask = in.mask.to(dtype);  // [B, T]
  auto adv = in.advantages.to(dtype);
  if (adv.dim() == 1) adv = adv.unsqueeze(1).expand_as(in.logprobs);  // [B, T]

  const auto log_ratio =
      (in.logprobs - in.old_logprobs.detach()).clamp(-opts.log_ratio_clamp, opts.log_ratio_clamp);
  const auto ratio = torch::exp(log_ratio);  // [B, T]
  const auto pg1 = -adv * ratio;
  const auto pg2 = -adv * ratio.clamp(1.0 - opts.clip_low, 1.0 + opts.clip_high);
  auto pg = torch::max(pg1, pg2);
  torch::Tensor dual_hit;
  if (opts.dual_clip > 1) {
    const auto bound = -adv * opts.dual_clip;  // positive when adv < 0
    const auto neg = adv < 0;
    dual_hit = neg & (pg > bound);
    pg = torch::where(neg, torch::min(pg, bound), pg);
  }
  torch::Tensor tis_ratio;  // before the cap
  const bool tis = in.rollout_logprobs.defined() && opts.tis_cap > 0;
  if (tis) {
    STRATA_CHECK(in.rollout_logprobs.sizes() == in.logprobs.sizes(), "rollout_logprobs must be [B, T] as logprobs");
    {
      torch::NoGradGuard ng;
      tis_ratio = torch::exp((in.old_logprobs.detach() - in.rollout_logprobs.to(dtype))
                                 .clamp(-opts.log_ratio_clamp, opts.log_ratio_clamp));
    }
    pg = pg * tis_ratio.clamp_max(opts.tis_cap);
  }

  LossOutput out;
  auto loss = aggregate(pg, mask, opts.aggregation, opts.norm_length);
  out.pg_loss = loss.item<double>();
  if (opts.kl_on()) {
    STRATA_CHECK(in.ref_logprobs.defined(), "KL is on (" << config::name_of(opts.kl_estimator)
                                                          << ") but no reference log-probs were given");
    const auto kl = aggregate(kl_estimate(in.logprobs, in.ref_logprobs.detach(), opts.kl_estimator),
                              mask, opts.aggregation, opts.norm_length);
    out.kl = kl.item<double>();
    loss = loss + opts.kl_coef * kl;
  }
  if (in.entropy.defined()) {
    const auto ent = aggregate(in.entropy, mask, opts.aggregation, opts.norm_length);
    out.entropy = ent.item<double>();
    if (opts.entropy_coef != 0) loss = loss - opts.entropy_coef * ent;
  }
  out.loss = loss;

  torch::NoGradGuard no_grad;
  const double n = mask.sum().item<double>();
  out.tokens = static_cast<int64_t>(n);
  const double denom = n > 0 ? n : 1.0;
  const auto in_mask = mask > 0;
  auto masked_sum = [&](const torch::Tensor& v) {
    return torch::where(in_mask, v.to(dtype), torch::zeros_like(mask)).sum().item<double>();
  };
  out.clip_frac = masked_sum(pg2 > pg1) / denom;
  if (dual_hit.defined()) out.dual_clip_frac = masked_sum(dual_hit) / denom;
  out.ratio_mean = masked_sum(ratio) / denom;
  if (tis) {
    out.tis = true;
    out.tis_ratio_sum = masked_sum(tis_ratio);
    out.tis_ratio_max = n > 0 ? torch::where(in_mask, tis_ratio, torch::zeros_like(tis_ratio)).max().item<double>() : 0;
    out.tis_capped = static_cast<int64_t>(masked_sum(tis_ratio > opts.tis_cap));
  }
  out.approx_kl_behaviour = masked_sum(-log_ratio) / denom;
  return out;
}

}  // namespace strata::rl
