// Raw-pointer kernels of the fused decoding step (Model::forward_cached at one new token per row
// on a CPU with AVX-512, for bf16, fp32 and int8 models): one call per layer piece instead of ~45
// LibTorch ops per layer. All activations are float32 rows; weights of norms and the KV cache are
// in the model dtype T (bfloat16 or float). Compiled for AVX-512 (target attributes); callers use
// them only where available().
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>

namespace strata::agent::decode {

// Whether this CPU runs these kernels (AVX-512 F, BW, VL, DQ and FMA) and the fused step is not
// turned off (STRATA_FUSED_DECODE=0: every decoding step then takes LibTorch's per-op path).
bool available();

// out[b] = x[b] * rsqrt(mean(x[b]^2) + eps) * w, rows of H.
template <typename T>
void rms_norm(const float* x, const T* w, int64_t B, int64_t H, double eps, float* out);
// Rotates each head of x [B, heads, D] in place (rotate-half convention): cos/sin [B, D/2].
void rope(float* x, int64_t B, int64_t heads, int64_t D, const float* cos, const float* sin);
// Writes k, v [B, Hk, D] at cache[slot[b], :, pos[b], :] (cache [slots, Hk, C, D]).
template <typename T>
void store_kv(const float* k, const float* v, T* kc, T* vc, int64_t Hk, int64_t C, int64_t D, const int64_t* slot,
              const int64_t* pos, int64_t B);
// Causal attention of one new query per row over positions 0..pos[b] of its slot:
// q [B, Hq, D] -> out [B, Hq, D]; grouped-query (head h reads kv head h / (Hq / Hk)).
template <typename T>
void attention(const float* q, const T* kc, const T* vc, int64_t Hq, int64_t Hk, int64_t C, int64_t D,
               const int64_t* slot, const int64_t* pos, int64_t B, float* out);
// out = silu(g) * u over n values.
void silu_mul(const float* g, const float* u, int64_t n, float* out);

}  // namespace strata::agent::decode
