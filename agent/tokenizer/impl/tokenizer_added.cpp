#include "agent/tokenizer/impl/tokenizer_added.h"

#include <algorithm>

#include "agent/tokenizer/impl/tokenizer_byte_level.h"
#include "agent/tokenizer/impl/tokenizer_regex.h"

namespace strata::agent::impl {

bool is_unicode_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

namespace {

// Rust regex's \w, which `tokenizers` uses for single_word: Alphabetic, marks, decimal digits,
// connector punctuation and the joiners (wider than PCRE2's own \w, which lacks the marks).
bool is_word_char(std::string_view ch) {
  static const Regex word(R"(^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}]$)");
  thread_local std::vector<std::pair<size_t, size_t>> m;
  word.find_all(ch, m);
  return !m.empty();
}

// The last (first) character of `s` as a view; empty when `s` is empty or not valid there.
std::string_view last_char(std::string_view s) {
  size_t i = s.size();
  while (i > 0) {
    --i;
    if ((static_cast<uint8_t>(s[i]) & 0xC0) != 0x80) break;
  }
  return s.substr(i);
}

std::string_view first_char(std::string_view s) {
  if (s.empty()) return s;
  uint32_t cp = 0;
  const int len = decode_utf8(s, 0, cp);
  return s.substr(0, len == 0 ? 1 : static_cast<size_t>(len));
}

bool char_is_space(std::string_view ch) {
  uint32_t cp = 0;
  return !ch.empty() && decode_utf8(ch, 0, cp) == static_cast<int>(ch.size()) &&
         is_unicode_space(cp);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens)
    : tokens_(std::move(tokens)), by_first_byte_(256) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<uint8_t>(tokens_[i].content[0])].push_back(static_cast<int32_t>(i));
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](int32_t a, int32_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

void AddedTokenMatcher::split(std::string_view text, bool allow_special,
                              std::vector<TextSpan>& out) const {
  out.clear();
  size_t done = 0;  // end of the last emitted span
  size_t pos = 0;
  while (!tokens_.empty() && pos < text.size()) {
    const auto& bucket = by_first_byte_[static_cast<uint8_t>(text[pos])];
    const AddedToken* hit = nullptr;
    for (int32_t i : bucket) {
      const std::string& c = tokens_[i].content;
      if (text.compare(pos, c.size(), c) == 0) {
        hit = &tokens_[i];
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + hit->content.size();
    pos = stop;  // the scan goes on after this match whether or not it is kept
    if (hit->special && !allow_special) continue;
    if (hit->single_word) {
      const std::string_view before = last_char(text.substr(0, start));
      const std::string_view after = first_char(text.substr(stop));
      if ((!before.empty() && is_word_char(before)) || (!after.empty() && is_word_char(after))) {
        continue;
      }
    }
    if (hit->lstrip) {
      while (start > done) {
        const std::string_view ch = last_char(text.substr(done, start - done));
        if (!char_is_space(ch)) break;
        start -= ch.size();
      }
    }
    if (hit->rstrip) {
      while (stop < text.size()) {
        const std::string_view ch = first_char(text.substr(stop));
        if (!char_is_space(ch)) break;
        stop += ch.size();
      }
      pos = stop;
    }
    if (done < start) out.push_back(TextSpan{done, start, -1});
    out.push_back(TextSpan{start, stop, hit->id});
    done = stop;
  }
  if (done < text.size()) out.push_back(TextSpan{done, text.size(), -1});
}

}  // namespace strata::agent::impl
