#include "agent/int8_gemm.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace strata::agent {
namespace {

constexpr int64_t kBlock = 64;  // columns per activation scale: one zmm of int8
constexpr int64_t kNR = 4;      // output channels per register tile
constexpr int64_t kMR = 4;      // rows per register tile

#define STRATA_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// One 64-column block of an MR x NR tile: acc[i][j] += s_i * (dot(w_j + 128, x_i) per lane).
template <int MR, int NR, bool kMasked>
STRATA_AVX512_VNNI __attribute__((always_inline)) inline void block_step(__m512 (&acc)[MR][NR], const int8_t* xq,
                                                                          int64_t Kp, const float* sx, int64_t nb,
                                                                          const int8_t* w, int64_t K, int64_t b,
                                                                          __mmask64 mask) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i wv[NR];
  for (int j = 0; j < NR; ++j) {
    const int8_t* p = w + j * K + b * kBlock;
    const __m512i v = kMasked ? _mm512_maskz_loadu_epi8(mask, p) : _mm512_loadu_si512(p);
    wv[j] = _mm512_xor_si512(v, flip);  // int8 w -> uint8 w + 128 (masked zeros meet zero x)
  }
  for (int i = 0; i < MR; ++i) {
    const __m512i xv = _mm512_loadu_si512(xq + i * Kp + b * kBlock);
    const __m512 s = _mm512_set1_ps(sx[i * nb + b]);
    for (int j = 0; j < NR; ++j) {
      const __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[j], xv);
      acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), s, acc[i][j]);
    }
  }
}

// out[i * NR + j] = sum_b s_ib * dot(w_j + 128, xq_i) over the K columns (the +128 removed later).
template <int MR, int NR>
STRATA_AVX512_VNNI void tile(const int8_t* xq, int64_t Kp, const float* sx, int64_t nb, const int8_t* w, int64_t K,
                             float* out) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  const int64_t full = K / kBlock;
  for (int64_t b = 0; b < full; ++b) block_step<MR, NR, false>(acc, xq, Kp, sx, nb, w, K, b, 0);
  if (full < nb) {
    const __mmask64 mask = (~0ULL) >> (64 - (K - full * kBlock));
    block_step<MR, NR, true>(acc, xq, Kp, sx, nb, w, K, full, mask);
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = _mm512_reduce_add_ps(acc[i][j]);
}

template <int NR>
void tile_rows(int64_t mr, const int8_t* xq, int64_t Kp, const float* sx, int64_t nb, const int8_t* w, int64_t K,
               float* out) {
  switch (mr) {
    case 1: tile<1, NR>(xq, Kp, sx, nb, w, K, out); break;
    case 2: tile<2, NR>(xq, Kp, sx, nb, w, K, out); break;
    case 3: tile<3, NR>(xq, Kp, sx, nb, w, K, out); break;
    default: tile<4, NR>(xq, Kp, sx, nb, w, K, out); break;
  }
}

// Row m of x as int8 blocks of 64 (zero padded to Kp), one scale per block, and
// corr[m] = 128 * sum_b s_b * sum(q in b), the term the unsigned weights add.
template <typename T>
void quantise_rows(const T* x, int64_t M, int64_t K, int64_t Kp, int8_t* xq, float* sx, float* corr) {
  const int64_t nb = Kp / kBlock;
  float buf[kBlock];
  for (int64_t m = 0; m < M; ++m) {
    double c = 0;
    int8_t* qrow = xq + m * Kp;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t k0 = b * kBlock, n = std::min(kBlock, K - k0);
      float amax = 0;
      for (int64_t k = 0; k < n; ++k) {
        buf[k] = static_cast<float>(x[m * K + k0 + k]);
        amax = std::max(amax, std::fabs(buf[k]));
      }
      const float s = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
      int32_t sum = 0;
      for (int64_t k = 0; k < n; ++k) {
        const int32_t v = std::clamp(static_cast<int32_t>(std::nearbyint(buf[k] * inv)), -127, 127);
        qrow[k0 + k] = static_cast<int8_t>(v);
        sum += v;
      }
      for (int64_t k = n; k < kBlock; ++k) qrow[k0 + k] = 0;
      sx[m * nb + b] = s;
      c += 128.0 * static_cast<double>(s) * sum;
    }
    corr[m] = static_cast<float>(c);
  }
}

