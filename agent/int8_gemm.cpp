#include "agent/int8_gemm.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "agent/kernel_switch.h"
#include "core/error.h"

namespace strata::agent {
namespace {

constexpr int64_t kBlock = 64;  // columns per activation scale: one zmm of int8
constexpr int64_t kLanes = 16;  // output channels per panel: one zmm of int32 / float32
constexpr int64_t kGroup = 4;   // columns per dpbusd lane
constexpr int64_t kMR = 4;      // rows per register tile
constexpr int64_t kNP = 4;      // panels per register tile: a quad of 64 channels
constexpr int64_t kBlockRows = 32;  // rows per task of a large product (run_row_blocks), from this many rows on
// Every product is split over the threads, even one of a single row: bound by reading the weights,
// two threads read them faster than one (a SmolLM2 pass at 1-4 rows: 8.4 -> 6.0-6.7 ms on an idle
// 2-vCPU EPYC). The earlier rule (at most 4 rows on the calling thread, "one thread streams as fast
// as two") was measured while this library's at::parallel_for ran serially (built without OpenMP).
// On cores shared with another busy process a split waits for a descheduled thread: run with one
// thread there (grpo_train's rollout_threads defaults to 1).

#define STRATA_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// acc += vpdpbusd(a unsigned, b signed) with b the 4 int8 at x broadcast to every lane, accumulating
// in place. Written as asm because GCC 12 compiles the intrinsic inside the tile loop with a register
// copy per accumulator and step (and spills), about doubling the instructions of the loop; b is the
// instruction's embedded-broadcast memory operand (the signed one, which is what the activations are),
// so a row needs no broadcast of its own per group. The operand's type is bytes, aliasing the rows.
struct Four {
  int8_t v[4];
};
STRATA_AVX512_VNNI inline __m512i dpbusd(__m512i acc, __m512i a, const int8_t* x) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*reinterpret_cast<const Four*>(x)));
  return acc;
}

// An MR-row tile against one quad of 4 panels (64 channels, kNP * 16 lanes). Each lane of a zmm
// is one output channel: per group of 4 columns, a row's 4 int8 values are broadcast to every
// lane and vpdpbusd adds their products with the channel's 4 weights (+128, unsigned) to the
// lane. A 64-column block is 16 such steps into int32 accumulators (exact); then the block's
// activation scale is applied once per row and panel: acc += float(int) * s. The float sums live
// in out [MR][64] (zeroed by the caller). Per 64 x 64 weights: 16 loads and 64 vpdpbusd for
// MR = 4, against one convert and one fma per row and panel. The quad's weights are one linear
// stream: group g's 4 panels are adjacent 64-byte lines (int8_gemm_pack).
// pf: pf_lines 64-byte lines per block from there are prefetched into L2 (the next quad's weights;
// see run_tiles), none when pf_lines is 0.
template <int MR>
STRATA_AVX512_VNNI void tile(const int8_t* xq, int64_t Kp, const float* sx, int64_t nb, const uint8_t* w,
                             float* out, const uint8_t* pf, int64_t pf_lines) {
  constexpr int64_t kLine = kLanes * kGroup;  // one panel's bytes of a group: 64
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t l = 0; l < pf_lines; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(pf + (b * pf_lines + l) * kLine), _MM_HINT_T1);
    __m512i acc[MR][kNP];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < kNP; ++j) acc[i][j] = _mm512_setzero_si512();
    const uint8_t* wb = w + b * (kBlock / kGroup) * kNP * kLine;
    const int8_t* xb = xq + b * kBlock;
    for (int64_t g = 0; g < kBlock / kGroup; ++g) {
      __m512i wv[kNP];
      for (int j = 0; j < kNP; ++j) wv[j] = _mm512_loadu_si512(wb + (g * kNP + j) * kLine);
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < kNP; ++j) acc[i][j] = dpbusd(acc[i][j], wv[j], xb + i * Kp + g * kGroup);
    }
    for (int i = 0; i < MR; ++i) {
      const __m512 sv = _mm512_set1_ps(sx[i * nb + b]);
      for (int j = 0; j < kNP; ++j) {
        float* o = out + (i * kNP + j) * kLanes;
        _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][j]), sv, _mm512_loadu_ps(o)));
      }
    }
  }
}

