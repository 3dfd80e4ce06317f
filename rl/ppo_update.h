// One PPO-clip update from a finished rollout batch and its advantages: PPO epochs over mini-
// and micro-batches. Failed trajectories (retrieval that never came back) are kept out of the
// loss.
//
// Zero-signal guard: when every advantage of the batch is 0 (e.g. every trajectory of every
// group got the same reward), no trajectory carries a learning signal, yet the loss still has a
// gradient: the KL term, the entropy bonus and ~1e-7 noise between the old and the current
// log-probs (computed over differently padded micro-batches). Adam divides by the running RMS of
// the gradient, so it turns such a tiny gradient into a step of about lr per weight. With
// update.skip_zero_advantage (default) such a batch runs no forward pass and no optimiser step and
// reports skipped_zero_advantage; the weights and the optimiser state stay bit-identical.
//
// Precision (rl/precision.h): forward passes may run under bf16 autocast on the model's device
// (fp32 weights, bf16 matrix products), or the policy may hold bf16 weights whose gradients are
// accumulated into fp32 master copies that the optimiser updates and that are copied back.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "agent/model.h"
#include "core/config.h"
#include "env/trajectory.pb.h"
#include "rl/distributed.h"
#include "rl/loss.h"
#include "rl/precision.h"

namespace strata::rl {

// Where the old (proximal) log-probs come from (UpdateOptions::old_logprobs).
enum class OldLogprobs { kAuto, kRecompute };
inline constexpr config::EnumName<OldLogprobs> kOldLogprobsNames[] = {{OldLogprobs::kAuto, "auto"},
                                                                      {OldLogprobs::kRecompute, "recompute"}};
inline config::EnumTable<OldLogprobs> enum_names(OldLogprobs) { return kOldLogprobsNames; }

struct UpdateOptions {
  int ppo_epochs = 1;         // passes over the batch per rollout phase
  int mini_batch = 16;        // trajectories per optimiser step
  int micro_batch = 4;        // trajectories per forward/backward (gradient accumulation)
  double grad_clip = 1.0;     // global gradient-norm clip (0 = off)
  // Logits are divided by this, as when sampling. Not a config key: grpo_train sets it to
  // rollout.temperature, the temperature the rollouts were sampled at (kRemovedKeys).
  double temperature = 1.0;
  // Not a config key: grpo_train sets it when the rollouts sampled from another copy of the
  // weights (bf16 or int8, rollout_precision), so that the loss applies TIS with the trajectories'
  // behaviour log-probs (loss.tis_cap, rl/loss.h).
  bool rollout_copy = false;
  bool skip_zero_advantage = true;      // no optimiser step for a batch whose advantages are all 0
  bool gradient_checkpointing = false;  // recompute decoder layers in backward (less memory)
  // Where the old (proximal) log-probs come from. "auto": when the update is a single on-policy
  // optimiser step (ppo_epochs 1 and every usable trajectory in one mini-batch), the policy has not
  // moved between the rollout and the loss, so they are the update's own forward, detached (the
  // ratio is exactly 1) and no separate forward pass runs; otherwise as "recompute": a separate
  // no-grad forward of the policy before the first optimiser step.
  OldLogprobs old_logprobs = OldLogprobs::kAuto;
  // Optimiser-state sharding across data-parallel ranks (docs/DISTRIBUTED.md): 0 = every rank
  // holds the whole AdamW state; 1 = ZeRO-1, each rank holds the moments (and, with bf16_master,
  // the fp32 masters) of its share of the weights, updates that share, and sends it to the others.
  int zero_stage = 0;

  // update.temperature used to be a key that the trainer overwrote with rollout.temperature.
  static constexpr config::RemovedKey kRemovedKeys[] = {
      {"temperature",
       "the update divides the logits by rollout.temperature, the temperature the rollouts were sampled at (any "
       "other value would make the PPO ratio compare two different distributions); set rollout.temperature"}};

