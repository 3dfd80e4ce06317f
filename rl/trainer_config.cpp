#include "rl/trainer_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "agent/runtime.h"
#include "core/error.h"

namespace strata::rl {

namespace {
std::string fmt_gib(double g) {
  std::ostringstream o;
  o.precision(g < 10 ? 2 : 0);
  o << std::fixed << g;
  return o.str();
}
}  // namespace

void TrainerConfig::validate() const {
  STRATA_CHECK(!model.empty(), "model: a model directory is required");
  STRATA_CHECK(!train_data.empty(), "train_data: a QA file is required");
  STRATA_CHECK(!retriever.empty(), "retriever: a /retrieve URL is required");
  STRATA_CHECK(steps >= 1, "steps: expected >= 1, got " << steps);
  STRATA_CHECK(prompts_per_step >= 1, "prompts_per_step: expected >= 1, got " << prompts_per_step);
  STRATA_CHECK(prompts_per_step <= kMaxTrajectoriesPerStep,
               "prompts_per_step: expected at most " << kMaxTrajectoriesPerStep << ", got " << prompts_per_step);
  STRATA_CHECK(rollout.samples_per_prompt <= kMaxSamplesPerPrompt, "rollout.samples_per_prompt: expected at most "
                                                                        << kMaxSamplesPerPrompt << ", got "
                                                                        << rollout.samples_per_prompt);
  STRATA_CHECK(static_cast<int64_t>(prompts_per_step) * rollout.samples_per_prompt <= kMaxTrajectoriesPerStep,
               "prompts_per_step: prompts_per_step x rollout.samples_per_prompt = "
                   << static_cast<int64_t>(prompts_per_step) * rollout.samples_per_prompt
                   << " trajectories per step, at most " << kMaxTrajectoriesPerStep);
  STRATA_CHECK(rollout.max_batch <= kMaxRolloutBatch,
               "rollout.max_batch: expected at most " << kMaxRolloutBatch << ", got " << rollout.max_batch);
  STRATA_CHECK(rollout.max_seq_len <= kMaxSeqLen,
               "rollout.max_seq_len: expected at most " << kMaxSeqLen << ", got " << rollout.max_seq_len);
  STRATA_CHECK(update.mini_batch <= kMaxTrajectoriesPerStep,
               "update.mini_batch: expected at most " << kMaxTrajectoriesPerStep << " (trajectories per step), got "
                                                      << update.mini_batch);
  STRATA_CHECK(update.micro_batch <= kMaxTrajectoriesPerStep,
               "update.micro_batch: expected at most " << kMaxTrajectoriesPerStep << " (trajectories per step), got "
                                                       << update.micro_batch);
  STRATA_CHECK(std::isfinite(lr) && lr > 0 && lr <= 1, "lr: expected 0 < lr <= 1, got " << lr);
  STRATA_CHECK(threads >= 0 && threads <= kMaxThreads,
               "threads: expected 0 (LibTorch's default) to " << kMaxThreads << ", got " << threads);
  STRATA_CHECK(warmup_steps >= 0, "warmup_steps: expected >= 0, got " << warmup_steps);
  STRATA_CHECK(warmup_ratio >= 0 && warmup_ratio < 1, "warmup_ratio: expected 0 <= r < 1, got " << warmup_ratio);
  STRATA_CHECK(!(warmup_ratio > 0 && warmup_steps > 0),
               "warmup_ratio: set either warmup_steps (" << warmup_steps << ") or warmup_ratio (" << warmup_ratio
                                                         << "), not both");
  STRATA_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "min_lr_ratio: expected 0..1, got " << min_lr_ratio);
  STRATA_CHECK(agent::is_device_name(device), "device: expected cpu, cuda or cuda:N, got \"" << device << "\"");
  STRATA_CHECK(!(precision == Precision::kBf16Master && rollout_precision == RolloutPrecision::kFp32),
               "rollout_precision: fp32 rollouts need fp32 weights, but precision is bf16_master");
  STRATA_CHECK(rollout_threads >= 0 && rollout_threads <= kMaxThreads,
               "rollout_threads: expected 0 (as threads) to " << kMaxThreads << ", got " << rollout_threads);
  STRATA_CHECK(save_every >= 0, "save_every: expected >= 0, got " << save_every);
  STRATA_CHECK(keep_checkpoints >= 1, "keep_checkpoints: expected >= 1, got " << keep_checkpoints);
  config::validate_nested("retrieval", retrieval);
  config::validate_nested("rollout", rollout);
  config::validate_nested("advantage", advantage);
  config::validate_nested("loss", loss);
  config::validate_nested("update", update);
}