void tile_any(int64_t mr, const int8_t* xq, int64_t Kp, const float* sx, int64_t nb, const uint8_t* w, float* out,
              const uint8_t* pf, int64_t pf_lines) {
  switch (mr) {
    case 1: tile<1>(xq, Kp, sx, nb, w, out, pf, pf_lines); break;
    case 2: tile<2>(xq, Kp, sx, nb, w, out, pf, pf_lines); break;
    case 3: tile<3>(xq, Kp, sx, nb, w, out, pf, pf_lines); break;
    default: tile<4>(xq, Kp, sx, nb, w, out, pf, pf_lines); break;
  }
}

// 16 values of x (float or bf16) as float32 lanes, lanes outside m zero.
STRATA_AVX512_VNNI inline __m512 load_lanes(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
STRATA_AVX512_VNNI inline __m512 load_lanes(const c10::BFloat16* p, __mmask16 m) {
  const __m256i raw = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

// Row m of x as int8 blocks of 64 (zero padded to Kp), one scale per block (amax / 127; values
// rounded to nearest even, as nearbyint), and corr[m] = 128 * sum_b s_b * sum(q in b), the term
// the unsigned weights add.
template <typename T>
STRATA_AVX512_VNNI void quantise_rows(const T* x, int64_t M, int64_t K, int64_t Kp, int8_t* xq, float* sx,
                                      float* corr) {
  const int64_t nb = Kp / kBlock;
  for (int64_t m = 0; m < M; ++m) {
    double c = 0;
    int8_t* qrow = xq + m * Kp;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t k0 = b * kBlock;
      __m512 v[4];
      __m512 amax = _mm512_setzero_ps();
      for (int i = 0; i < 4; ++i) {
        const int64_t left = std::clamp<int64_t>(K - k0 - 16 * i, 0, 16);
        const __mmask16 mask = static_cast<__mmask16>((1u << left) - 1);
        v[i] = load_lanes(x + m * K + k0 + 16 * i, mask);
        amax = _mm512_max_ps(amax, _mm512_abs_ps(v[i]));
      }
      const float mx = _mm512_reduce_max_ps(amax);
      const float s = mx / 127.0f, inv = mx > 0 ? 127.0f / mx : 0.0f;
      const __m512 iv = _mm512_set1_ps(inv);
      __m512i sum = _mm512_setzero_si512();
      for (int i = 0; i < 4; ++i) {
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(v[i], iv));
        q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
        sum = _mm512_add_epi32(sum, q);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qrow + k0 + 16 * i), _mm512_cvtepi32_epi8(q));
      }
      sx[m * nb + b] = s;
      c += 128.0 * static_cast<double>(s) * _mm512_reduce_add_epi32(sum);
    }
    corr[m] = static_cast<float>(c);
  }
}

// float lanes rounded to bf16 bits as c10::BFloat16(float) rounds (to nearest even, NaN to 0x7FC0),
// so the vector epilogue writes exactly what the scalar casts wrote.
STRATA_AVX512_VNNI inline __m256i bf16_bits(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
  return _mm512_cvtepi32_epi16(r);
}
STRATA_AVX512_VNNI inline void store_lanes(float* p, __m512 v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }
STRATA_AVX512_VNNI inline void store_lanes(c10::BFloat16* p, __m512 v, __mmask16 m) {
  _mm256_mask_storeu_epi16(p, m, bf16_bits(v));
}
// v as the nearest value of T (the type tag's pointee), back in float lanes.
STRATA_AVX512_VNNI inline __m512 round_to(__m512 v, const float*) { return v; }
STRATA_AVX512_VNNI inline __m512 round_to(__m512 v, const c10::BFloat16*) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16_bits(v)), 16));
}

