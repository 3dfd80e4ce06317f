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
  // The lm_head (the largest matrix product for a small model with a big vocabulary) runs only
  // at the scored positions: for RL and SFT batches that is the agent's own tokens, a fraction of
  // the sequence (prompt, retrieved text and padding are skipped).
  Tensor rows;  // [n] indices of scored positions, when fewer than all
  if (tmask.defined()) {
    rows = tmask.to(hidden.device()).reshape({B * T}).nonzero().squeeze(1);
    if (rows.size(0) == B * T) rows = Tensor();  // every position scored: no gather/scatter
  }
  Tensor h = rows.defined() ? hidden.index_select(0, rows) : hidden;
  Tensor t = rows.defined() ? tgt.index_select(0, rows) : tgt;
  const int64_t N = h.size(0);
  std::vector<Tensor> lp_parts, ent_parts;
  for (int64_t s = 0; s < N; s += options.vocab_chunk_tokens) {
    const int64_t n = std::min(options.vocab_chunk_tokens, N - s);
    // logits: [n, V] in float32 for a stable log_softmax
    Tensor logits = model.lm_head(h.narrow(0, s, n)).to(torch::kFloat32);
    if (options.temperature != 1.0) logits = logits / options.temperature;
    Tensor logp = torch::log_softmax(logits, -1);
    lp_parts.push_back(logp.gather(1, t.narrow(0, s, n).unsqueeze(1)).squeeze(1));
    if (options.with_entropy) {
      if (options.entropy_grad) {
        ent_parts.push_back(-(logp.exp() * logp).sum(-1));
      } else {
        // Measured, not trained: no autograd graph (and no saved [n, V] temporaries) for it.
        torch::NoGradGuard ng;
        const Tensor d = logp.detach();
        ent_parts.push_back(-(d.exp() * d).sum(-1));
      }
    }
  }
  auto place = [&](std::vector<Tensor>& parts) {
    Tensor v = parts.empty() ? torch::zeros({0}, hidden.options().dtype(torch::kFloat32)) : torch::cat(parts);
    if (!tmask.defined()) return v.view({B, T});
    Tensor m = tmask.to(v.device()).to(torch::kFloat32).reshape({B * T});
    if (!rows.defined()) return (v * m).view({B, T});
    // Scattered back (differentiably) into a zero-filled [B, T]; a scored position keeps its mask
    // weight, as when every position was scored and then multiplied by the mask.
    return torch::zeros({B * T}, v.options()).index_put({rows}, v * m.index_select(0, rows)).view({B, T});
  };
  TokenLogprobs out;
  out.logprobs = place(lp_parts);
  if (options.with_entropy) out.entropy = place(ent_parts);
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
