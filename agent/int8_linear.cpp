#include "agent/int8_linear.h"

#include <ATen/ATen.h>

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
  return {std::move(q), std::move(scale)};
}

void requantize_int8(Int8Weight& dst, const at::Tensor& w) {
  STRATA_CHECK(dst.defined(), "requantize_int8: the destination has no int8 weight");
  STRATA_CHECK(w.sizes() == dst.q.sizes(), "requantize_int8: weight " << w.sizes() << " for int8 " << dst.q.sizes());
  at::NoGradGuard ng;
  auto [q, scale] = quantize_parts(w.to(dst.q.device()), dst.scale.scalar_type());
  dst.q.copy_(q);
  dst.scale.copy_(scale);
}

at::Tensor dequantize_int8(const Int8Weight& w) {
  return w.q.to(w.scale.scalar_type()) * w.scale.unsqueeze(1);
}

bool int8_kernel_used(const at::Tensor& q, int64_t rows) {
  return q.device().is_cpu() && q.size(1) % 16 == 0 && rows <= kInt8KernelMaxRows;
}

at::Tensor int8_linear(const at::Tensor& x, const Int8Weight& w, const at::Tensor& bias) {
  STRATA_CHECK(w.defined(), "int8_linear: no int8 weight");
  const int64_t K = w.q.size(1), N = w.q.size(0);
  STRATA_CHECK(x.size(-1) == K, "int8_linear: input " << x.sizes() << " for a weight of " << K << " columns");
  const auto dtype = w.scale.scalar_type();
  at::Tensor x2 = x.to(dtype).reshape({-1, K});
  at::Tensor y;
  if (int8_kernel_used(w.q, x2.size(0))) {
    y = at::_weight_int8pack_mm(x2.contiguous(), w.q, w.scale);
  } else {
    y = at::linear(x2, dequantize_int8(w));
  }
  if (bias.defined()) y = y + bias.to(dtype);
  auto out_shape = x.sizes().vec();
  out_shape.back() = N;
  return y.view(out_shape);
}

}  // namespace strata::agent
