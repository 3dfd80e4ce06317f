// Added tokens (tokenizer.json's `added_tokens`): strings matched in the raw text before any
// pre-tokenization and mapped straight to their ids. The matching mirrors `tokenizers`:
// leftmost-longest, non-overlapping, scanning left to right; `single_word` rejects a match that
// touches a word character; `lstrip`/`rstrip` swallow the whitespace beside the match.
// `tokenizers` matches the tokens with normalized=false on the raw text first and those with
// normalized=true on the normalized remainder, so there are two matchers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::agent::impl {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;  // control token: skipped by decode(skip_special), text when not allowed
  bool single_word = false;  // only match when not inside a word
  bool lstrip = false;       // also swallow whitespace on the left
  bool rstrip = false;       // also swallow whitespace on the right
  bool normalized = false;   // matched against normalized text (second pass)
};

// A span of the input: an added token (id >= 0) or plain text (id == -1).
struct TextSpan {
  size_t begin = 0;
  size_t end = 0;
  int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  // Splits `text` into added-token and plain spans covering it in order. When `allow_special`
  // is false, special tokens are not split out (their text stays plain), as with
  // `tokenizers`' encode_special_tokens.
  void split(std::string_view text, bool allow_special, std::vector<TextSpan>& out) const;
  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
  // First byte -> indices into tokens_, longest content first.
  std::vector<std::vector<int32_t>> by_first_byte_;
};

// Unicode White_Space (what Rust's char::is_whitespace tests).
bool is_unicode_space(uint32_t cp);

}  // namespace strata::agent::impl