template <typename O, typename S>
void run_tiles(int64_t t0, int64_t t1, int64_t M, int64_t N, int64_t K, int64_t Kp, const int8_t* xq, const float* sx,
               const float* corr, const int8_t* q, const S* scale, const S* bias, O* y) {
  const int64_t nb = Kp / kBlock;
  float out[kMR * kNR];
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t n0 = t * kNR, nr = std::min(kNR, N - n0);
    for (int64_t m0 = 0; m0 < M; m0 += kMR) {
      const int64_t mr = std::min(kMR, M - m0);
      const int8_t* xm = xq + m0 * Kp;
      const float* sm = sx + m0 * nb;
      if (nr == kNR) {
        tile_rows<kNR>(mr, xm, Kp, sm, nb, q + n0 * K, K, out);
        for (int64_t i = 0; i < mr; ++i)
          for (int64_t j = 0; j < kNR; ++j) {
            float v = static_cast<float>(scale[n0 + j]) * (out[i * kNR + j] - corr[m0 + i]);
            if (bias != nullptr) v = static_cast<float>(static_cast<S>(v)) + static_cast<float>(bias[n0 + j]);
            y[(m0 + i) * N + n0 + j] = static_cast<O>(v);
          }
      } else {
        for (int64_t j = 0; j < nr; ++j) {
          tile_rows<1>(mr, xm, Kp, sm, nb, q + (n0 + j) * K, K, out);
          for (int64_t i = 0; i < mr; ++i) {
            float v = static_cast<float>(scale[n0 + j]) * (out[i] - corr[m0 + i]);
            if (bias != nullptr) v = static_cast<float>(static_cast<S>(v)) + static_cast<float>(bias[n0 + j]);
            y[(m0 + i) * N + n0 + j] = static_cast<O>(v);
          }
        }
      }
    }
  }
}

bool cpu_has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

}  // namespace

bool int8_gemm_available() {
  static const bool ok = [] {
    const char* env = std::getenv("STRATA_INT8_GEMM");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    return cpu_has_vnni();
  }();
  return ok;
}

namespace {

// Quantises x's rows into per-thread scratch and runs the tiles over the output channels.
template <typename X, typename S, typename O>
void gemm_impl(const X* x, int64_t M, int64_t K, const int8_t* q, int64_t N, const S* scale, const S* bias, O* y) {
  const int64_t nb = (K + kBlock - 1) / kBlock, Kp = nb * kBlock;
  // Per-thread scratch, reused across calls (no allocation per product once grown).
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<float> sx, corr;
  xq.resize(static_cast<size_t>(M * Kp));
  sx.resize(static_cast<size_t>(M * nb));
  corr.resize(static_cast<size_t>(M));
  quantise_rows(x, M, K, Kp, xq.data(), sx.data(), corr.data());
  const int8_t* xqp = xq.data();
  const float* sxp = sx.data();
  const float* cp = corr.data();
  const int64_t tiles = (N + kNR - 1) / kNR;
  // Grain: at least 16 tiles (64 channels) per task, so that tiny products stay on one thread.
  at::parallel_for(0, tiles, 16, [&](int64_t t0, int64_t t1) {
    run_tiles(t0, t1, M, N, K, Kp, xqp, sxp, cp, q, scale, bias, y);
  });
}

}  // namespace

void int8_gemm_f32(const float* x, int64_t M, const at::Tensor& q, const at::Tensor& scale, float* y) {
  STRATA_CHECK(int8_gemm_available(), "int8_gemm: this CPU has no AVX-512 VNNI");
  const int64_t N = q.size(0), K = q.size(1);
  if (scale.scalar_type() == at::kBFloat16)
    gemm_impl<float, c10::BFloat16, float>(x, M, K, q.data_ptr<int8_t>(), N, scale.data_ptr<c10::BFloat16>(), nullptr, y);
  else
    gemm_impl<float, float, float>(x, M, K, q.data_ptr<int8_t>(), N, scale.data_ptr<float>(), nullptr, y);
}

at::Tensor int8_gemm(const at::Tensor& x_in, const at::Tensor& q, const at::Tensor& scale, const at::Tensor& bias) {
  STRATA_CHECK(int8_gemm_available(), "int8_gemm: this CPU has no AVX-512 VNNI");
  STRATA_CHECK(x_in.dim() == 2 && q.dim() == 2 && x_in.size(1) == q.size(1),
               "int8_gemm: x " << x_in.sizes() << " and q " << q.sizes());
  STRATA_CHECK(q.scalar_type() == at::kChar && q.is_contiguous() && q.device().is_cpu(), "int8_gemm: q must be int8");
  const auto dt = scale.scalar_type();
  STRATA_CHECK(dt == at::kBFloat16 || dt == at::kFloat, "int8_gemm: scales must be bf16 or fp32");
  const at::Tensor x = (x_in.scalar_type() == at::kBFloat16 || x_in.scalar_type() == at::kFloat)
                           ? x_in.contiguous()
                           : x_in.to(at::kFloat).contiguous();
  const int64_t M = x.size(0), K = x.size(1), N = q.size(0);
  const at::Tensor sc = scale.contiguous();
  const at::Tensor bs = bias.defined() ? bias.to(dt).contiguous() : at::Tensor();
  at::Tensor y = at::empty({M, N}, scale.options());
  const int8_t* qp = q.data_ptr<int8_t>();
  auto go = [&](auto* xp) {
    if (dt == at::kBFloat16)
      gemm_impl(xp, M, K, qp, N, sc.data_ptr<c10::BFloat16>(),
                bs.defined() ? bs.data_ptr<c10::BFloat16>() : nullptr, y.data_ptr<c10::BFloat16>());
    else
      gemm_impl(xp, M, K, qp, N, sc.data_ptr<float>(), bs.defined() ? bs.data_ptr<float>() : nullptr,
                y.data_ptr<float>());
  };
  if (x.scalar_type() == at::kBFloat16) go(x.data_ptr<c10::BFloat16>());
  else go(x.data_ptr<float>());
  return y;
}

}  // namespace strata::agent
