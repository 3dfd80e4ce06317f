#include "retrieval/hash_embedder.h"

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <thread>

#include "core/error.h"

namespace strata::retrieval {

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

HashEmbedder::HashEmbedder(int dim, int delay_ms) : dim_(dim), delay_ms_(delay_ms) {
  STRATA_CHECK(dim >= 1 && dim <= 65536, "hash embedder dim must be in 1..65536, got " << dim);
  STRATA_CHECK(delay_ms >= 0, "hash embedder delay must be >= 0 ms, got " << delay_ms);
}

int HashEmbedder::parse_spec(const std::string& spec) {
  if (spec.rfind("hash:", 0) != 0 || spec.size() == 5 || spec.size() > 10) return 0;
  int d = 0;
  for (size_t i = 5; i < spec.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(spec[i]))) return 0;
    d = d * 10 + (spec[i] - '0');
  }
  return d;
}

std::string HashEmbedder::describe() const { return "hash:" + std::to_string(dim_); }

std::vector<float> HashEmbedder::embed(const std::vector<std::string>& texts, bool) {
  ++calls_;
  texts_ += static_cast<long>(texts.size());
  if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
  std::vector<float> out(texts.size() * static_cast<size_t>(dim_), 0.0f);
  std::string word;
  for (size_t i = 0; i < texts.size(); ++i) {
    float* v = out.data() + i * static_cast<size_t>(dim_);
    auto flush = [&] {
      if (word.empty()) return;
      const uint64_t h = fnv1a(word);
      v[h % static_cast<uint64_t>(dim_)] += (h >> 63) ? -1.0f : 1.0f;
      word.clear();
    };
    for (char ch : texts[i]) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (std::isalnum(c)) {
        word.push_back(static_cast<char>(std::tolower(c)));
      } else {
        flush();
      }
    }
    flush();
    double norm = 0;
    for (int j = 0; j < dim_; ++j) norm += static_cast<double>(v[j]) * v[j];
    if (norm > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (int j = 0; j < dim_; ++j) v[j] *= inv;
    }
  }
  return out;
}

}  // namespace strata::retrieval
