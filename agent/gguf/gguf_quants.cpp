// ggml block formats, decoded to float32 (and F16/BF16/Q8_0 encoded for export).
//
// Block layouts follow llama.cpp's ggml-common.h (QK = 32 for the legacy formats, QK_K = 256 for
// the K-quants); every multi-byte field is little-endian and the blocks are packed:
//   Q4_0  {f16 d; u8 qs[16]}                      x = (nibble - 8) * d
//   Q4_1  {f16 d, m; u8 qs[16]}                   x = nibble * d + m
//   Q5_0  {f16 d; u8 qh[4]; u8 qs[16]}            x = (nibble | high bit << 4 - 16) * d
//   Q5_1  {f16 d, m; u8 qh[4]; u8 qs[16]}         x = (nibble | high bit << 4) * d + m
//   Q8_0  {f16 d; i8 qs[32]}                      x = q * d
//   Q2_K  {u8 scales[16]; u8 qs[64]; f16 d, dmin}               16 groups of 16, 2-bit
//   Q3_K  {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}       16 groups of 16, 3-bit, 6-bit scales
//   Q4_K  {f16 d, dmin; u8 scales[12]; u8 qs[128]}              8 groups of 32, 6-bit scale/min
//   Q5_K  {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}   as Q4_K plus a high bit
//   Q6_K  {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}         16 groups of 16, 6-bit
// In the legacy formats element j of a block takes the low nibble of byte j and element j + 16
// the high nibble of byte j.
#include <cmath>
#include <cstring>

#include "agent/gguf/gguf.h"
#include "core/error.h"

namespace strata::agent::gguf {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;  // inf / nan
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0);  // inf / nan
  if (absx >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to inf
  if (absx < 0x38800000u) {                        // below the smallest normal half: subnormal or 0
    if (absx < 0x33000000u) return sign;           // < 2^-25 rounds to 0
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // so that the result is in units of 2^-24
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return sign | static_cast<uint16_t>(h);
  }
  uint32_t h = ((absx >> 23) - 127 + 15) << 10 | ((absx >> 13) & 0x3ff);
  const uint32_t rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // may carry into the exponent: correct
  return sign | static_cast<uint16_t>(h);
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

namespace {

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return half_to_float(h);
}

void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void dequant_q5(const uint8_t* b, float* y, bool with_min) {
  const float d = f16_at(b);
  const float m = with_min ? f16_at(b + 2) : 0.0f;
  const uint8_t* p = b + (with_min ? 4 : 2);
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  const uint8_t* qs = p + 4;
  const int offset = with_min ? 0 : 16;
  for (int j = 0; j < 16; ++j) {
    const int hi0 = ((qh >> j) & 1) << 4;
    const int hi1 = ((qh >> (j + 16)) & 1) << 4;
    y[j] = static_cast<float>(((qs[j] & 0x0f) | hi0) - offset) * d + m;
    y[j + 16] = static_cast<float>(((qs[j] >> 4) | hi1) - offset) * d + m;
  }
}

void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

void dequant_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0x0f), ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

// The 16 six-bit scales of Q3_K, unpacked from 12 bytes: the low 4 bits of scale i are in byte
// i (i < 8, low nibble) or byte i - 8 (high nibble); the top 2 bits come from bytes 8..11.
void unpack_q3_k_scales(const uint8_t* s, int8_t out[16]) {
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? (s[i] & 0x0f) : (s[i - 8] >> 4);
    const int high = (s[8 + (i % 4)] >> (2 * (i / 4))) & 3;
    out[i] = static_cast<int8_t>((low | high << 4) - 32);
  }
}

void dequant_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  int8_t scales[16];
  unpack_q3_k_scales(b + 96, scales);
  const float d_all = f16_at(b + 108);
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * static_cast<float>(scales[is++]);
        for (int l = 0; l < 16; ++l) {
          const int k = l + 16 * half;
          const int v = ((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
      }
      m = static_cast<uint8_t>(m << 1);
    }
    q += 32;
  }
}

