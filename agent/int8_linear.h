// Weight-only int8 linear layers for rollout copies of the policy (rollout_precision int8).
//
// Each [N, K] weight matrix becomes int8 values q with one scale per output channel (row n):
// scale_n = max_k |w_nk| / 127, rounded to the activation dtype, and q_nk = round(w_nk / scale_n)
// clamped to [-127, 127] (computed with the rounded scale, so q * scale is the nearest int8 grid
// point of the stored scale). A product is y = x q^T * scale (+ bias), in the activation dtype.
//
// Kernels: on the CPU, LibTorch's own at::_weight_int8pack_mm (int8 weights, bf16/fp32
// activations, fp32 accumulation) when K is a multiple of 16 (its vector loop has no tail: other
// K crash) and the product has at most kInt8KernelMaxRows rows (it recomputes the int8 -> float
// conversion for every row, so on this CPU it beats a bf16 product only at a few rows).
// Otherwise, and on every other device, the weight is dequantised (q * scale in the activation
// dtype) and multiplied by LibTorch's ordinary linear: the same int8 weights, a float product.
//
// The header needs only ATen's Tensor, not <torch/torch.h>.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace strata::agent {

struct Int8Weight {
  at::Tensor q;      // [N, K] int8, contiguous
  at::Tensor scale;  // [N] in the activation dtype
  bool defined() const { return q.defined(); }
};

// Rows of a product up to which at::_weight_int8pack_mm is used on the CPU.
inline constexpr int64_t kInt8KernelMaxRows = 8;

// Quantises `w` ([N, K], any float dtype) with scales in `scale_dtype` (bf16 or fp32), on w's
// device.
Int8Weight quantize_int8(const at::Tensor& w, at::ScalarType scale_dtype);
// Re-quantises `w` into dst's tensors in place (their shapes, dtypes and device stay); the values
// equal quantize_int8(w, dst.scale.scalar_type()).
void requantize_int8(Int8Weight& dst, const at::Tensor& w);
// q * scale as an [N, K] tensor in the scale's dtype.
at::Tensor dequantize_int8(const Int8Weight& w);
// x: [..., K] (cast to the scale's dtype) -> [..., N] in the scale's dtype. bias may be undefined.
at::Tensor int8_linear(const at::Tensor& x, const Int8Weight& w, const at::Tensor& bias = {});
// Whether int8_linear runs at::_weight_int8pack_mm for `rows` rows of K columns on `device`.
bool int8_kernel_used(const at::Tensor& q, int64_t rows);

}  // namespace strata::agent
