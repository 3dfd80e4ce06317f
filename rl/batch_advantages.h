// Advantages of a finished rollout batch: rewards -> advantages (GRPO or Stratified GRPO, see
// rl/advantage.h) with failed trajectories (retrieval that never came back) kept out of the
// statistics, and the zero-signal test of the update's guard.
#pragma once

#include <vector>

#include "env/trajectory.pb.h"
#include "rl/advantage.h"
#include "rl/distributed.h"

namespace strata::rl {

// The trajectory ended on a failed retrieval: it stays out of the loss and the statistics.
bool failed_retrieval(const env::pb::Trajectory& t);

// |A| at or below this counts as no signal (a constant group gives ~1e-11 after rounding).
constexpr double kZeroAdvantage = 1e-6;

// True when every usable (not failed) trajectory's advantage is (near) 0.
bool all_advantages_zero(const std::vector<env::pb::Trajectory>& batch,
                         const std::vector<double>& advantages);

// Data parallel: every rank's trajectories, in rank order, on every rank. Ranks roll out
// contiguous shares of the step's prompts, so this is the batch one process holding all the
// prompts makes, and batch_advantages over it is that process's (with advantage.scope = batch,
// SAN's strata span the ranks; with group scope a prompt's samples never leave their rank anyway).
// A single process gets `local` back.
std::vector<env::pb::Trajectory> gather_batch(const Distributed& dist, std::vector<env::pb::Trajectory> local);

// Advantages for the batch (0 for failed trajectories, which are excluded from the statistics).
std::vector<double> batch_advantages(const std::vector<env::pb::Trajectory>& batch,
                                     const AdvantageOptions& opts);

}  // namespace strata::rl
