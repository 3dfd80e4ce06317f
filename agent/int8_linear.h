// Weight-only int8 linear layers for rollout copies of the policy (rollout_precision int8).
//
// Each [N, K] weight matrix becomes int8 values q with one scale per output channel (row n):
// scale_n = max_k |w_nk| / 127, rounded to the activation dtype, and q_nk = round(w_nk / scale_n)
// clamped to [-127, 127] (computed with the rounded scale, so q * scale is the nearest int8 grid
// point of the stored scale). A product is y = x q^T * scale (+ bias), in the activation dtype.
//
// Kernels (Int8Path), chosen per product by int8_path():
//  - kVnni: strata's own AVX-512 VNNI product (agent/int8_gemm.h; activations quantised to int8 in
//    blocks of 64 columns on the fly), on CPUs that have it, for products of any row count (and
//    with it Model's fused decoding step of an int8 copy): it beats LibTorch's bf16 linear on the
//    dequantised weights at every row count measured, 1 to 3,180 (docs/BENCHMARKS.md, issue 17);
//  - kPack: LibTorch's at::_weight_int8pack_mm (int8 weights, bf16/fp32 activations, fp32
//    accumulation) on other CPUs when K is a multiple of 16 (its vector loop has no tail: other K
//    crash) and the product has at most kInt8KernelMaxRows rows (it recomputes the int8 -> float
//    conversion for every row, so it beats a bf16 product only at a few rows);
//  - kDequant otherwise, and on every other device: LibTorch's ordinary linear on the dequantised
//    weight (q * scale in the activation dtype), kept beside q (Int8Weight::dequant) where there
//    is no VNNI kernel, so that a prefill does not dequantise every matrix again (with the kernel,
//    only an override_int8_path(kDequant) takes this path, and dequantises per call).
//
// The header needs only ATen's Tensor, not <torch/torch.h>.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace strata::agent {

struct Int8Weight {
  at::Tensor q;       // [N, K] int8, contiguous
  at::Tensor scale;   // [N] in the activation dtype
  at::Tensor packed;  // q in the VNNI kernel's layout (int8_gemm_pack) on CPUs that run it, else undefined
  at::Tensor dequant; // q * scale [N, K] (kDequant's weight) where packed is undefined; else computed per call
  bool defined() const { return q.defined(); }
};

// Rows of a product up to which at::_weight_int8pack_mm is used on a CPU without VNNI.
inline constexpr int64_t kInt8KernelMaxRows = 8;
enum class Int8Path { kVnni, kPack, kDequant };

// Quantises `w` ([N, K], any float dtype) with scales in `scale_dtype` (bf16 or fp32), on w's
// device; on a CPU with int8_gemm_available() it also packs q for the VNNI kernel (packed), and
// elsewhere keeps q * scale (dequant).
Int8Weight quantize_int8(const at::Tensor& w, at::ScalarType scale_dtype);
// Re-quantises `w` into dst's q and scale in place (their shapes, dtypes and device stay) and
// re-packs dst.packed and recomputes dst.dequant when it has them; the values equal
// quantize_int8(w, dst.scale.scalar_type()), packed and dequantised ones included.
void requantize_int8(Int8Weight& dst, const at::Tensor& w);
// Sets w.packed for w's device: int8_gemm_pack(w.q) on a CPU with int8_gemm_available(), else
// undefined (after moving q to another device); and w.dequant = dequantize_int8(w) where that is
// undefined.
void repack_int8(Int8Weight& w);
// q * scale as an [N, K] tensor in the scale's dtype.
at::Tensor dequantize_int8(const Int8Weight& w);
// x: [..., K] (cast to the scale's dtype) -> [..., N] in the scale's dtype. bias may be undefined.
at::Tensor int8_linear(const at::Tensor& x, const Int8Weight& w, const at::Tensor& bias = {});
// The same product through a given path (kVnni needs int8_gemm_available(), kPack K % 16 == 0 and a
// CPU tensor): for tests and benchmarks.
at::Tensor int8_linear_via(Int8Path path, const at::Tensor& x, const Int8Weight& w, const at::Tensor& bias = {});
// The path int8_linear takes for `rows` rows with weight q (its device, its K).
Int8Path int8_path(const at::Tensor& q, int64_t rows);
// Tests and benchmarks: every int8_linear afterwards takes `path` where it can (kVnni where
// int8_gemm_available(), kPack where K % 16 == 0 on the CPU; else kDequant); nullopt restores the
// default choice. Process-wide, not synchronised: set it while no product runs.
void override_int8_path(std::optional<Int8Path> path);

}  // namespace strata::agent
