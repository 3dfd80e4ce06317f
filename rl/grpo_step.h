// One GRPO-family update from a finished rollout batch: rewards -> advantages (GRPO or
// Stratified GRPO) -> PPO-clip epochs over mini- and micro-batches. Failed trajectories
// (retrieval that never came back) are kept out of the loss and the advantage statistics.
//
// Zero-signal guard: when every advantage of the batch is 0 (e.g. every trajectory of every
// group got the same reward), no trajectory carries a learning signal, yet the loss still has a
// gradient: the KL term, the entropy bonus and ~1e-7 noise between the old and the current
// log-probs (computed over differently padded micro-batches). Adam divides by the running RMS of
// the gradient, so it turns such a tiny gradient into a step of about lr per weight. With
// update.skip_zero_advantage (default) such a batch runs no forward pass and no optimiser step and
// reports update/skipped_zero_adv = 1; the weights and the optimiser state stay bit-identical.
//
// Precision (MixedPrecision): forward passes may run under bf16 autocast on the model's device
// (fp32 weights, bf16 matrix products), or the policy may hold bf16 weights whose gradients are
// accumulated into fp32 master copies that the optimiser updates and that are copied back.
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
  bool skip_zero_advantage = true;      // no optimiser step for a batch whose advantages are all 0
  bool gradient_checkpointing = false;  // recompute decoder layers in backward (less memory)
  // Where the old (proximal) log-probs come from. "auto": when the update is a single on-policy
  // optimiser step (ppo_epochs 1 and every usable trajectory in one mini-batch), the policy has not
  // moved between the rollout and the loss, so they are the update's own forward, detached (the
  // ratio is exactly 1) and no separate forward pass runs; otherwise as "recompute": a separate
  // no-grad forward of the policy before the first optimiser step.
  std::string old_logprobs = "auto";

  void validate() const;
  template <class V>
  void visit(V& v) {
    v("ppo_epochs", ppo_epochs, "passes over the batch per rollout phase");
    v("mini_batch", mini_batch, "trajectories per optimiser step");
    v("micro_batch", micro_batch, "trajectories per forward/backward");
    v("grad_clip", grad_clip, "gradient-norm clip (0 = off)");
    v("temperature", temperature, "logit temperature, as when sampling");
    v("skip_zero_advantage", skip_zero_advantage,
      "skip the optimiser step(s) when every advantage of the batch is 0 (no learning signal)");
    v("gradient_checkpointing", gradient_checkpointing,
      "recompute decoder layers in backward (less activation memory, ~30% more compute)");
    v("old_logprobs", old_logprobs,
      "auto (from the update's own forward when the update is one on-policy step: ppo_epochs 1, one "
      "mini-batch) or recompute (always a separate forward)");
  }
};

struct UpdateStats {
  // loss/pg, loss/kl, entropy, clip_frac, grad_norm, ...: present only when computed (a batch
  // skipped for zero advantage has none of them). entropy is measured over the trained tokens
  // whatever loss.entropy_coef. time/old_logp_s and time/ref_logp_s: the separate no-grad
  // forwards (0 when not run); rollout/logp_mismatch: mean |behaviour - old| log-prob over the
  // trained tokens (the sampler's log-probs against the policy's at rollout time).
  std::map<std::string, double> scalars;
  int optimizer_steps = 0;
  int skipped_steps = 0;                  // non-finite loss or gradients: not applied
  bool skipped_zero_advantage = false;    // every advantage was 0: nothing was run
  bool old_logprobs_reused = false;       // old log-probs taken from the update's own forward
  int64_t old_logprob_rows = 0;           // trajectories scored by a separate old-log-prob forward
  int64_t ref_logprob_rows = 0;           // trajectories scored by the reference policy
};

// |A| at or below this counts as no signal (a constant group gives ~1e-11 after rounding).
constexpr double kZeroAdvantage = 1e-6;

// True when every usable (not failed) trajectory's advantage is (near) 0.
bool all_advantages_zero(const std::vector<env::pb::Trajectory>& batch,
                         const std::vector<double>& advantages);

// How ppo_update runs its passes. Default: fp32 as the weights are.
struct MixedPrecision {
  bool autocast_bf16 = false;          // every forward under bf16 autocast on the model's device
  // bf16_master: fp32 copies of policy.parameters() (same order), which `optim` holds. Each
  // micro-batch's bf16 gradients are added to their fp32 grads; after the step the masters are
  // copied (rounded) back into the bf16 weights. Empty = the optimiser holds the weights.
  std::vector<torch::Tensor> master;
};

// Copies the fp32 masters into the model's (bf16) weights, rounding to nearest.
void copy_master_to_model(const std::vector<torch::Tensor>& master, const agent::Model& model);

// RAII: bf16 autocast for `device`'s type while alive (no-op when `on` is false).
class AutocastBf16 {
 public:
  AutocastBf16(bool on, torch::Device device);
  ~AutocastBf16();
  AutocastBf16(const AutocastBf16&) = delete;
  AutocastBf16& operator=(const AutocastBf16&) = delete;

 private:
  bool on_;
  c10::DeviceType type_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

// Advantages for the batch (0 for failed trajectories, which are excluded from the statistics).
std::vector<double> batch_advantages(const std::vector<env::pb::Trajectory>& batch,
                                     const AdvantageOptions& opts);

// Runs the PPO epochs on `policy` with `optim`. `reference` may be null when KL is off; it is
// not run when loss.kl_estimator is off or loss.kl_coef is 0, even when given.
UpdateStats ppo_update(agent::Model& policy, const agent::Model* reference,
                       torch::optim::Optimizer& optim,
                       const std::vector<env::pb::Trajectory>& batch,
                       const std::vector<double>& advantages, const LossOptions& loss,
                       const UpdateOptions& opts, uint64_t seed,
                       const MixedPrecision& precision = {});

}  // namespace strata::rl
