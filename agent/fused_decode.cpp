#include "agent/fused_decode.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "agent/kernel_switch.h"

namespace strata::agent::decode {
namespace {

// Plain loops compiled for AVX-512 and left to the vectoriser.
#define STRATA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

STRATA_AVX512 inline float to_f(float v) { return v; }
STRATA_AVX512 inline float to_f(c10::BFloat16 v) {
  uint32_t bits = static_cast<uint32_t>(v.x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline void from_f(float v, float& out) { out = v; }
inline void from_f(float v, c10::BFloat16& out) { out = c10::BFloat16(v); }  // round to nearest even

// 16 values of T as float32 lanes.
STRATA_AVX512 inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
STRATA_AVX512 inline __m512 load16(const c10::BFloat16* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

// exp(x) lane-wise: 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], p a degree-6 Taylor polynomial
// (relative error below 2e-7 on that interval); inputs below -87 give 0-ish, above 88 are clamped.
STRATA_AVX512 inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 split in two parts
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

template <typename T>
STRATA_AVX512 float dot(const float* a, const T* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load16(b + i), acc);
  float s = _mm512_reduce_add_ps(acc);
  for (; i < n; ++i) s += a[i] * to_f(b[i]);
  return s;
}

template <typename T>
STRATA_AVX512 void axpy(float a, const T* x, float* y, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, load16(x + i), _mm512_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * to_f(x[i]);
}

// Sum of squares of n floats.
STRATA_AVX512 float sumsq(const float* x, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    acc = _mm512_fmadd_ps(v, v, acc);
  }
  float s = _mm512_reduce_add_ps(acc);
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

template <typename T>
STRATA_AVX512 void rms_norm_impl(const float* x, const T* w, int64_t B, int64_t H, double eps, float* out) {
  for (int64_t b = 0; b < B; ++b) {
    const float* xr = x + b * H;
    const float ss = sumsq(xr, H);
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(H) + static_cast<float>(eps));
    float* o = out + b * H;
    for (int64_t i = 0; i < H; ++i) o[i] = xr[i] * r * to_f(w[i]);
  }
}

// scores[0..len) = exp(scores - max), returning their sum.
STRATA_AVX512 float exp_shifted(float* scores, int64_t len) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < len; ++j) mx = std::max(mx, scores[j]);
  int64_t j = 0;
  const __m512 mv = _mm512_set1_ps(mx);
  __m512 sv = _mm512_setzero_ps();
  for (; j + 16 <= len; j += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(scores + j), mv));
    _mm512_storeu_ps(scores + j, e);
    sv = _mm512_add_ps(sv, e);
  }
  if (j < len) {
    const __mmask16 m = static_cast<__mmask16>((1u << (len - j)) - 1);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + j), mv));
    _mm512_mask_storeu_ps(scores + j, m, e);
    sv = _mm512_add_ps(sv, _mm512_maskz_mov_ps(m, e));
  }
  return _mm512_reduce_add_ps(sv);
}

// One query head over len positions, any head size D.
template <typename T>
STRATA_AVX512 void attention_head(const float* q, const T* kb, const T* vb, int64_t len, int64_t D, float scale,
                                  float* scores, float* out) {
  for (int64_t j = 0; j < len; ++j) scores[j] = dot(q, kb + j * D, D) * scale;
  const float inv = 1.0f / exp_shifted(scores, len);
  for (int64_t d = 0; d < D; ++d) out[d] = 0;
  for (int64_t j = 0; j < len; ++j) axpy(scores[j] * inv, vb + j * D, out, D);
}

// SG query heads that share one kv head (grouped-query attention), head size D = 16 * NV: each
// key and value row is read and widened once for the SG heads, and the heads' outputs stay in
// registers over the positions (SG * NV <= 12 accumulators).
template <int NV, int SG, typename T>
STRATA_AVX512 void attention_heads(const float* q, const T* kb, const T* vb, int64_t len, float scale, float* scores,
                                   float* out) {
  constexpr int64_t D = 16 * NV;
  __m512 qv[SG][NV];
  for (int h = 0; h < SG; ++h)
    for (int v = 0; v < NV; ++v) qv[h][v] = _mm512_loadu_ps(q + h * D + 16 * v);
  for (int64_t j = 0; j < len; ++j) {
    __m512 kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = load16(kb + j * D + 16 * v);
    for (int h = 0; h < SG; ++h) {
      __m512 a = _mm512_mul_ps(qv[h][0], kv[0]);
      for (int v = 1; v < NV; ++v) a = _mm512_fmadd_ps(qv[h][v], kv[v], a);
      scores[h * len + j] = _mm512_reduce_add_ps(a) * scale;
    }
  }
  float inv[SG];
  for (int h = 0; h < SG; ++h) inv[h] = 1.0f / exp_shifted(scores + h * len, len);
  __m512 acc[SG][NV];
  for (int h = 0; h < SG; ++h)
    for (int v = 0; v < NV; ++v) acc[h][v] = _mm512_setzero_ps();
  for (int64_t j = 0; j < len; ++j) {
    __m512 vv[NV];
    for (int v = 0; v < NV; ++v) vv[v] = load16(vb + j * D + 16 * v);
    for (int h = 0; h < SG; ++h) {
      const __m512 p = _mm512_set1_ps(scores[h * len + j] * inv[h]);
      for (int v = 0; v < NV; ++v) acc[h][v] = _mm512_fmadd_ps(p, vv[v], acc[h][v]);
    }
  }
  for (int h = 0; h < SG; ++h)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + h * D + 16 * v, acc[h][v]);
}

