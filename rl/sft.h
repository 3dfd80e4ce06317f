// Supervised fine-tuning loss on agent trajectories: next-token NLL on the agent's own tokens
// only (never on the prompt or retrieved text). Used by the warm start and by tests that give a
// tiny policy the search protocol.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "agent/model.h"

namespace strata::rl {

struct SftExample {
  std::vector<int32_t> ids;      // prompt + response tokens
  std::vector<uint8_t> trained;  // per token: 1 = a target of the loss (agent text), 0 = context
};

struct SftLoss {
  torch::Tensor loss;   // scalar: mean NLL over trained tokens (differentiable)
  int64_t tokens = 0;   // trained tokens in the batch
};

// Pads the batch on the right; token i is scored given ids[:i] when trained[i] is 1 (i >= 1).
SftLoss sft_loss(const agent::Model& model, const std::vector<SftExample>& batch);

}  // namespace strata::rl
