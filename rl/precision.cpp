#include "rl/precision.h"

#include <ATen/autocast_mode.h>

#include "core/error.h"

namespace strata::rl {

void copy_master_to_model(const std::vector<torch::Tensor>& master, const agent::Model& model) {
  torch::NoGradGuard ng;
  const auto params = model.parameters();
  STRATA_ASSERT(params.size() == master.size(), master.size() << " masters for " << params.size() << " weights");
  for (size_t i = 0; i < params.size(); ++i)
    if (master[i].defined()) params[i].copy_(master[i]);
}

AutocastBf16::AutocastBf16(bool on, torch::Device device) : on_(on), type_(device.type()) {
  if (!on_) return;
  prev_enabled_ = at::autocast::is_autocast_enabled(type_);
  prev_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_dtype(type_, at::kBFloat16);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::increment_nesting();
}

AutocastBf16::~AutocastBf16() {
  if (!on_) return;
  // The cast cache (bf16 copies of fp32 weights) lives as long as the outermost region.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, prev_enabled_);
  at::autocast::set_autocast_dtype(type_, prev_dtype_);
}

}  // namespace strata::rl