// y's rows [0, rows) of channels [n0, n0 + nn) from a tile's float sums out [rows][64]:
// y = scale * (out - corr) (+ bias after a rounding to S, as the float path adds a bias in S), 16
// channels a step (scalar, with bf16 conversions per value, it took 4-5% of a SmolLM2 pass at
// 16-128 rows). y points at the first row's channel n0; rows are N apart.
template <typename O, typename S>
STRATA_AVX512_VNNI void epilogue(const float* out, int64_t rows, const float* corr, const S* scale, const S* bias,
                                 int64_t nn, O* y, int64_t N) {
  constexpr int64_t width = kNP * kLanes;
  for (int64_t j = 0; j < nn; j += kLanes) {
    const __mmask16 lanes = static_cast<__mmask16>((1u << std::min(kLanes, nn - j)) - 1);
    const __m512 sc = load_lanes(scale + j, lanes);
    const __m512 bs = bias != nullptr ? load_lanes(bias + j, lanes) : _mm512_setzero_ps();
    for (int64_t i = 0; i < rows; ++i) {
      const __m512 o = _mm512_loadu_ps(out + i * width + j);
      __m512 v = _mm512_mul_ps(sc, _mm512_sub_ps(o, _mm512_set1_ps(corr[i])));
      if (bias != nullptr) {
        // The product rounded first, as the scalar float path: without the barrier GCC
        // (-ffp-contract=fast) fuses mul + add into one fma when S is float (1 ulp apart).
        asm("" : "+v"(v));
        v = _mm512_add_ps(round_to(v, bias), bs);
      }
      store_lanes(y + i * N + j, v, lanes);
    }
  }
}

// Tiles [i0, i1) of a product of fewer than kBlockRows rows: tile i is quad i / row_tiles (64
// channels) against the kMR rows from kMR * (i % row_tiles). A run of tiles passes its rows over
// one quad's weights while they sit in L1/L2, and splitting by tile rather than by quad evens the
// threads' shares of small products (k/v's 3 quads went 2:1).
template <typename O, typename S>
STRATA_AVX512_VNNI void run_tiles(int64_t i0, int64_t i1, int64_t M, int64_t N, int64_t Kp, const int8_t* xq,
                                  const float* sx, const float* corr, const uint8_t* packed, const S* scale,
                                  const S* bias, O* y) {
  const int64_t nb = Kp / kBlock, quad_bytes = kNP * kLanes * Kp, width = kNP * kLanes;
  const int64_t row_tiles = (M + kMR - 1) / kMR, quads = (N + width - 1) / width;
  // With several row tiles per quad, each prefetches its share of the next quad's weights into L2,
  // spread over its blocks: only the first pass over a quad reads them from memory, and without this
  // it waited for them there (a single pass, up to kMR rows, is left to the hardware).
  const int64_t pf_lines = row_tiles > 1 ? (quad_bytes / 64 + row_tiles * nb - 1) / (row_tiles * nb) : 0;
  float out[kMR * kNP * kLanes];
  for (int64_t it = i0; it < i1; ++it) {
    const int64_t t = it / row_tiles, m0 = it % row_tiles * kMR, mr = std::min(kMR, M - m0);
    const int64_t n0 = t * width, nn = std::min(width, N - n0);  // the last quad's padding channels are dropped
    std::fill(out, out + mr * width, 0.0f);
    const uint8_t* pf = packed + (t + 1) * quad_bytes + it % row_tiles * nb * pf_lines * 64;
    tile_any(mr, xq + m0 * Kp, Kp, sx + m0 * nb, nb, packed + t * quad_bytes, out, pf, t + 1 < quads ? pf_lines : 0);
    epilogue(out, mr, corr + m0, scale + n0, bias != nullptr ? bias + n0 : nullptr, nn, y + m0 * N + n0, N);
  }
}

// Tasks [i0, i1) of a product of at least kBlockRows rows (prefills): task i is quad i /
// row_blocks against the kBlockRows rows from kBlockRows * (i % row_blocks), run as kMR-row tiles
// over the whole K, then one epilogue. Against run_tiles at 64-3180 rows (a SmolLM2 pass,
// bench/int8_gemm_bench): 5-14% faster at 1 thread, 4-7% at 2.
template <typename O, typename S>
STRATA_AVX512_VNNI void run_row_blocks(int64_t i0, int64_t i1, int64_t M, int64_t N, int64_t Kp, const int8_t* xq,
                                       const float* sx, const float* corr, const uint8_t* packed, const S* scale,
                                       const S* bias, O* y) {
  const int64_t nb = Kp / kBlock, quad_bytes = kNP * kLanes * Kp, width = kNP * kLanes;
  const int64_t row_blocks = (M + kBlockRows - 1) / kBlockRows;
  alignas(64) float out[kBlockRows * kNP * kLanes];
  for (int64_t it = i0; it < i1; ++it) {
    const int64_t t = it / row_blocks, r0 = it % row_blocks * kBlockRows, rows = std::min(kBlockRows, M - r0);
    const int64_t n0 = t * width, nn = std::min(width, N - n0);
    std::fill(out, out + rows * width, 0.0f);
    for (int64_t m0 = 0; m0 < rows; m0 += kMR)
      tile_any(std::min(kMR, rows - m0), xq + (r0 + m0) * Kp, Kp, sx + (r0 + m0) * nb, nb, packed + t * quad_bytes,
               out + m0 * width, nullptr, 0);
    epilogue(out, rows, corr + r0, scale + n0, bias != nullptr ? bias + n0 : nullptr, nn, y + r0 * N + n0, N);
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
    if (kernel_switched_off("STRATA_INT8_GEMM")) return false;
    return cpu_has_vnni();
  }();
  return ok;
}

