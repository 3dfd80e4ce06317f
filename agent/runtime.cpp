#include "agent/runtime.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace strata::agent {

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  info.torch_version = TORCH_VERSION;
  info.config = at::show_config();
  // show_config() contains "BLAS_INFO=<name>," in its build settings.
  const auto pos = info.config.find("BLAS_INFO=");
  if (pos != std::string::npos) {
    const auto start = pos + 10;
    const auto end = info.config.find_first_of(", \n", start);
    info.blas = info.config.substr(start, end - start);
  } else {
    info.blas = "unknown";
  }
  info.intra_op_threads = at::get_num_threads();
  info.cuda_compiled = STRATA_HAVE_CUDA != 0;
#if STRATA_HAVE_CUDA
  info.cuda_available = torch::cuda::is_available();
  info.cuda_devices = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
#endif
  return info;
}

bool is_device_name(const std::string& name, bool allow_auto) {
  if (name == "cpu" || name == "cuda" || (allow_auto && name == "auto")) return true;
  const std::string prefix = "cuda:";
  return name.size() > prefix.size() && name.size() <= prefix.size() + 2 && name.compare(0, prefix.size(), prefix) == 0 &&
         std::all_of(name.begin() + prefix.size(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string pick_device(const std::string& requested) {
  STRATA_CHECK(is_device_name(requested, true),
               "device: expected auto, cpu, cuda or cuda:N, got \"" << requested << "\"");
  if (requested == "cpu") return "cpu";
  const RuntimeInfo info = runtime_info();
  if (requested == "auto") return info.cuda_available ? "cuda" : "cpu";
  STRATA_CHECK(info.cuda_compiled,
               "device: \"" << requested
                            << "\" requested but strata was built without CUDA code paths "
                               "(no CUDA toolkit or a CPU-only LibTorch at configure time)");
  STRATA_CHECK(info.cuda_available, "device: \"" << requested << "\" requested but no CUDA device is visible");
  if (requested != "cuda") {
    const int index = std::stoi(requested.substr(5));
    STRATA_CHECK(index < info.cuda_devices, "device: \"" << requested << "\" requested but only "
                                                         << info.cuda_devices << " CUDA device(s) are visible");
  }
  return requested;
}

MatmulBench bench_matmul(int n, int reps, const std::string& dtype, const std::string& device) {
  STRATA_CHECK(n > 0 && reps > 0, "bench_matmul: n and reps must be positive");
  STRATA_CHECK(dtype == "float32" || dtype == "bfloat16",
               "bench_matmul: dtype must be float32 or bfloat16, got " << dtype);
  const auto dev = torch::Device(pick_device(device));
  const auto opts = torch::TensorOptions()
                        .dtype(dtype == "float32" ? torch::kFloat32 : torch::kBFloat16)
                        .device(dev);
  torch::manual_seed(0);
  const auto a = torch::randn({n, n}, opts);  // [n, n]
  const auto b = torch::randn({n, n}, opts);  // [n, n]
  auto sync = [&] {
#if STRATA_HAVE_CUDA
    if (dev.is_cuda()) torch::cuda::synchronize();
#endif
  };
  torch::NoGradGuard no_grad;
  auto c = torch::mm(a, b);
  sync();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    sync();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  MatmulBench out;
  out.n = n;
  out.dtype = dtype;
  out.device = dev.is_cuda() ? "cuda" : "cpu";  // the kind, as before
  out.seconds = best;
  out.gflops = 2.0 * n * static_cast<double>(n) * n / best / 1e9;
  return out;
}

bool cpu_has_bf16_dot() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return false;
#endif
}

std::string auto_inference_dtype(const std::string& device) {
  return device != "cpu" || cpu_has_bf16_dot() ? "bfloat16" : "float32";
}

}  // namespace strata::agent
