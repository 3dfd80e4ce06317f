// The LibTorch runtime strata runs on: which device, which BLAS, and whether matrix products
// run near the machine's peak. This header stays free of <torch/torch.h> so that programs and
// tests that only report on the runtime compile fast.
#pragma once

#include <string>

namespace strata::agent {

struct RuntimeInfo {
  std::string torch_version;   // e.g. "2.11.0"
  std::string blas;            // BLAS LibTorch was built with, from at::show_config() ("mkl", ...)
  std::string config;          // the full at::show_config() text
  int intra_op_threads = 0;    // at::get_num_threads()
  bool cuda_compiled = false;  // strata built with CUDA code paths (STRATA_HAVE_CUDA)
  bool cuda_available = false; // a CUDA device is usable right now
  int cuda_devices = 0;        // number of visible CUDA devices
};

RuntimeInfo runtime_info();

// The one parser of device names. Syntax only: "cpu", "cuda", "cuda:N" and, with allow_auto,
// "auto". Config validate() functions use it; it needs no device.
bool is_device_name(const std::string& name, bool allow_auto = false);

// The device to run on, as a canonical name ("cpu", "cuda", "cuda:1"). `requested` is "auto"
// (cuda when a CUDA device is usable and strata was built with CUDA, else cpu), "cpu", "cuda" or
// "cuda:N". A bad name, CUDA asked for without one, or N beyond the visible devices is a
// strata::Error that starts with "device: ".
std::string pick_device(const std::string& requested);

// The CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16), which oneDNN uses for
// bf16 matrix products.
bool cpu_has_bf16_dot();
// What "auto" weights mean for inference on `device` (a canonical name, see pick_device):
// "bfloat16" on CUDA and on CPUs with bf16 dot products (decoding reads every weight once per
// token, so half the bytes is about half the time), "float32" elsewhere. The one rule behind
// generate --dtype auto, evaluate --dtype auto and grpo_train's rollout_precision auto.
std::string auto_inference_dtype(const std::string& device);

struct MatmulBench {
  int n = 0;              // square matrix size
  std::string dtype;      // "float32" or "bfloat16"
  std::string device;     // "cpu" or "cuda"
  double seconds = 0;     // per product, best of the repetitions
  double gflops = 0;      // 2*n^3 / seconds / 1e9
};

// Times C = A*B for n x n matrices (best of `reps` after one warm-up).
MatmulBench bench_matmul(int n, int reps, const std::string& dtype, const std::string& device);

}  // namespace strata::agent
