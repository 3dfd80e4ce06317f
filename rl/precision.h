// Precision of the policy's passes: the names configs use, bf16 autocast, and fp32 master
// weights for a bf16 policy.
//
//   fp32         weights, gradients, optimiser and every pass in float32.
//   bf16         fp32 weights and optimiser; forward passes run under bf16 autocast
//                (AutocastBf16), so matrix products are bf16 while norms, softmax and the loss
//                stay fp32.
//   bf16_master  the policy holds bf16 weights; their gradients are accumulated into fp32
//                master copies (MixedPrecision::master) that the optimiser updates and that are
//                rounded back into the bf16 weights after each step.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "agent/model.h"
#include "core/config.h"

namespace strata::rl {

// grpo_train's `precision`.
enum class Precision { kFp32, kBf16, kBf16Master };
inline constexpr config::EnumName<Precision> kPrecisionNames[] = {
    {Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}, {Precision::kBf16Master, "bf16_master"}};
inline config::EnumTable<Precision> enum_names(Precision) { return kPrecisionNames; }

// grpo_train's `rollout_precision` (the issue's `rollout.weights`): what the rollouts sample
// from (see rl/trainer_config.h). int8: weight-only int8 matrices, bf16 activations.
enum class RolloutPrecision { kAuto, kFp32, kBf16, kInt8 };
inline constexpr config::EnumName<RolloutPrecision> kRolloutPrecisionNames[] = {{RolloutPrecision::kAuto, "auto"},
                                                                                {RolloutPrecision::kFp32, "fp32"},
                                                                                {RolloutPrecision::kBf16, "bf16"},
                                                                                {RolloutPrecision::kInt8, "int8"}};
inline config::EnumTable<RolloutPrecision> enum_names(RolloutPrecision) { return kRolloutPrecisionNames; }

// sft_train's `sft.precision`: fp32, or bf16 autocast on fp32 weights.
enum class AutocastPrecision { kFp32, kBf16 };
inline constexpr config::EnumName<AutocastPrecision> kAutocastPrecisionNames[] = {
    {AutocastPrecision::kFp32, "fp32"}, {AutocastPrecision::kBf16, "bf16"}};
inline config::EnumTable<AutocastPrecision> enum_names(AutocastPrecision) { return kAutocastPrecisionNames; }

// How ppo_update runs its passes. Default: fp32 as the weights are.
struct MixedPrecision {
  bool autocast_bf16 = false;          // every forward under bf16 autocast on the model's device
  // bf16_master: fp32 copies of policy.parameters() (same order), which `optim` holds. Each
  // micro-batch's bf16 gradients are added to their fp32 grads; after the step the masters are
  // copied (rounded) back into the bf16 weights. Empty = the optimiser holds the weights. With
  // ZeRO-1 (update.zero_stage 1) a rank holds the masters of its share of the weights only; the
  // others are undefined tensors.
  std::vector<torch::Tensor> master;
};

// Copies the fp32 masters into the model's (bf16) weights, rounding to nearest (undefined masters,
// another rank's under ZeRO-1, are left out).
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

}  // namespace strata::rl