// The `group` query heads of one kv head (q and out: group * D consecutive floats).
template <typename T>
void attention_group(const float* q, const T* kb, const T* vb, int64_t len, int64_t D, int64_t group, float scale,
                     float* scores, float* out) {
  for (int64_t h = 0; h < group;) {
    const int64_t n = std::min<int64_t>(group - h, D == 64 ? 3 : 1);
    const float* qh = q + h * D;
    float* oh = out + h * D;
    if (D == 64 && n == 3) attention_heads<4, 3>(qh, kb, vb, len, scale, scores, oh);
    else if (D == 64 && n == 2) attention_heads<4, 2>(qh, kb, vb, len, scale, scores, oh);
    else if (D == 64) attention_heads<4, 1>(qh, kb, vb, len, scale, scores, oh);
    else if (D == 128) attention_heads<8, 1>(qh, kb, vb, len, scale, scores, oh);
    else attention_head(qh, kb, vb, len, D, scale, scores, oh);
    h += n;
  }
}

STRATA_AVX512 void silu_mul_impl(const float* g, const float* u, int64_t n, float* out) {
  int64_t i = 0;
  const __m512 one = _mm512_set1_ps(1.0f);
  for (; i + 16 <= n; i += 16) {
    const __m512 gv = _mm512_loadu_ps(g + i);
    const __m512 den = _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), gv)));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(gv, den), _mm512_loadu_ps(u + i)));
  }
  for (; i < n; ++i) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

STRATA_AVX512 void rope_impl(float* x, int64_t B, int64_t heads, int64_t D, const float* cos, const float* sin) {
  const int64_t h2 = D / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      float* p = x + (b * heads + h) * D;
      const float* c = cos + b * h2;
      const float* s = sin + b * h2;
      for (int64_t i = 0; i < h2; ++i) {
        const float x1 = p[i], x2 = p[i + h2];
        p[i] = x1 * c[i] - x2 * s[i];
        p[i + h2] = x2 * c[i] + x1 * s[i];
      }
    }
}

}  // namespace

bool available() {
  static const bool ok = [] {
    if (kernel_switched_off("STRATA_FUSED_DECODE")) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
  }();
  return ok;
}

template <typename T>
void rms_norm(const float* x, const T* w, int64_t B, int64_t H, double eps, float* out) {
  rms_norm_impl(x, w, B, H, eps, out);
}

void rope(float* x, int64_t B, int64_t heads, int64_t D, const float* cos, const float* sin) {
  rope_impl(x, B, heads, D, cos, sin);
}

template <typename T>
void store_kv(const float* k, const float* v, T* kc, T* vc, int64_t Hk, int64_t C, int64_t D, const int64_t* slot,
              const int64_t* pos, int64_t B) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hk; ++h) {
      const int64_t at = ((slot[b] * Hk + h) * C + pos[b]) * D;
      for (int64_t d = 0; d < D; ++d) {
        from_f(k[(b * Hk + h) * D + d], kc[at + d]);
        from_f(v[(b * Hk + h) * D + d], vc[at + d]);
      }
    }
}

template <typename T>
void attention(const float* q, const T* kc, const T* vc, int64_t Hq, int64_t Hk, int64_t C, int64_t D,
               const int64_t* slot, const int64_t* pos, int64_t B, float* out) {
  const int64_t group = Hq / Hk;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  int64_t work = 0;
  for (int64_t b = 0; b < B; ++b) work += (pos[b] + 1) * Hq * D;
  // One task per (row, kv head); one thread when the whole step is small.
  const int64_t grain = work < 200000 ? B * Hk : 1;
  at::parallel_for(0, B * Hk, grain, [&](int64_t t0, int64_t t1) {
    std::vector<float> scores;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / Hk, hk = t % Hk, len = pos[b] + 1;
      scores.resize(static_cast<size_t>(len * group));
      const int64_t base = (slot[b] * Hk + hk) * C * D;
      const int64_t first = b * Hq + hk * group;  // the kv head's first query head
      attention_group(q + first * D, kc + base, vc + base, len, D, group, scale, scores.data(), out + first * D);
    }
  });
}

void silu_mul(const float* g, const float* u, int64_t n, float* out) { silu_mul_impl(g, u, n, out); }

template void rms_norm<float>(const float*, const float*, int64_t, int64_t, double, float*);
template void rms_norm<c10::BFloat16>(const float*, const c10::BFloat16*, int64_t, int64_t, double, float*);
template void store_kv<float>(const float*, const float*, float*, float*, int64_t, int64_t, int64_t, const int64_t*,
                              const int64_t*, int64_t);
template void store_kv<c10::BFloat16>(const float*, const float*, c10::BFloat16*, c10::BFloat16*, int64_t, int64_t,
                                      int64_t, const int64_t*, const int64_t*, int64_t);
template void attention<float>(const float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t,
                               const int64_t*, const int64_t*, int64_t, float*);
template void attention<c10::BFloat16>(const float*, const c10::BFloat16*, const c10::BFloat16*, int64_t, int64_t,
                                       int64_t, int64_t, const int64_t*, const int64_t*, int64_t, float*);

}  // namespace strata::agent::decode
