// Seeded random numbers that are the same on every machine and standard library.
//
// std::mt19937_64 is fully specified by the standard, but the std::*_distribution classes are
// not (libstdc++ and libc++ differ), so the draws below are written out here. Independent
// streams come from `fork(tag)`, never from a shared global generator.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace strata {

// SplitMix64 finaliser: a cheap, well-mixed hash of 64 bits.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a of a string, to derive stream tags from names.
inline uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : seed_(seed), engine_(mix64(seed)) {}

  uint64_t seed() const { return seed_; }
  // The generator's full state as text, and back (for checkpoints that resume exactly).
  std::string state() const {
    std::ostringstream out;
    out << seed_ << ' ' << engine_;
    return out.str();
  }
  void set_state(const std::string& text) {
    std::istringstream in(text);
    in >> seed_ >> engine_;
    STRATA_CHECK(!in.fail(), "invalid RNG state in a checkpoint");
  }
  // A new generator whose stream depends only on this one's seed and `tag`.
  Rng fork(uint64_t tag) const { return Rng(mix64(seed_ ^ mix64(tag + 0x632be59bd9b4e019ULL))); }
  Rng fork(std::string_view tag) const { return fork(hash_name(tag)); }

  uint64_t next_u64() { return engine_(); }
  // Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject). n must be > 0.
  uint64_t below(uint64_t n) {
    STRATA_ASSERT(n > 0, "Rng::below(0)");
    unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next_u64()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }
  // Uniform integer in [lo, hi] (inclusive).
  int64_t range(int64_t lo, int64_t hi) {
    STRATA_ASSERT(lo <= hi, "Rng::range(" << lo << ", " << hi << ")");
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  bool bernoulli(double p) { return uniform() < p; }
  // Standard normal (Box-Muller; one draw per call, simple and reproducible).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    STRATA_ASSERT(!v.empty(), "Rng::pick on an empty list");
    return v[below(v.size())];
  }
  // Fisher-Yates.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t seed_;
  std::mt19937_64 engine_;
};

}  // namespace strata
