// Training-side scoring: per-token log-probabilities (and entropies) of given targets under the
// policy, differentiable, over a padded batch.
#pragma once

#include <torch/torch.h>

#include "agent/model.h"

namespace strata::agent {

struct LogprobOptions {
  bool with_entropy = false;            // also return the entropy of each next-token distribution
  bool entropy_grad = true;             // entropy differentiable (false: measured only, no graph kept)
  bool gradient_checkpointing = false;  // recompute decoder layers in backward (less memory)
  int64_t vocab_chunk_tokens = 1024;    // tokens per lm_head chunk; bounds the [n, V] temporaries
  double temperature = 1.0;             // logits are divided by this before the softmax
};

struct TokenLogprobs {
  torch::Tensor logprobs;  // [B, T] float32; 0 where target_mask is 0
  torch::Tensor entropy;   // [B, T] float32 when with_entropy, else undefined
};

// input_ids, attention_mask: [B, T] (mask 1 = token, 0 = padding; undefined = all ones).
// targets: [B, T] ids scored at each position: logprobs[b, t] = log p(targets[b, t] | ids[b, :t+1]).
// target_mask: [B, T] (undefined = attention_mask) zeroes positions that are not scored.
// Memory: logits are produced chunk by chunk; only [chunk, V] float32 temporaries live at once
// in forward (backward keeps, per chunk, what log_softmax needs).
TokenLogprobs token_logprobs(const Model& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& targets, const torch::Tensor& target_mask = {},
                             const LogprobOptions& options = {});

// Convenience for causal scoring of the sequence itself: logprobs[b, t] scores ids[b, t+1] given
// ids[b, :t+1]; returns [B, T-1] (with entropy likewise), masked by the mask of the target token.
TokenLogprobs sequence_logprobs(const Model& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const LogprobOptions& options = {});

}  // namespace strata::agent