void RetrievalBudget::validate() const {
  STRATA_CHECK(timeout_ms >= 100 && timeout_ms <= 3600000, "timeout_ms: expected 100 to 3600000, got " << timeout_ms);
  STRATA_CHECK(max_attempts >= 1 && max_attempts <= 100, "max_attempts: expected 1 to 100, got " << max_attempts);
  STRATA_CHECK(backoff_initial_ms >= 0 && backoff_initial_ms <= 600000,
               "backoff_initial_ms: expected 0 to 600000, got " << backoff_initial_ms);
  STRATA_CHECK(backoff_max_ms >= backoff_initial_ms && backoff_max_ms <= 600000,
               "backoff_max_ms: expected backoff_initial_ms (" << backoff_initial_ms << ") to 600000, got "
                                                               << backoff_max_ms);
  STRATA_CHECK(std::isfinite(warn_after_s) && warn_after_s >= 1, "warn_after_s: expected >= 1, got " << warn_after_s);
  STRATA_CHECK(max_failed_fraction >= 0 && max_failed_fraction <= 1,
               "max_failed_fraction: expected 0 to 1, got " << max_failed_fraction);
  STRATA_CHECK(max_failed_steps >= 1, "max_failed_steps: expected >= 1, got " << max_failed_steps);
}

int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream f(line.substr(13));
    int64_t kb = -1;
    f >> kb;
    return kb < 0 ? -1 : kb * 1024;
  }
  return -1;
}

void check_sizes(const TrainerConfig& cfg, int64_t num_layers, int64_t kv_heads, int64_t head_dim,
                 int64_t max_positions, const std::string& model_config_file, bool bf16_rollouts) {
  if (max_positions > 0)
    STRATA_CHECK(cfg.rollout.max_seq_len <= max_positions,
                 "rollout.max_seq_len: expected at most the model's max_position_embeddings ("
                     << max_positions << ", " << model_config_file << "), got " << cfg.rollout.max_seq_len);
  const int64_t avail = available_memory_bytes();
  if (avail <= 0) return;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const int64_t trajectories = static_cast<int64_t>(cfg.prompts_per_step) * cfg.rollout.samples_per_prompt;
  const double traj_bytes = static_cast<double>(trajectories) * static_cast<double>(cfg.rollout.max_seq_len) * 16;
  STRATA_CHECK(traj_bytes <= static_cast<double>(avail),
               "prompts_per_step: " << trajectories << " trajectories per step of up to rollout.max_seq_len = "
                                    << cfg.rollout.max_seq_len << " positions need up to "
                                    << fmt_gib(traj_bytes / gib) << " GiB, more than the " << fmt_gib(avail / gib)
                                    << " GiB of memory available");
  if (cfg.device != "cpu") return;  // the KV cache lives on the accelerator
  const int64_t slots = std::min<int64_t>(cfg.rollout.max_batch, trajectories);
  const double kv_bytes = static_cast<double>(slots) * static_cast<double>(cfg.rollout.max_seq_len) *
                          static_cast<double>(num_layers * 2 * kv_heads * head_dim) * (bf16_rollouts ? 2 : 4);
  STRATA_CHECK(kv_bytes <= static_cast<double>(avail),
               "rollout.max_batch: the rollouts' KV cache of min(rollout.max_batch, trajectories per step) = "
                   << slots << " sequences x rollout.max_seq_len = " << cfg.rollout.max_seq_len << " positions needs "
                   << fmt_gib(kv_bytes / gib) << " GiB, more than the " << fmt_gib(avail / gib)
                   << " GiB of memory available; lower rollout.max_batch or rollout.max_seq_len");
}

RolloutPrecision TrainerConfig::rollout_weights(bool cpu_bf16) const {
  if (rollout_precision != RolloutPrecision::kAuto) return rollout_precision;
  if (precision != Precision::kFp32) return RolloutPrecision::kBf16;
  const bool cpu = device == "cpu";
  return (cpu && cpu_bf16) || !cpu ? RolloutPrecision::kBf16 : RolloutPrecision::kFp32;
}

bool cpu_has_bf16_dot() { return agent::cpu_has_bf16_dot(); }

int warmup_steps_of(const TrainerConfig& cfg) {
  if (cfg.warmup_ratio > 0) return static_cast<int>(cfg.warmup_ratio * cfg.steps);  // veRL: int(ratio * total)
  return cfg.warmup_steps;
}

double lr_at_step(const TrainerConfig& cfg, int step) {
  const int W = warmup_steps_of(cfg);
  const int s = step - 1;  // 0-based
  if (s < W) return cfg.lr * (s + 1) / static_cast<double>(W);
  if (cfg.lr_schedule == LrSchedule::kConstant) return cfg.lr;
  const double progress = static_cast<double>(s - W) / std::max(1, cfg.steps - W);
  const double m = cfg.min_lr_ratio;
  return cfg.lr * (m + (1 - m) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, progress))));
}

}  // namespace strata::rl