// Scale and min of group j (0..7) of Q4_K/Q5_K, 6 bits each, packed in 12 bytes.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& mn) {
  if (j < 4) {
    sc = q[j] & 63;
    mn = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    mn = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void dequant_q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int g = 0; g < 8; g += 2) {
    uint8_t sc, mn;
    scale_min_k4(g, scales, sc, mn);
    const float d1 = d * sc, m1 = dmin * mn;
    scale_min_k4(g + 1, scales, sc, mn);
    const float d2 = d * sc, m2 = dmin * mn;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
  }
}

void dequant_q5_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int g = 0; g < 8; g += 2) {
    uint8_t sc, mn;
    scale_min_k4(g, scales, sc, mn);
    const float d1 = d * sc, m1 = dmin * mn;
    scale_min_k4(g + 1, scales, sc, mn);
    const float d2 = d * sc, m2 = dmin * mn;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    ql += 32;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

void dequant_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

template <typename F>
void blocks(const uint8_t* src, float* dst, int64_t n, int64_t be, int64_t bb, F decode) {
  for (int64_t k = 0; k < n / be; ++k) decode(src + k * bb, dst + k * be);
}

}  // namespace

void dequantize(uint32_t code, const uint8_t* src, float* dst, int64_t n) {
  int64_t be = 0, bb = 0;
  STRATA_CHECK(tensor_type_layout(code, be, bb), "cannot dequantize GGUF type " << tensor_type_name(code));
  STRATA_CHECK(n % be == 0, "dequantize " << tensor_type_name(code) << ": " << n
                                          << " elements is not a multiple of the block size " << be);
  switch (static_cast<TensorType>(code)) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_at(src + 2 * i);
      return;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_float(h);
      }
      return;
    case TensorType::kQ4_0: return blocks(src, dst, n, be, bb, dequant_q4_0);
    case TensorType::kQ4_1: return blocks(src, dst, n, be, bb, dequant_q4_1);
    case TensorType::kQ5_0: return blocks(src, dst, n, be, bb, [](const uint8_t* b, float* y) { dequant_q5(b, y, false); });
    case TensorType::kQ5_1: return blocks(src, dst, n, be, bb, [](const uint8_t* b, float* y) { dequant_q5(b, y, true); });
    case TensorType::kQ8_0: return blocks(src, dst, n, be, bb, dequant_q8_0);
    case TensorType::kQ2_K: return blocks(src, dst, n, be, bb, dequant_q2_k);
    case TensorType::kQ3_K: return blocks(src, dst, n, be, bb, dequant_q3_k);
    case TensorType::kQ4_K: return blocks(src, dst, n, be, bb, dequant_q4_k);
    case TensorType::kQ5_K: return blocks(src, dst, n, be, bb, dequant_q5_k);
    case TensorType::kQ6_K: return blocks(src, dst, n, be, bb, dequant_q6_k);
  }
  STRATA_FAIL("cannot dequantize GGUF type " << tensor_type_name(code));
}

std::vector<uint8_t> quantize(uint32_t code, const float* src, int64_t n) {
  std::vector<uint8_t> out;
  switch (static_cast<TensorType>(code)) {
    case TensorType::kF32:
      out.resize(static_cast<size_t>(n) * 4);
      std::memcpy(out.data(), src, out.size());
      return out;
    case TensorType::kF16:
    case TensorType::kBF16: {
      out.resize(static_cast<size_t>(n) * 2);
      const bool half = static_cast<TensorType>(code) == TensorType::kF16;
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = half ? float_to_half(src[i]) : float_to_bf16(src[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      return out;
    }
    case TensorType::kQ8_0: {
      STRATA_CHECK(n % 32 == 0, "Q8_0 needs a multiple of 32 elements, got " << n);
      out.resize(static_cast<size_t>(n / 32) * 34);
      for (int64_t k = 0; k < n / 32; ++k) {
        const float* x = src + k * 32;
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t* b = out.data() + k * 34;
        const uint16_t dh = float_to_half(d);
        std::memcpy(b, &dh, 2);
        for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[j] * id)));
      }
      return out;
    }
    default:
      STRATA_FAIL("export to GGUF type " << tensor_type_name(code) << " is not supported (F32, F16, BF16, Q8_0)");
  }
}

}  // namespace strata::agent::gguf
