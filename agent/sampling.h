// Next-token sampling: greedy, temperature, top-k, top-p, one seeded strata::Rng per sequence.
// Rows are processed one at a time on CPU so that a sequence's draw never depends on which
// other sequences share its batch.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "core/rng.h"

namespace strata::agent {

struct SamplingOptions {
  double temperature = 1.0;  // 0 = greedy (argmax); otherwise logits are divided by it
  double top_p = 1.0;        // nucleus: keep the smallest set of tokens with mass >= top_p (1 = off)
  int64_t top_k = 0;         // keep the k most likely tokens (0 = off)
  // Throws strata::Error naming the bad field.
  void validate() const;
};

struct SampledToken {
  int64_t id = -1;
  // log-probability of `id` under the distribution it was drawn from (after temperature, top-k
  // and top-p); for greedy decoding, under the untempered softmax of the logits.
  float logprob = 0.0f;
};

// logits: [V] for one sequence (any device, any float dtype).
SampledToken sample_token(const torch::Tensor& logits, const SamplingOptions& options, Rng& rng);

// logits: [B, V]; options and rngs: one per row.
std::vector<SampledToken> sample_tokens(const torch::Tensor& logits, const std::vector<const SamplingOptions*>& options,
                                        const std::vector<Rng*>& rngs);

}  // namespace strata::agent
