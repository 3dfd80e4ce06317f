// A compiled PCRE2 pattern (UTF + UCP, JIT when the library has it) used by the pre-tokenizers.
// Patterns are written in the Oniguruma dialect that Hugging Face `tokenizers` uses; the ones
// shipped by GPT-2, Qwen2 and Llama-3 (\p{L}, \p{N}, \s with Unicode White_Space including
// U+0085, (?i:...), lookahead) mean the same in PCRE2 with UCP, as the parity tests check.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::agent::impl {

class Regex {
 public:
  // Throws strata::Error (with PCRE2's message and offset) when `pattern` does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping matches in `text`, left to right, as [begin, end) byte offsets.
  // `text` must be valid UTF-8 (callers split invalid bytes out first). Thread-safe.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct State;
  std::string pattern_;
  std::unique_ptr<State> state_;
};

// Escapes `literal` so that it matches itself as a PCRE2 pattern.
std::string regex_escape(std::string_view literal);

}  // namespace strata::agent::impl
