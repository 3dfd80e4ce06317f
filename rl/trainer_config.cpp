#include "rl/trainer_config.h"

#include <algorithm>
#include <cmath>

#include "agent/runtime.h"
#include "core/error.h"

namespace strata::rl {

void TrainerConfig::validate() const {
  STRATA_CHECK(!model.empty(), "model: a model directory is required");
  STRATA_CHECK(!train_data.empty(), "train_data: a QA file is required");
  STRATA_CHECK(!retriever.empty(), "retriever: a /retrieve URL is required");
  STRATA_CHECK(steps >= 1, "steps: expected >= 1, got " << steps);
  STRATA_CHECK(prompts_per_step >= 1, "prompts_per_step: expected >= 1, got " << prompts_per_step);
  STRATA_CHECK(lr > 0, "lr: expected > 0, got " << lr);
  STRATA_CHECK(warmup_steps >= 0, "warmup_steps: expected >= 0, got " << warmup_steps);
  STRATA_CHECK(warmup_ratio >= 0 && warmup_ratio < 1, "warmup_ratio: expected 0 <= r < 1, got " << warmup_ratio);
  STRATA_CHECK(!(warmup_ratio > 0 && warmup_steps > 0),
               "warmup_ratio: set either warmup_steps (" << warmup_steps << ") or warmup_ratio (" << warmup_ratio
                                                         << "), not both");
  STRATA_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "min_lr_ratio: expected 0..1, got " << min_lr_ratio);
  STRATA_CHECK(agent::is_device_name(device), "device: expected cpu, cuda or cuda:N, got \"" << device << "\"");
  STRATA_CHECK(!(precision == Precision::kBf16Master && rollout_precision == RolloutPrecision::kFp32),
               "rollout_precision: fp32 rollouts need fp32 weights, but precision is bf16_master");
  STRATA_CHECK(rollout_threads >= 0, "rollout_threads: expected >= 0, got " << rollout_threads);
  STRATA_CHECK(save_every >= 0, "save_every: expected >= 0, got " << save_every);
  STRATA_CHECK(keep_checkpoints >= 1, "keep_checkpoints: expected >= 1, got " << keep_checkpoints);
  config::validate_nested("rollout", rollout);
  config::validate_nested("advantage", advantage);
  config::validate_nested("loss", loss);
  config::validate_nested("update", update);
}

bool TrainerConfig::bf16_rollouts(bool cpu_bf16) const {
  if (rollout_precision != RolloutPrecision::kAuto) return rollout_precision == RolloutPrecision::kBf16;
  if (precision != Precision::kFp32) return true;
  return device == "cpu" && cpu_bf16;
}

bool cpu_has_bf16_dot() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return false;
#endif
}

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
