#include "agent/runtime.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace strata::agent {
namespace {

TEST(Runtime, ReportsBlasAndThreads) {
  const auto info = runtime_info();
  EXPECT_FALSE(info.torch_version.empty());
  EXPECT_EQ(info.torch_version.rfind("2.", 0), 0u) << "LibTorch 2.x expected";
  // A reference BLAS is ~40x slower than MKL/OpenBLAS: the wheel must bring an optimised one.
  EXPECT_TRUE(info.blas == "mkl" || info.blas == "openblas" || info.blas == "accelerate")
      << "BLAS_INFO=" << info.blas;
  EXPECT_GE(info.intra_op_threads, 1);
}

TEST(Runtime, DeviceChoice) {
  EXPECT_EQ(pick_device("cpu"), "cpu");
  EXPECT_THROW(pick_device("tpu"), Error);
  const auto info = runtime_info();
  if (!info.cuda_available) {
    EXPECT_EQ(pick_device("auto"), "cpu");
    EXPECT_THROW(pick_device("cuda"), Error);
  } else {
    EXPECT_EQ(pick_device("auto"), "cuda");
  }
}

// One parser of device names: syntax first, then what is there.
TEST(Runtime, DeviceNames) {
  for (const char* ok : {"cpu", "cuda", "cuda:0", "cuda:12"}) EXPECT_TRUE(is_device_name(ok)) << ok;
  for (const char* bad : {"gpu", "auto", "cuda:", "cuda:x", "cuda:123", "CPU", " cpu", "cuda:-1"})
    EXPECT_FALSE(is_device_name(bad)) << bad;
  EXPECT_TRUE(is_device_name("auto", /*allow_auto=*/true));
  try {
    pick_device("gpu");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("device: expected auto, cpu, cuda or cuda:N, got \"gpu\"", 0), 0u) << e.what();
  }
  const auto info = runtime_info();
  if (!info.cuda_available) {
    for (const char* d : {"cuda", "cuda:0"}) {
      try {
        pick_device(d);
        ADD_FAILURE() << d;
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind(std::string("device: \"") + d + "\" requested but ", 0), 0u) << e.what();
      }
    }
  } else {
    EXPECT_EQ(pick_device("cuda:0"), "cuda:0");
    EXPECT_THROW(pick_device("cuda:" + std::to_string(info.cuda_devices)), Error);
  }
}

TEST(Runtime, MatmulIsCorrectSizeAndFinite) {
  const auto r = bench_matmul(128, 2, "float32", "cpu");
  EXPECT_EQ(r.device, "cpu");
  EXPECT_GT(r.seconds, 0.0);
  EXPECT_GT(r.gflops, 0.0);
  EXPECT_THROW(bench_matmul(0, 1, "float32", "cpu"), Error);
}

TEST(Runtime, CudaMatmulWhenAvailable) {
  if (!runtime_info().cuda_available) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  const auto r = bench_matmul(1024, 3, "bfloat16", "cuda");
  EXPECT_EQ(r.device, "cuda");
  EXPECT_GT(r.gflops, 1000.0);
}

}  // namespace
}  // namespace strata::agent
