#include "agent/int8_linear.h"

#include <ATen/ATen.h>

#include "agent/int8_gemm.h"
#include "core/error.h"

namespace strata::agent {
namespace {

// The scales (rounded to `dtype`) and q for w; w is read in float32.
std::pair<at::Tensor, at::Tensor> quantize_parts(const at::Tensor& w, at::ScalarType dtype) {
  STRATA_CHECK(w.dim() == 2, "quantize_int8: expected an [N, K] weight, got " << w.sizes());
  STRATA_CHECK(dtype == at::kBFloat16 || dtype == at::kFloat,
               "quantize_int8: scales must be bfloat16 or float32, got " << c10::toString(dtype));
  at::NoGradGuard ng;
  const at::Tensor wf = w.detach().to(at::kFloat);
  // An all-zero row gets the smallest normal scale (q = 0), never a division by 0.
  const at::Tensor amax = wf.abs().amax(1).clamp_min(1e-30);
  const at::Tensor scale = (amax / 127.0).to(dtype);
  const at::Tensor q = (wf / scale.to(at::kFloat).unsqueeze(1)).round().clamp(-127, 127).to(at::kChar);
  return {q.contiguous(), scale};
}

}  // namespace

Int8Weight quantize_int8(const at::Tensor& w, at::ScalarType scale_dtype) {
  auto [q, scale] = quantize_parts(w, scale_dtype);
  Int8Weight out{std::move(q), std::move(scale), {}, {}};
  repack_int8(out);
  return out;
}

void repack_int8(Int8Weight& w) {
  w.packed = w.defined() && w.q.device().is_cpu() && int8_gemm_available() ? int8_gemm_pack(w.q) : at::Tensor();
  // Where the VNNI kernel runs it serves every product (only tests and benchmarks ask for the
  // dequantised path there, and it dequantises per call); elsewhere every prefill takes it.
  w.dequant = w.defined() && !w.packed.defined() ? dequantize_int8(w) : at::Tensor();
}

void requantize_int8(Int8Weight& dst, const at::Tensor& w) {
  STRATA_CHECK(dst.defined(), "requantize_int8: the destination has no int8 weight");
  STRATA_CHECK(w.sizes() == dst.q.sizes(), "requantize_int8: weight " << w.sizes() << " for int8 " << dst.q.sizes());
  at::NoGradGuard ng;
  auto [q, scale] = quantize_parts(w.to(dst.q.device()), dst.scale.scalar_type());
  dst.q.copy_(q);
  dst.scale.copy_(scale);
  if (dst.packed.defined()) dst.packed = int8_gemm_pack(dst.q);  // writes every byte: no copy into the old one
  if (dst.dequant.defined()) dst.dequant = dequantize_int8(dst);
}

at::Tensor dequantize_int8(const Int8Weight& w) {
  return w.q.to(w.scale.scalar_type()) * w.scale.unsqueeze(1);
}

namespace {
std::optional<Int8Path> g_override;
}

void override_int8_path(std::optional<Int8Path> path) { g_override = path; }

Int8Path int8_path(const at::Tensor& q, int64_t rows) {
  if (!q.device().is_cpu()) return Int8Path::kDequant;
  if (g_override) {
    if (*g_override == Int8Path::kVnni && int8_gemm_available()) return Int8Path::kVnni;
    if (*g_override == Int8Path::kPack && q.size(1) % 16 == 0) return Int8Path::kPack;
    return Int8Path::kDequant;
  }
  if (int8_gemm_available()) return Int8Path::kVnni;
  if (q.size(1) % 16 == 0 && rows <= kInt8KernelMaxRows) return Int8Path::kPack;
  return Int8Path::kDequant;
}

at::Tensor int8_linear_via(Int8Path path, const at::Tensor& x, const Int8Weight& w, const at::Tensor& bias) {
  STRATA_CHECK(w.defined(), "int8_linear: no int8 weight");
  const int64_t K = w.q.size(1), N = w.q.size(0);
  STRATA_CHECK(x.size(-1) == K, "int8_linear: input " << x.sizes() << " for a weight of " << K << " columns");
  const auto dtype = w.scale.scalar_type();
  at::Tensor y;
  if (path == Int8Path::kVnni) {
    // Reads bf16/fp32 x directly, adds the bias itself: one output tensor, no casts.
    y = int8_gemm(x.reshape({-1, K}), w, bias);
  } else {
    at::Tensor x2 = x.to(dtype).reshape({-1, K});
    if (path == Int8Path::kPack) {
      STRATA_CHECK(K % 16 == 0 && w.q.device().is_cpu(), "int8_linear: _weight_int8pack_mm needs K % 16 == 0 on the CPU");
      y = at::_weight_int8pack_mm(x2.contiguous(), w.q, w.scale);
    } else {
      y = at::linear(x2, w.dequant.defined() ? w.dequant : dequantize_int8(w));
    }
    if (bias.defined()) y = y + bias.to(dtype);
  }
  auto out_shape = x.sizes().vec();
  out_shape.back() = N;
  return y.view(out_shape);
}

at::Tensor int8_linear(const at::Tensor& x, const Int8Weight& w, const at::Tensor& bias) {
  STRATA_CHECK(w.defined(), "int8_linear: no int8 weight");
  const int64_t K = w.q.size(1);
  return int8_linear_via(int8_path(w.q, x.numel() / std::max<int64_t>(K, 1)), x, w, bias);
}

}  // namespace strata::agent
