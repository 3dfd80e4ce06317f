#include "rl/loss.h"

#include "core/error.h"

namespace strata::rl {

void LossOptions::validate() const {
  STRATA_CHECK(clip_low >= 0 && clip_low < 1, "loss.clip_low: expected [0, 1), got " << clip_low);
  STRATA_CHECK(clip_high >= 0, "loss.clip_high: expected >= 0, got " << clip_high);
  STRATA_CHECK(dual_clip == 0 || dual_clip > 1,
               "loss.dual_clip: expected 0 (off) or a value > 1, got " << dual_clip);
  STRATA_CHECK(log_ratio_clamp > 0, "loss.log_ratio_clamp: expected > 0, got " << log_ratio_clamp);
  STRATA_CHECK(kl_estimator == "k1" || kl_estimator == "k2" || kl_estimator == "k3" ||
                   kl_estimator == "off",
               "loss.kl_estimator: expected k1, k2, k3 or off, got \"" << kl_estimator << "\"");
  STRATA_CHECK(kl_coef >= 0, "loss.kl_coef: expected >= 0, got " << kl_coef);
  STRATA_CHECK(aggregation == "token-mean" || aggregation == "seq-mean-token-mean" ||
                   aggregation == "seq-mean-token-sum" || aggregation == "seq-mean-token-sum-norm",
               "loss.aggregation: unknown mode \"" << aggregation << "\"");
  STRATA_CHECK(norm_length >= 0, "loss.norm_length: expected >= 0, got " << norm_length);
}

torch::Tensor aggregate(const torch::Tensor& values, const torch::Tensor& mask,
                        const std::string& mode, int norm_length) {
  const auto m = mask.to(values.scalar_type());
  // where(), not a product: a NaN or inf at a masked-out position must not leak into the sum.
  const auto masked = torch::where(mask > 0, values, torch::zeros_like(values));  // [B, T]
  if (mode == "token-mean") return masked.sum() / m.sum().clamp_min(1.0);
  const auto per_seq_sum = masked.sum(1);  // [B]
  const auto seq_tokens = m.sum(1);        // [B]
  const auto has_tokens = (seq_tokens > 0).to(values.scalar_type());
  const auto num_seqs = has_tokens.sum().clamp_min(1.0);
  if (mode == "seq-mean-token-mean")
    return (per_seq_sum / seq_tokens.clamp_min(1.0) * has_tokens).sum() / num_seqs;
  if (mode == "seq-mean-token-sum") return (per_seq_sum * has_tokens).sum() / num_seqs;
  if (mode == "seq-mean-token-sum-norm") {
    const double norm = norm_length > 0 ? norm_length : static_cast<double>(values.size(1));
    return (per_seq_sum * has_tokens).sum() / num_seqs / norm;
  }
  STRATA_FAIL("loss.aggregation: unknown mode \"" << mode << "\"");
}

torch::Tensor kl_estimate(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs,
                          const std::string& estimator) {
  const auto d = ref_logprobs - logprobs;
  if (estimator == "k1") return -d;
  if (estimator == "k2") return 0.5 * d * d;
  if (estimator == "k3") return (torch::exp(d) - d - 1).clamp(-10.0, 10.0);
  STRATA_FAIL("loss.kl_estimator: expected k1, k2 or k3, got \"" << estimator << "\"");
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

  LossOutput out;
  auto loss = aggregate(pg, mask, opts.aggregation, opts.norm_length);
  out.pg_loss = loss.item<double>();
  if (opts.kl_estimator != "off" && opts.kl_coef > 0) {
    STRATA_CHECK(in.ref_logprobs.defined(), "KL is on (" << opts.kl_estimator
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
  out.approx_kl_behaviour = masked_sum(-log_ratio) / denom;
  return out;
}

}  // namespace strata::rl
