// One GRPO-family update from a finished rollout batch: rewards -> advantages (GRPO or
// Stratified GRPO) -> PPO-clip epochs over mini- and micro-batches. Failed trajectories
// (retrieval that never came back) are kept out of the loss and the advantage statistics.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "agent/model.h"
#include "env/trajectory.pb.h"
#include "rl/advantage.h"
#include "rl/loss.h"

namespace strata::rl {

struct UpdateOptions {
  int ppo_epochs = 1;         // passes over the batch per rollout phase
  int mini_batch = 16;        // trajectories per optimiser step
  int micro_batch = 4;        // trajectories per forward/backward (gradient accumulation)
  double grad_clip = 1.0;     // global gradient-norm clip (0 = off)
  double temperature = 1.0;   // logits are divided by this, as when sampling

  void validate() const;
  template <class V>
  void visit(V& v) {
    v("ppo_epochs", ppo_epochs, "passes over the batch per rollout phase");
    v("mini_batch", mini_batch, "trajectories per optimiser step");
    v("micro_batch", micro_batch, "trajectories per forward/backward");
    v("grad_clip", grad_clip, "gradient-norm clip (0 = off)");
    v("temperature", temperature, "logit temperature, as when sampling");
  }
};

struct UpdateStats {
  std::map<std::string, double> scalars;  // loss/pg, loss/kl, entropy, clip_frac, grad_norm, ...
  int optimizer_steps = 0;
  int skipped_steps = 0;                  // non-finite loss or gradients: not applied
};

// Advantages for the batch (0 for failed trajectories, which are excluded from the statistics).
std::vector<double> batch_advantages(const std::vector<env::pb::Trajectory>& batch,
                                     const AdvantageOptions& opts);

// Runs the PPO epochs on `policy` with `optim`. `reference` may be undefined when KL is off.
UpdateStats ppo_update(agent::Model& policy, const agent::Model* reference,
                       torch::optim::Optimizer& optim,
                       const std::vector<env::pb::Trajectory>& batch,
                       const std::vector<double>& advantages, const LossOptions& loss,
                       const UpdateOptions& opts, uint64_t seed);

}  // namespace strata::rl
