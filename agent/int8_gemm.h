// strata's own int8 product (decoding steps and prefills of any length): y = x q^T * scale with int8 weights q [N, K]
// (per-output-channel scales) and activations x [M, K] in bf16 or fp32.
//
// AVX-512 VNNI: each row of x is quantised on the fly to int8 in blocks of 64 columns (one scale
// per block, amax / 127, as llama.cpp's Q8_0 does with blocks of 32), and the int8 dot products run
// on vpdpbusd with one output channel per lane (a row's 4 int8 values broadcast against 16
// channels' 4 weights; the weights flipped to unsigned by xor 0x80, the resulting 128 * sum(x)
// removed per block). Accumulation is exact in int32 inside a block and fp32 across blocks. Error against the
// product of the same int8 weights with unquantised x: at most sum_b s_b / 2 * sum_{k in b} |q_nk|
// * scale_n (s_b: a block's activation step), i.e. half an activation step per block, on top of
// the weight quantisation the existing path already has.
//
// Multithreaded over tiles of 64 channels x 4 rows (at::parallel_for), or 64 channels x 32 rows
// from 32 rows on (prefills; their rows are quantised in parallel too); any K, M and N (the packed weights are
// padded; see int8_gemm_pack).
// Compiled with target attributes and chosen at run time: int8_gemm_available() is false on CPUs
// without AVX-512 F/BW/VNNI, and callers keep their own path there.
#pragma once

#include <ATen/core/Tensor.h>

#include "agent/int8_linear.h"

namespace strata::agent {

// Whether the CPU runs int8_gemm (AVX-512 F, BW, VL and VNNI); STRATA_INT8_GEMM=0 turns it off.
bool int8_gemm_available();
// The kernel's weight layout for q ([N, K] int8, CPU): quads of 64 output channels (the last one
// padded with zero rows), each a run of Kp / 4 groups (K padded with zeros to Kp, a multiple of
// 64); a group is 4 lines of 64 bytes, one per panel of 16 channels, and line j holds channel
// 16j + c's columns 4g..4g+3 at bytes 4c..4c+3; every byte is q + 128 as uint8. A quad is one
// linear stream the hardware prefetcher follows (q's row-major layout, read as interleaved short
// rows, ran at a third of the bandwidth). int8_gemm_packed_bytes(N, K) bytes; quantize_int8
// stores it in Int8Weight::packed where int8_gemm_available().
int64_t int8_gemm_packed_bytes(int64_t N, int64_t K);
at::Tensor int8_gemm_pack(const at::Tensor& q);
// x: [M, K] bf16 or fp32 (other dtypes are cast to fp32); w: q [N, K] int8 and scale [N] bf16 or
// fp32, with w.packed = int8_gemm_pack(w.q) (packed on the fly when undefined: correct, slower).
// Returns [M, N] in scale's dtype (+ bias in that dtype when defined). Requires int8_gemm_available().
at::Tensor int8_gemm(const at::Tensor& x, const Int8Weight& w, const at::Tensor& bias = {});
// The same product on raw float32 rows: x [M, K] (K = w.q.size(1)) -> y [M, N] float32, no bias.
void int8_gemm_f32(const float* x, int64_t M, const Int8Weight& w, float* y);

}  // namespace strata::agent
