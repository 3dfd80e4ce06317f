// KVCache: per-layer key/value storage for batched, slot-based incremental decoding.
//
// Each running sequence owns one slot; a slot holds up to `capacity` positions. The cache does
// not know sequence lengths: the generation engine tracks them and passes the write positions.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "core/error.h"

namespace strata::agent {

class KVCache {
 public:
  // k, v per layer: [num_slots, num_kv_heads, capacity, head_dim]
  KVCache(int64_t num_layers, int64_t num_slots, int64_t capacity, int64_t num_kv_heads,
          int64_t head_dim, const torch::TensorOptions& options)
      : num_slots_(num_slots), capacity_(capacity) {
    STRATA_CHECK(num_slots > 0, "KVCache: num_slots must be positive, got " << num_slots);
    STRATA_CHECK(capacity > 0, "KVCache: capacity must be positive, got " << capacity);
    for (int64_t l = 0; l < num_layers; ++l) {
      k_.push_back(torch::zeros({num_slots, num_kv_heads, capacity, head_dim}, options));
      v_.push_back(torch::zeros({num_slots, num_kv_heads, capacity, head_dim}, options));
    }
    for (int64_t s = num_slots - 1; s >= 0; --s) free_.push_back(s);
  }

  int64_t num_slots() const { return num_slots_; }
  int64_t num_layers() const { return static_cast<int64_t>(k_.size()); }
  int64_t capacity() const { return capacity_; }
  torch::Tensor& k(int64_t layer) { return k_.at(static_cast<size_t>(layer)); }
  torch::Tensor& v(int64_t layer) { return v_.at(static_cast<size_t>(layer)); }

  // Takes a free slot (lowest index first); -1 when all are in use.
  int64_t acquire() {
    if (free_.empty()) return -1;
    const int64_t s = free_.back();
    free_.pop_back();
    return s;
  }
  void release(int64_t slot) {
    STRATA_ASSERT(slot >= 0 && slot < num_slots_, "KVCache::release: bad slot " << slot);
    free_.push_back(slot);
  }
  int64_t free_slots() const { return static_cast<int64_t>(free_.size()); }

 private:
  int64_t num_slots_;
  int64_t capacity_;
  std::vector<torch::Tensor> k_, v_;
  std::vector<int64_t> free_;  // stack, lowest slot on top
};

}  // namespace strata::agent
