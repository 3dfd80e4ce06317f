// strata's own bf16 product for decoding: y = x w^T with bf16 weights w [N, K] held in the
// kernel's packed layout and activations x [M, K] rounded to bf16, accumulated in float32.
//
// AVX-512 BF16 (vdpbf16ps): one output channel per lane. Per pair of columns, a row's two bf16
// values are broadcast to every lane and vdpbf16ps adds their products with 16 channels' two
// weights to the lanes' float32 sums; a register tile is up to 6 rows x 64 channels (24 zmm
// accumulators + 4 weight registers). The weights of 64 channels are one linear stream (see
// bf16_gemm_pack), so a product of few rows reads them at the memory's speed, and one of 16-64
// rows reuses each weight line from L1 for every row of the tile.
//
// Why not LibTorch's at::linear: at decoding sizes (1-64 rows) a bf16 at::linear goes through
// oneDNN's reorders, a fork/join per call and LibTorch's dispatch, about 60% of a batch-16
// SmolLM2 step here (docs/BENCHMARKS.md, issue 17).
//
// Rounding: x is rounded to bf16 (nearest even) as a bf16 at::linear rounds its input; products
// and sums are float32 (vdpbf16ps: denormal inputs and outputs flushed to zero). Results differ
// from at::linear's only in the order of float32 additions.
//
// Compiled with target attributes and chosen at run time: bf16_gemm_available() is false on CPUs
// without AVX-512 F/BW/VL/BF16, and callers keep their own path there.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace strata::agent {

// Whether the CPU runs bf16_gemm (AVX-512 F, BW, VL and BF16); STRATA_BF16_GEMM=0 turns it off.
bool bf16_gemm_available();
// Rows of a product up to which callers use bf16_gemm (decoding steps and the lm_head of a
// decoding step). Above, LibTorch's blocked GEMM (prefills) is as fast or faster.
inline constexpr int64_t kBf16GemmMaxRows = 128;

// The packed layout of w ([N, K], any float dtype, CPU): quads of 64 output channels (the last one
// padded with zero rows), each a run of Kp / 2 groups (K padded with a zero column to Kp, even);
// a group is 4 lines of 32 bf16 (64 bytes), one per panel of 16 channels, and line j holds channel
// 16j + c's columns 2g, 2g+1 at elements 2c, 2c+1. bf16_gemm_packed_elems(N, K) bf16 elements.
int64_t bf16_gemm_packed_elems(int64_t N, int64_t K);
at::Tensor bf16_gemm_pack(const at::Tensor& w);
// y [M, N] (float32, row-major, no bias) = x [M, K] (float32 rows, rounded to bf16) times the
// packed weights of an [N, K] matrix.
void bf16_gemm_f32(const float* x, int64_t M, const at::Tensor& packed, int64_t N, int64_t K, float* y);
// x: [M, K] (any float dtype) -> [M, N] in `out_dtype` (bf16 or fp32). Requires bf16_gemm_available().
at::Tensor bf16_gemm(const at::Tensor& x, const at::Tensor& packed, int64_t N, at::ScalarType out_dtype);

}  // namespace strata::agent
