// Packed bf16 copies (agent/bf16_gemm.h) of a list of weight tensors, kept fresh for a model that
// decodes on the CPU: a copy is rebuilt when its source is another tensor (new storage) or was
// changed in place since it was packed (LibTorch's version counter, which every in-place op bumps:
// optimiser steps, copy_ from a refresh or a checkpoint). A raw write into a tensor's memory (a
// collective writing into it) bumps no counter: call clear() after one. Thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace strata::agent {

class Bf16Packs {
 public:
  // The packed copies of `sources` (2-D, CPU), in order; stale or missing ones are rebuilt first.
  std::vector<at::Tensor> get(const std::vector<at::Tensor>& sources);
  // Forgets every copy.
  void clear();
  // Copies built so far (tests).
  int64_t builds() const;

 private:
  struct Entry {
    at::Tensor packed;
    const void* source = nullptr;
    int64_t version = -1;
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  int64_t builds_ = 0;
};

}  // namespace strata::agent
