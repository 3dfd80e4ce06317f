// Integer codecs of the BM25 index: LEB128 varints (sorted runs at build time) and fixed-width
// LSB-first bit packing (posting blocks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace strata::retrieval::codec {

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Bits needed for the largest of v[0..n) (0 when all are zero).
inline uint32_t bit_width(const uint32_t* v, size_t n) {
  uint32_t all = 0;
  for (size_t i = 0; i < n; ++i) all |= v[i];
  uint32_t bits = 0;
  while (all != 0) {
    ++bits;
    all >>= 1;
  }
  return bits;
}

inline size_t packed_bytes(size_t n, uint32_t bits) { return (n * bits + 7) / 8; }

// Appends v[0..n) at `bits` bits each (bits <= 32), padded to a whole byte.
inline void pack(std::string& out, const uint32_t* v, size_t n, uint32_t bits) {
  if (bits == 0) return;
  uint64_t acc = 0;
  uint32_t have = 0;
  for (size_t i = 0; i < n; ++i) {
    acc |= static_cast<uint64_t>(v[i]) << have;
    have += bits;
    while (have >= 8) {
      out.push_back(static_cast<char>(acc & 0xFF));
      acc >>= 8;
      have -= 8;
    }
  }
  if (have > 0) out.push_back(static_cast<char>(acc & 0xFF));
}

namespace detail {

// A full block of 128 values of a width known at compile time: the compiler unrolls it into a
// load, a shift and a mask per value (several times faster than the loop below).
template <uint32_t B>
inline void unpack128(const uint8_t* p, uint32_t* out) {
  constexpr uint64_t mask = (uint64_t{1} << B) - 1;
  for (uint32_t i = 0; i < 128; ++i) {
    const uint32_t pos = i * B;
    uint64_t word;
    std::memcpy(&word, p + (pos >> 3), sizeof(word));
    out[i] = static_cast<uint32_t>((word >> (pos & 7)) & mask);
  }
}

template <uint32_t... B>
inline void unpack128_dispatch(uint32_t bits, const uint8_t* p, uint32_t* out,
                               std::integer_sequence<uint32_t, B...>) {
  using Fn = void (*)(const uint8_t*, uint32_t*);
  static constexpr Fn table[] = {&unpack128<B + 1>...};
  table[bits - 1](p, out);
}

}  // namespace detail

// Reads n values of `bits` bits (<= 32) from p. May read up to 8 bytes past the packed data.
inline void unpack(const uint8_t* p, size_t n, uint32_t bits, uint32_t* out) {
  if (bits == 0) {
    std::memset(out, 0, n * sizeof(uint32_t));
    return;
  }
  if (n == 128) {
    detail::unpack128_dispatch(bits, p, out, std::make_integer_sequence<uint32_t, 32>{});
    return;
  }
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t pos = 0;
  for (size_t i = 0; i < n; ++i, pos += bits) {
    uint64_t word;
    std::memcpy(&word, p + (pos >> 3), sizeof(word));
    out[i] = static_cast<uint32_t>((word >> (pos & 7)) & mask);
  }
}

}  // namespace strata::retrieval::codec