namespace {

// Rows of a product run at once: longer prefills go through in slices of this many rows, so the
// quantised activations (the scratch below) stay at most kChunkRows * K bytes (6 MB at K = 1,536).
constexpr int64_t kChunkRows = 4096;

// Quantises x's rows into per-thread scratch and runs the tiles over the output channels.
template <typename X, typename S, typename O>
void gemm_impl(const X* x, int64_t M, int64_t K, const uint8_t* packed, int64_t N, const S* scale, const S* bias,
               O* y) {
  if (M > kChunkRows) {
    for (int64_t m0 = 0; m0 < M; m0 += kChunkRows)
      gemm_impl(x + m0 * K, std::min(kChunkRows, M - m0), K, packed, N, scale, bias, y + m0 * N);
    return;
  }
  const int64_t nb = (K + kBlock - 1) / kBlock, Kp = nb * kBlock;
  // Per-thread scratch, reused across calls (no allocation per product once grown).
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<float> sx, corr;
  xq.resize(static_cast<size_t>(M * Kp));
  sx.resize(static_cast<size_t>(M * nb));
  corr.resize(static_cast<size_t>(M));
  int8_t* xqp = xq.data();
  float* sxp = sx.data();
  float* cp = corr.data();
  const int64_t quads = (N + kNP * kLanes - 1) / (kNP * kLanes);
  if (M < kBlockRows) {
    quantise_rows(x, M, K, Kp, xqp, sxp, cp);
    // One tile (64 channels x kMR rows) per task.
    at::parallel_for(0, quads * ((M + kMR - 1) / kMR), 1, [&](int64_t i0, int64_t i1) {
      run_tiles(i0, i1, M, N, Kp, xqp, sxp, cp, packed, scale, bias, y);
    });
    return;
  }
  at::parallel_for(0, M, kBlockRows, [&](int64_t m0, int64_t m1) {
    quantise_rows(x + m0 * K, m1 - m0, K, Kp, xqp + m0 * Kp, sxp + m0 * nb, cp + m0);
  });
  // One block of kBlockRows rows x 64 channels per task.
  at::parallel_for(0, quads * ((M + kBlockRows - 1) / kBlockRows), 1, [&](int64_t i0, int64_t i1) {
    run_row_blocks(i0, i1, M, N, Kp, xqp, sxp, cp, packed, scale, bias, y);
  });
}

}  // namespace

int64_t int8_gemm_packed_bytes(int64_t N, int64_t K) {
  const int64_t width = kNP * kLanes;
  return (N + width - 1) / width * width * ((K + kBlock - 1) / kBlock * kBlock);
}

