// strata's own int8 product for few rows (decoding): y = x q^T * scale with int8 weights q [N, K]
// (per-output-channel scales) and activations x [M, K] in bf16 or fp32.
//
// AVX-512 VNNI: each row of x is quantised on the fly to int8 in blocks of 64 columns (one scale
// per block, amax / 127, as llama.cpp's Q8_0 does with blocks of 32), and the int8 dot products run
// on vpdpbusd (the weights flipped to unsigned by xor 0x80, the resulting 128 * sum(x) removed per
// block). Accumulation is exact in int32 inside a block and fp32 across blocks. Error against the
// product of the same int8 weights with unquantised x: at most sum_b s_b / 2 * sum_{k in b} |q_nk|
// * scale_n (s_b: a block's activation step), i.e. half an activation step per block, on top of
// the weight quantisation the existing path already has.
//
// Multithreaded over output channels (at::parallel_for); any K (a masked tail), any M, any N.
// Compiled with target attributes and chosen at run time: int8_gemm_available() is false on CPUs
// without AVX-512 F/BW/VNNI, and callers keep their own path there.
#pragma once

#include <ATen/core/Tensor.h>

namespace strata::agent {

// Whether the CPU runs int8_gemm (AVX-512 F, BW, VL and VNNI); STRATA_INT8_GEMM=0 turns it off.
bool int8_gemm_available();
// x: [M, K] bf16 or fp32 contiguous; q: [N, K] int8 contiguous; scale: [N] bf16 or fp32.
// Returns [M, N] in scale's dtype (+ bias in that dtype when defined). Requires int8_gemm_available().
at::Tensor int8_gemm(const at::Tensor& x, const at::Tensor& q, const at::Tensor& scale, const at::Tensor& bias = {});
// The same product on raw float32 rows: x [M, K] (K = q.size(1)) -> y [M, N] float32, no bias.
void int8_gemm_f32(const float* x, int64_t M, const at::Tensor& q, const at::Tensor& scale, float* y);

}  // namespace strata::agent