  void validate() const;
  template <class V>
  void visit(V& v) {
    v("ppo_epochs", ppo_epochs, "passes over the batch per rollout phase");
    v("mini_batch", mini_batch, "trajectories per optimiser step (grpo_train: at most 65536)");
    v("micro_batch", micro_batch, "trajectories per forward/backward (grpo_train: at most 65536)");
    v("grad_clip", grad_clip, "gradient-norm clip (0 = off)");
    v("skip_zero_advantage", skip_zero_advantage,
      "skip the optimiser step(s) when every advantage of the batch is 0 (no learning signal)");
    v("gradient_checkpointing", gradient_checkpointing,
      "recompute decoder layers in backward (less activation memory, ~30% more compute)");
    v("old_logprobs", old_logprobs,
      "auto (from the update's own forward when the update is one on-policy step: ppo_epochs 1, one "
      "mini-batch) or recompute (always a separate forward)");
    v("zero_stage", zero_stage,
      "optimiser-state sharding over data-parallel ranks: 0 (none) or 1 (ZeRO-1: each rank keeps and updates the "
      "AdamW moments and fp32 masters of its share of the weights); fixed for a run (--resume refuses a change)");
  }
};

// What one update did. The loss quantities are present only when computed: a batch skipped for
// zero advantage (or with no usable trajectory) has none of them, and kl only when the KL term
// ran. The trainer turns this into the logged keys (rl/train_metrics.h).
struct UpdateStats {
  bool passes_ran = false;                // the PPO passes ran (not skipped, some usable trajectory)
  std::optional<double> pg_loss;          // mean over optimiser steps of the mini-batch's clipped
                                          // surrogate (aggregated over the whole mini-batch)
  std::optional<double> kl;               // mean KL estimate (only when the reference ran)
  std::optional<double> entropy;          // token-mean entropy over the trained tokens, whatever
                                          // loss.entropy_coef
  std::optional<double> clip_frac;        // share of clipped tokens (over the steps applied)
  std::optional<double> grad_norm;        // mean pre-clip gradient norm over optimiser steps
  std::optional<double> logp_mismatch;    // mean |behaviour - old| log-prob per trained token
                                          // (the sampler's against the policy's at rollout time)
  // TIS (only when it ran): the ratio pi_trained_old / pi_rollout per trained token before the
  // cap: its mean and max, and the share of tokens above loss.tis_cap.
  std::optional<double> tis_ratio_mean, tis_ratio_max, tis_capped_frac;
  double old_logp_seconds = 0;            // the separate no-grad old-log-prob forward (0 if not run)
  double ref_logp_seconds = 0;            // the reference forward (0 if not run)
  int optimizer_steps = 0;
  int skipped_steps = 0;                  // non-finite loss or gradients: not applied
  bool skipped_zero_advantage = false;    // every advantage was 0: nothing was run
  bool old_logprobs_reused = false;       // old log-probs taken from the update's own forward
  int64_t old_logprob_rows = 0;           // trajectories scored by a separate old-log-prob forward
  int64_t ref_logprob_rows = 0;           // trajectories scored by the reference policy
};

// Runs the PPO epochs on `policy` with `optim`. `reference` may be null when KL is off; it is
// not run when loss.kl_estimator is off or loss.kl_coef is 0, even when given.
//
// Loss normalisation: each mini-batch's loss is the aggregation (loss.aggregation) over the whole
// mini-batch, whatever its micro-batches: a micro-batch contributes its share, normalised by the
// mini-batch's token count (token-mean), its sequence count (seq-mean-*), and its longest
// sequence (seq-mean-token-sum-norm with norm_length 0), so gradient accumulation is exact.
//
// Data parallel (`dist` with more than one rank): every rank holds the whole batch (the same
// trajectories and advantages, rl/batch_advantages.h's gather_batch) and the same shuffled
// order; rank r runs the r-th of `world` contiguous shares of each mini-batch, and the gradients
// are summed across ranks (bucketed all-reduce) before clipping, so N ranks compute the update one
// process computes. The returned statistics are global.
//
// ZeRO-1 (`zero_owner` not empty, update.zero_stage 1): zero_owner[k] is the rank that owns
// policy.parameters()[k] (partition_by_size, rl/distributed.h). `optim` holds only the weights
// this rank owns (bf16_master: their masters; precision.master[k] is undefined for the others).
// The gradients are still summed whole on every rank, and clipped by their global norm; each
// rank's optimiser step then updates its share, and Distributed::broadcast_from sends every
// share from its owner to the other ranks, so the weights stay identical everywhere and equal
// (to the bit, the same operations) to those of unsharded AdamW.
UpdateStats ppo_update(agent::Model& policy, const agent::Model* reference,
                       torch::optim::Optimizer& optim,
                       const std::vector<env::pb::Trajectory>& batch,
                       const std::vector<double>& advantages, const LossOptions& loss,
                       const UpdateOptions& opts, uint64_t seed,
                       const MixedPrecision& precision = {}, const Distributed* dist = nullptr,
                       const std::vector<int>& zero_owner = {});

}  // namespace strata::rl
