// The run-time switch of strata's own CPU kernels (int8_gemm, bf16_gemm, the fused decoding step):
// each is on where the CPU has its instructions unless its environment variable is "0", e.g.
// STRATA_INT8_GEMM=0 to compare against LibTorch's path.
#pragma once

#include <cstdlib>
#include <cstring>

namespace strata::agent {

// Whether the environment variable `name` turns a kernel off (it is set to "0").
inline bool kernel_switched_off(const char* name) {
  const char* env = std::getenv(name);
  return env != nullptr && std::strcmp(env, "0") == 0;
}

}  // namespace strata::agent
