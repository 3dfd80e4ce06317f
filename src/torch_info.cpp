// torch_info: what LibTorch strata runs on (version, BLAS, threads, CUDA) and how fast its
// matrix products are, so that a slow reference BLAS or a missing GPU is seen at once.
#include <cstdio>
#include <thread>

#include "agent/runtime.h"
#include "core/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"Report the LibTorch runtime (BLAS, threads, CUDA) and time matrix products."};
  app.name("torch_info");
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  int n = 1024;
  int reps = 5;
  std::string device = "auto";
  bool full = false;
  app.add_option("--n", n, "matrix size for the GEMM check")->capture_default_str();
  app.add_option("--reps", reps, "timed repetitions (best is kept)")->capture_default_str();
  app.add_option("--device", device, "auto, cpu or cuda")->capture_default_str();
  app.add_flag("--full-config", full, "print the whole at::show_config() text");
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    const auto info = strata::agent::runtime_info();
    std::printf("torch        %s\n", info.torch_version.c_str());
    std::printf("blas         %s\n", info.blas.c_str());
    std::printf("threads      %d intra-op (hardware: %u)\n", info.intra_op_threads,
                std::thread::hardware_concurrency());
    std::printf("cuda         compiled=%s available=%s devices=%d\n",
                info.cuda_compiled ? "yes" : "no", info.cuda_available ? "yes" : "no",
                info.cuda_devices);
    if (full) std::printf("%s\n", info.config.c_str());
    const auto r = strata::agent::bench_matmul(n, reps, "float32", device);
    std::printf("matmul       %dx%d float32 on %s: %.2f ms, %.1f GFLOP/s\n", r.n, r.n,
                r.device.c_str(), r.seconds * 1e3, r.gflops);
    if (r.device == "cuda") {
      const auto b = strata::agent::bench_matmul(n, reps, "bfloat16", device);
      std::printf("matmul       %dx%d bfloat16 on cuda: %.2f ms, %.1f GFLOP/s\n", b.n, b.n,
                  b.seconds * 1e3, b.gflops);
    }
    return 0;
  });
}
