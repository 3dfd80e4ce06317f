#include "agent/logprobs.h"

#include "core/error.h"

namespace strata::agent {

using torch::Tensor;

TokenLogprobs token_logprobs(const Model& model, const Tensor& input_ids, const Tensor& attention_mask,
                             const Tensor& targets, const Tensor& target_mask, const LogprobOptions& options) {
  STRATA_CHECK(targets.sizes() == input_ids.sizes(), "targets " << targets.sizes() << " must match input_ids "
                                                                << input_ids.sizes());
  STRATA_CHECK(options.temperature > 0, "temperature must be positive, got " << options.temperature);
  STRATA_CHECK(options.vocab_chunk_tokens > 0, "vocab_chunk_tokens must be positive");
  const int64_t B = input_ids.size(0), T = input_ids.size(1), H = model.config().hidden_size;
  ForwardOptions fo;
  fo.gradient_checkpointing = options.gradient_checkpointing;
  Tensor hidden = model.hidden_states(input_ids, attention_mask, {}, fo).reshape({B * T, H});  // [N, H]
  Tensor tgt = targets.to(hidden.device(), torch::kInt64).reshape({B * T});
  Tensor tmask = target_mask.defined() ? target_mask : attention_mask;
  std::vector<Tensor> lp_parts, ent_parts;
  for (int64_t s = 0; s < B * T; s += options.vocab_chunk_tokens) {
    const int64_t n = std::min(options.vocab_chunk_tokens, B * T - s);
    // logits: [n, V] in float32 for a stable log_softmax
    Tensor logits = model.lm_head(hidden.narrow(0, s, n)).to(torch::kFloat32);
    if (options.temperature != 1.0) logits = logits / options.temperature;
    Tensor logp = torch::log_softmax(logits, -1);
    lp_parts.push_back(logp.gather(1, tgt.narrow(0, s, n).unsqueeze(1)).squeeze(1));
    if (options.with_entropy) ent_parts.push_back(-(logp.exp() * logp).sum(-1));
  }
  TokenLogprobs out;
  out.logprobs = torch::cat(lp_parts).view({B, T});
  if (options.with_entropy) out.entropy = torch::cat(ent_parts).view({B, T});
  if (tmask.defined()) {
    Tensor m = tmask.to(out.logprobs.device()).to(torch::kFloat32);
    out.logprobs = out.logprobs * m;
    if (out.entropy.defined()) out.entropy = out.entropy * m;
  }
  return out;
}

TokenLogprobs sequence_logprobs(const Model& model, const Tensor& input_ids, const Tensor& attention_mask,
                                const LogprobOptions& options) {
  const int64_t T = input_ids.size(1);
  STRATA_CHECK(T >= 2, "sequence_logprobs needs at least 2 tokens, got " << T);
  Tensor targets = torch::cat({input_ids.narrow(1, 1, T - 1), input_ids.narrow(1, T - 1, 1)}, 1);
  Tensor tmask;
  if (attention_mask.defined())
    tmask = torch::cat({attention_mask.narrow(1, 1, T - 1), torch::zeros_like(attention_mask.narrow(1, 0, 1))}, 1);
  else
    tmask = torch::cat({torch::ones({input_ids.size(0), T - 1}), torch::zeros({input_ids.size(0), 1})}, 1);
  TokenLogprobs full = token_logprobs(model, input_ids, attention_mask, targets, tmask, options);
  TokenLogprobs out;
  out.logprobs = full.logprobs.narrow(1, 0, T - 1);
  if (full.entropy.defined()) out.entropy = full.entropy.narrow(1, 0, T - 1);
  return out;
}

}  // namespace strata::agent
