// BERT's text stages, as `tokenizers` defines them (normalizers::BertNormalizer and
// pre_tokenizers::BertPreTokenizer), with ICU for the Unicode properties:
//   clean_text            drop NUL, U+FFFD and "other" characters (Cc, Cf, Co, Cs) except
//                         \t \n \r; then every White_Space character becomes ' '. Unassigned
//                         code points (Cn) stay: `tokenizers`' category tables do not list them.
//   handle_chinese_chars  put a space on both sides of each CJK ideograph.
//   strip_accents         NFD, then drop non-spacing marks (Mn). Unset (null) follows lowercase.
//   lowercase             per code point, full mapping (U+0130 -> "i\u0307"), no context.
// The pre-tokenizer splits on White_Space (dropped) and isolates every punctuation character
// (ASCII punctuation, or general category P*). Invalid UTF-8 bytes become U+FFFD on the way in.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace strata::agent::impl {

struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // already resolved: tokenizer.json's null means `lowercase`
  bool lowercase = true;
};

std::string bert_normalize(std::string_view text, const BertNormalizerOptions& opts);
// The standalone Lowercase and StripAccents normalizers (StripAccents drops Mn only, no NFD).
std::string lowercase_normalize(std::string_view text);
std::string strip_accents_normalize(std::string_view text);

// BertPreTokenizer: appends the words of `text` to `out`.
void bert_pre_tokenize(std::string_view text, std::vector<std::string>& out);
// WhitespaceSplit: appends the White_Space-separated words of `text` to `out`.
void whitespace_split(std::string_view text, std::vector<std::string>& out);

}  // namespace strata::agent::impl
