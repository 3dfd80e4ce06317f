// What grpo_train logs per step, as typed structs, and the one place that turns them into the
// metrics.jsonl / TensorBoard keys (reward/mean, stratum/k/count, loss/pg, time/step_s, ...: the
// list is in README.md, "Logged per step"; scripts/report.py and scripts/experiments/summarize.py
// read these names). Also the run summary read back from metrics.jsonl.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "env/search_env.h"
#include "env/trajectory.pb.h"
#include "rl/ppo_update.h"
#include "rl/rollout.h"

namespace strata::rl {

// Statistics of a rollout batch (means are per trajectory; token counts are sums).
struct BatchStats {
  int64_t trajectories = 0;
  double reward = 0, em = 0;          // means
  double answer_rate = 0;             // share that ended with </answer>
  double searches = 0, turns = 0;     // per trajectory
  double response_len = 0;            // policy tokens per trajectory
  double prompt_tokens = 0, policy_tokens = 0, observation_tokens = 0;  // sums over the batch
  std::map<env::EndReason, double> end_share;  // share of trajectories per end reason
  struct Stratum {
    int count = 0;
    double reward = 0;     // mean reward
    double bias = 0;       // mean_k - mean (the paper's cross-stratum bias, batch level)
    bool has_adv = false;  // some trajectory of the stratum is in the loss (not failed)
    double adv = 0;        // mean advantage over those
    double adv_std = 0;    // population std of those advantages
  };
  std::map<int64_t, Stratum> strata;  // by stratum key
};

BatchStats batch_stats(const std::vector<env::pb::Trajectory>& batch, const std::vector<double>& advantages);

// Everything one RL step reports.
struct StepMetrics {
  int step = 0;
  double lr = 0;
  BatchStats batch;
  UpdateStats update;
  RolloutMetrics rollout;   // the engine's measurements (tokens/s, occupancy, failures, latency)
  bool bf16_rollouts = false;  // the sampler's activations are bf16 (bf16 or int8 weights)
  bool int8_rollouts = false;  // the sampler's matrices are int8 (rollout_precision int8)
  // More than retrieval.max_failed_fraction of the trajectories failed retrieval: the step was not
  // used for the update (update/skipped_failed).
  bool skipped_failed = false;
  double rollout_seconds = 0, update_seconds = 0, step_seconds = 0;
};

// The metrics.jsonl / TensorBoard keys of a batch (see README.md): reward/mean, reward/em,
// rollout/answer_rate, rollout/searches_per_traj, rollout/turns_per_traj, rollout/response_len,
// rollout/trajectories, tokens/*, rollout/end/<reason>, stratum/k/{count,reward,bias,adv,adv_std}.
void write_batch_metrics(const BatchStats& s, std::map<std::string, double>& m);
// batch_stats + write_batch_metrics.
void add_batch_metrics(const std::vector<env::pb::Trajectory>& batch, const std::vector<double>& advantages,
                       std::map<std::string, double>& m);
// Every key of a step (without "step"): the batch's, the update's (loss/pg, loss/kl, entropy,
// clip_frac, grad_norm only when computed), the rollout engine's and the time split.
std::map<std::string, double> step_metric_map(const StepMetrics& s);
// The console line of a step (quantities not computed print as "-").
std::string format_step_line(const StepMetrics& s, int steps, const std::string& eta);

// The run as a whole, from every step of out_dir/metrics.jsonl (steps before a --resume too).
struct TrainSummary {
  int steps = 0;                  // steps completed
  int window = 0;                 // steps averaged at each end: min(5, max(1, steps / 2))
  double first_reward = 0;        // mean reward of the first `window` steps
  double last_reward = 0;         // mean reward of the last `window` steps
  int skipped_zero_advantage = 0; // steps whose update was skipped (every advantage 0)
  int64_t trajectories = 0;       // trajectories rolled out
  int64_t failed = 0;             // of which ended by a failed retrieval (kept out of the loss)
  int skipped_failed = 0;         // steps not used for the update: too many retrieval failures
};

// The summary of a run from its metrics.jsonl (the last line of a step wins; cut lines are
// skipped).
TrainSummary summarize_metrics_file(const std::string& path);

// The closing line of grpo_train: "trained N steps: mean reward A (steps 1-5) -> B (steps
// 16-20); K of N steps skipped (every advantage 0); F of T trajectories failed (retrieval)", and
// "; U of N steps not used (too many retrieval failures)" when some were.
std::string format_summary(const TrainSummary& s);

}  // namespace strata::rl