at::Tensor int8_gemm_pack(const at::Tensor& q_in) {
  STRATA_CHECK(q_in.dim() == 2 && q_in.scalar_type() == at::kChar && q_in.device().is_cpu(),
               "int8_gemm_pack: expected an [N, K] int8 CPU tensor, got " << q_in.sizes() << " "
                                                                        << c10::toString(q_in.scalar_type()));
  const at::Tensor q = q_in.contiguous();
  const int64_t N = q.size(0), K = q.size(1), Kp = (K + kBlock - 1) / kBlock * kBlock;
  // w + 128 as unsigned (xor 0x80); padding holds w = 0 (it meets zero activations or is dropped).
  at::Tensor packed = at::full({int8_gemm_packed_bytes(N, K)}, 0x80, q.options().dtype(at::kByte));
  const int8_t* src = q.data_ptr<int8_t>();
  uint8_t* dst = packed.data_ptr<uint8_t>();
  at::parallel_for(0, N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const int8_t* row = src + n * K;
      // Channel n: quad n / 64, panel (n / 16) % 4, lane n % 16.
      uint8_t* base = dst + (n / (kNP * kLanes)) * kNP * kLanes * Kp + ((n / kLanes) % kNP) * kLanes * kGroup +
                      (n % kLanes) * kGroup;
      for (int64_t k = 0; k < K; ++k)
        base[(k / kGroup) * kNP * kLanes * kGroup + k % kGroup] = static_cast<uint8_t>(row[k]) ^ 0x80u;
    }
  });
  return packed;
}

namespace {

// w's packed weights, or w.q packed now (a hand-made Int8Weight: correct, slower).
at::Tensor packed_of(const Int8Weight& w) {
  STRATA_CHECK(w.defined() && w.q.dim() == 2 && w.q.scalar_type() == at::kChar && w.q.device().is_cpu(),
               "int8_gemm: q must be an [N, K] int8 CPU tensor");
  if (!w.packed.defined()) return int8_gemm_pack(w.q);
  const int64_t N = w.q.size(0), K = w.q.size(1);
  STRATA_CHECK(w.packed.numel() == int8_gemm_packed_bytes(N, K),
               "int8_gemm: packed weights of " << w.packed.numel() << " bytes for q " << w.q.sizes());
  return w.packed;
}

}  // namespace

void int8_gemm_f32(const float* x, int64_t M, const Int8Weight& w, float* y) {
  STRATA_CHECK(int8_gemm_available(), "int8_gemm: this CPU has no AVX-512 VNNI");
  const at::Tensor packed = packed_of(w);
  const int64_t N = w.q.size(0), K = w.q.size(1);
  const uint8_t* p = packed.data_ptr<uint8_t>();
  if (w.scale.scalar_type() == at::kBFloat16)
    gemm_impl<float, c10::BFloat16, float>(x, M, K, p, N, w.scale.data_ptr<c10::BFloat16>(), nullptr, y);
  else
    gemm_impl<float, float, float>(x, M, K, p, N, w.scale.data_ptr<float>(), nullptr, y);
}

at::Tensor int8_gemm(const at::Tensor& x_in, const Int8Weight& w, const at::Tensor& bias) {
  STRATA_CHECK(int8_gemm_available(), "int8_gemm: this CPU has no AVX-512 VNNI");
  const at::Tensor packed = packed_of(w);
  STRATA_CHECK(x_in.dim() == 2 && x_in.size(1) == w.q.size(1),
               "int8_gemm: x " << x_in.sizes() << " and q " << w.q.sizes());
  const auto dt = w.scale.scalar_type();
  STRATA_CHECK(dt == at::kBFloat16 || dt == at::kFloat, "int8_gemm: scales must be bf16 or fp32");
  const at::Tensor x = (x_in.scalar_type() == at::kBFloat16 || x_in.scalar_type() == at::kFloat)
                           ? x_in.contiguous()
                           : x_in.to(at::kFloat).contiguous();
  const int64_t M = x.size(0), K = x.size(1), N = w.q.size(0);
  const at::Tensor sc = w.scale.contiguous();
  const at::Tensor bs = bias.defined() ? bias.to(dt).contiguous() : at::Tensor();
  at::Tensor y = at::empty({M, N}, w.scale.options());
  const uint8_t* pp = packed.data_ptr<uint8_t>();
  auto go = [&](auto* xp) {
    if (dt == at::kBFloat16)
      gemm_impl(xp, M, K, pp, N, sc.data_ptr<c10::BFloat16>(),
                bs.defined() ? bs.data_ptr<c10::BFloat16>() : nullptr, y.data_ptr<c10::BFloat16>());
    else
      gemm_impl(xp, M, K, pp, N, sc.data_ptr<float>(), bs.defined() ? bs.data_ptr<float>() : nullptr,
                y.data_ptr<float>());
  };
  if (x.scalar_type() == at::kBFloat16) go(x.data_ptr<c10::BFloat16>());
  else go(x.data_ptr<float>());
  return y;
}

}  // namespace strata::agent
