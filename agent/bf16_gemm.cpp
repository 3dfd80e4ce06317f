#include "agent/bf16_gemm.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "agent/kernel_switch.h"
#include "core/error.h"

namespace strata::agent {
namespace {

constexpr int64_t kLanes = 16;              // output channels per panel: one zmm of float32
constexpr int64_t kNP = 4;                  // panels per register tile: a quad of 64 channels
constexpr int64_t kWidth = kNP * kLanes;    // channels per quad
constexpr int64_t kLine = kLanes * 2;       // bf16 per panel line: 16 channels x 2 columns
constexpr int64_t kMR = 6;                  // rows per register tile: 24 accumulators + 4 weight lines

#define STRATA_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// acc += pairwise bf16 products of a and b, in place (asm for the same reason as int8_gemm's
// vpdpbusd: GCC 12 copies each accumulator of the intrinsic's result inside the tile loop).
STRATA_AVX512_BF16 inline __m512 dpbf16(__m512 acc, __m512i a, __m512i b) {
  asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

template <typename O>
STRATA_AVX512_BF16 inline void store_lanes(O* y, __m512 v, __mmask16 m);
template <>
STRATA_AVX512_BF16 inline void store_lanes<float>(float* y, __m512 v, __mmask16 m) {
  _mm512_mask_storeu_ps(y, m, v);
}
template <>
STRATA_AVX512_BF16 inline void store_lanes<c10::BFloat16>(c10::BFloat16* y, __m512 v, __mmask16 m) {
  // Round to nearest even, as c10::BFloat16's conversion.
  const __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
  _mm256_mask_storeu_epi16(y, m, h);
}

// An MR-row tile against one quad: rows x (pairs of bf16 as uint32, ldx pairs apart), G groups of
// the quad's packed weights w, results for the quad's first nn channels into y (ldy apart).
template <int MR, typename O>
STRATA_AVX512_BF16 void tile(const uint32_t* x, int64_t ldx, int64_t G, const uint16_t* w, O* y, int64_t ldy,
                             int64_t nn) {
  __m512 acc[MR][kNP];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < kNP; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const uint16_t* wg = w + g * kNP * kLine;
    __m512i wv[kNP];
    for (int j = 0; j < kNP; ++j) wv[j] = _mm512_loadu_si512(wg + j * kLine);
    for (int i = 0; i < MR; ++i) {
      const __m512i xv = _mm512_set1_epi32(static_cast<int32_t>(x[i * ldx + g]));
      for (int j = 0; j < kNP; ++j) acc[i][j] = dpbf16(acc[i][j], wv[j], xv);
    }
  }
  for (int j = 0; j < kNP; ++j) {
    const int64_t left = std::clamp<int64_t>(nn - j * kLanes, 0, kLanes);
    if (left == 0) break;
    const __mmask16 m = static_cast<__mmask16>((1u << left) - 1);
    for (int i = 0; i < MR; ++i) store_lanes(y + i * ldy + j * kLanes, acc[i][j], m);
  }
}

template <typename O>
void tile_any(int64_t mr, const uint32_t* x, int64_t ldx, int64_t G, const uint16_t* w, O* y, int64_t ldy,
              int64_t nn) {
  switch (mr) {
    case 1: tile<1>(x, ldx, G, w, y, ldy, nn); break;
    case 2: tile<2>(x, ldx, G, w, y, ldy, nn); break;
    case 3: tile<3>(x, ldx, G, w, y, ldy, nn); break;
    case 4: tile<4>(x, ldx, G, w, y, ldy, nn); break;
    case 5: tile<5>(x, ldx, G, w, y, ldy, nn); break;
    default: tile<6>(x, ldx, G, w, y, ldy, nn); break;
  }
}

// M rows of K floats as bf16 (nearest even), Kp per row, the padding column zero.
STRATA_AVX512_BF16 void to_bf16_rows(const float* x, int64_t M, int64_t K, int64_t Kp, uint16_t* out) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < Kp; k += 32) {
      const int64_t lo_n = std::clamp<int64_t>(K - k, 0, 16), hi_n = std::clamp<int64_t>(K - k - 16, 0, 16);
      const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << lo_n) - 1), x + m * K + k);
      const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << hi_n) - 1), x + m * K + k + 16);
      const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
      const int64_t n = std::min<int64_t>(32, Kp - k);
      const __mmask32 sm = n == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << n) - 1);
      _mm512_mask_storeu_epi16(out + m * Kp + k, sm, v);
    }
}

// y = x w^T for rows of bf16 pairs. Tasks are (quad, chunk of rows) with the rows split evenly
// into chunks, as many tasks as a multiple of the threads: at::parallel_for hands each thread one
// contiguous run of tasks, so a product of 9 quads (N = 576) still splits evenly; one of few
// rows is split over its quads alone.
template <typename O>
void gemm_pairs(const uint32_t* x, int64_t ldx, int64_t M, const uint16_t* packed, int64_t N, int64_t Kp, O* y) {
  const int64_t quads = (N + kWidth - 1) / kWidth, G = Kp / 2;
  auto run = [&](int64_t q, int64_t m_begin, int64_t m_end) {
    const int64_t n0 = q * kWidth, nn = std::min(kWidth, N - n0);
    for (int64_t m0 = m_begin; m0 < m_end; m0 += kMR)
      tile_any(std::min(kMR, m_end - m0), x + m0 * ldx, ldx, G, packed + q * kWidth * Kp, y + m0 * N + n0, N, nn);
  };
  const int64_t threads = at::get_num_threads();
  // Every product is split, even one of a single row: bound by reading the weights, two threads
  // read them faster than one (a SmolLM2 pass at one row: 17.1 -> 10.9 ms on this 2-vCPU EPYC).
  if (threads == 1) {
    for (int64_t q = 0; q < quads; ++q) run(q, 0, M);
    return;
  }
  // At least 4 tasks per thread; row chunks of at least a tile where the rows allow it.
  const int64_t max_chunks = std::max<int64_t>(1, M / kMR);
  int64_t chunks = std::min(max_chunks, (4 * threads + quads - 1) / quads);
  while (chunks < max_chunks && (quads * chunks) % threads != 0) ++chunks;
  at::parallel_for(0, quads * chunks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t q = t / chunks, c = t % chunks;
      run(q, c * M / chunks, (c + 1) * M / chunks);
    }
  });
}

int64_t padded_k(int64_t K) { return (K + 1) / 2 * 2; }

void check_packed(const at::Tensor& packed, int64_t N, int64_t K) {
  STRATA_CHECK(bf16_gemm_available(), "bf16_gemm: this CPU has no AVX-512 BF16");
  STRATA_CHECK(packed.defined() && packed.scalar_type() == at::kBFloat16 && packed.device().is_cpu() &&
                   packed.is_contiguous() && packed.numel() == bf16_gemm_packed_elems(N, K),
               "bf16_gemm: packed weights of " << (packed.defined() ? packed.numel() : 0) << " elements for an ["
                                               << N << ", " << K << "] matrix (expected "
                                               << bf16_gemm_packed_elems(N, K) << " bf16 on the CPU)");
}

}  // namespace

bool bf16_gemm_available() {
  static const bool ok = [] {
    if (kernel_switched_off("STRATA_BF16_GEMM")) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  }();
  return ok;
}

int64_t bf16_gemm_packed_elems(int64_t N, int64_t K) {
  return (N + kWidth - 1) / kWidth * kWidth * padded_k(K);
}

at::Tensor bf16_gemm_pack(const at::Tensor& w_in) {
  STRATA_CHECK(w_in.dim() == 2 && at::isFloatingType(w_in.scalar_type()) && w_in.device().is_cpu(),
               "bf16_gemm_pack: expected an [N, K] floating-point CPU tensor, got "
                   << w_in.sizes() << " " << c10::toString(w_in.scalar_type()) << " on " << w_in.device());
  const at::Tensor w = w_in.to(at::kBFloat16).contiguous();
  const int64_t N = w.size(0), K = w.size(1), Kp = padded_k(K);
  at::Tensor packed = at::zeros({bf16_gemm_packed_elems(N, K)}, w.options());
  const uint16_t* src = reinterpret_cast<const uint16_t*>(w.data_ptr<c10::BFloat16>());
  uint16_t* dst = reinterpret_cast<uint16_t*>(packed.data_ptr<c10::BFloat16>());
  at::parallel_for(0, N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      // Channel n: quad n / 64, panel (n / 16) % 4, lane n % 16; column k: group k / 2, half k % 2.
      uint16_t* base = dst + (n / kWidth) * kWidth * Kp + ((n / kLanes) % kNP) * kLine + (n % kLanes) * 2;
      const uint16_t* row = src + n * K;
      for (int64_t k = 0; k < K; ++k) base[(k / 2) * kNP * kLine + k % 2] = row[k];
    }
  });
  return packed;
}

void bf16_gemm_f32(const float* x, int64_t M, const at::Tensor& packed, int64_t N, int64_t K, float* y) {
  check_packed(packed, N, K);
  const int64_t Kp = padded_k(K);
  thread_local std::vector<uint16_t> xb;  // per-thread scratch, reused across calls
  xb.resize(static_cast<size_t>(M * Kp));
  to_bf16_rows(x, M, K, Kp, xb.data());
  gemm_pairs(reinterpret_cast<const uint32_t*>(xb.data()), Kp / 2, M,
             reinterpret_cast<const uint16_t*>(packed.data_ptr<c10::BFloat16>()), N, Kp, y);
}

at::Tensor bf16_gemm(const at::Tensor& x_in, const at::Tensor& packed, int64_t N, at::ScalarType out_dtype) {
  STRATA_CHECK(x_in.dim() == 2 && x_in.device().is_cpu() && at::isFloatingType(x_in.scalar_type()),
               "bf16_gemm: x must be a 2-D floating-point CPU tensor, got " << x_in.sizes());
  STRATA_CHECK(out_dtype == at::kBFloat16 || out_dtype == at::kFloat, "bf16_gemm: output must be bf16 or fp32");
  const int64_t M = x_in.size(0), K = x_in.size(1), Kp = padded_k(K);
  check_packed(packed, N, K);
  // bf16 rows of even length are used as they are; others are rounded (and padded) first.
  at::Tensor xb;
  if (x_in.scalar_type() == at::kBFloat16 && K == Kp) {
    xb = x_in.contiguous();
  } else {
    const at::Tensor xf = x_in.to(at::kFloat).contiguous();
    xb = at::empty({M, Kp}, x_in.options().dtype(at::kBFloat16));
    to_bf16_rows(xf.data_ptr<float>(), M, K, Kp, reinterpret_cast<uint16_t*>(xb.data_ptr<c10::BFloat16>()));
  }
  at::Tensor y = at::empty({M, N}, x_in.options().dtype(out_dtype));
  const auto* xp = reinterpret_cast<const uint32_t*>(xb.data_ptr<c10::BFloat16>());
  const auto* wp = reinterpret_cast<const uint16_t*>(packed.data_ptr<c10::BFloat16>());
  if (out_dtype == at::kFloat) gemm_pairs(xp, Kp / 2, M, wp, N, Kp, y.data_ptr<float>());
  else gemm_pairs(xp, Kp / 2, M, wp, N, Kp, y.data_ptr<c10::BFloat16>());
  return y;
}

}  // namespace strata::agent
