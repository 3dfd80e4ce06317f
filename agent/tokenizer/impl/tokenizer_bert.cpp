#include "agent/tokenizer/impl/tokenizer_bert.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <cstdint>

#include "agent/tokenizer/impl/tokenizer_byte_level.h"
#include "core/error.h"

namespace strata::agent::impl {

namespace {

constexpr uint32_t kReplacement = 0xFFFD;

// UTF-8 -> code points; each invalid byte becomes U+FFFD.
std::u32string to_code_points(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    uint32_t cp = 0;
    const int len = decode_utf8(s, pos, cp);
    if (len > 0) {
      out.push_back(cp);
      pos += static_cast<size_t>(len);
    } else {
      out.push_back(kReplacement);
      ++pos;
    }
  }
  return out;
}

std::string to_utf8(const std::u32string& cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

bool is_white_space(uint32_t c) { return u_hasBinaryProperty(c, UCHAR_WHITE_SPACE) != 0; }

// Rust's char::is_whitespace, with \t \n \r counted in (they are already White_Space).
bool is_bert_whitespace(uint32_t c) { return c == '\t' || c == '\n' || c == '\r' || is_white_space(c); }

bool is_bert_control(uint32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (u_charType(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
      return true;
    default:
      return false;
  }
}

bool is_chinese_char(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_bert_punctuation(uint32_t c) {
  if (c < 0x80) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  }
  return (U_GET_GC_MASK(c) & U_GC_P_MASK) != 0;
}

void lowercase_into(uint32_t c, std::u32string& out) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
  } else if (c == 0x0130) {  // the one unconditional multi-character lowercase mapping
    out.push_back('i');
    out.push_back(0x0307);
  } else {
    out.push_back(static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
  }
}

std::u32string nfd(const std::u32string& cps) {
  bool ascii = true;
  for (char32_t c : cps) ascii = ascii && c < 0x80;
  if (ascii) return cps;
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFDInstance(status);
  STRATA_CHECK(U_SUCCESS(status) && n != nullptr, "ICU NFD unavailable: " << u_errorName(status));
  icu::UnicodeString u = icu::UnicodeString::fromUTF32(
      reinterpret_cast<const UChar32*>(cps.data()), static_cast<int32_t>(cps.size()));
  u = n->normalize(u, status);
  STRATA_CHECK(U_SUCCESS(status), "Unicode normalization failed: " << u_errorName(status));
  std::u32string out(static_cast<size_t>(u.countChar32()), U'\0');
  status = U_ZERO_ERROR;
  u.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), status);
  STRATA_CHECK(U_SUCCESS(status) || status == U_STRING_NOT_TERMINATED_WARNING,
               "UTF-32 conversion failed: " << u_errorName(status));
  return out;
}

std::u32string drop_nonspacing_marks(const std::u32string& cps) {
  std::u32string out;
  out.reserve(cps.size());
  for (char32_t c : cps) {
    if (c < 0x80 || u_charType(static_cast<UChar32>(c)) != U_NON_SPACING_MARK) out.push_back(c);
  }
  return out;
}

// Splits at characters for which `cut` holds: `keep` puts each one in a word of its own,
// otherwise they are dropped.
template <class Cut>
void split_words(std::string_view text, Cut&& cut, bool keep, std::vector<std::string>& out) {
  std::string word;
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = 0;
    int len = decode_utf8(text, pos, cp);
    if (len <= 0) {
      cp = kReplacement;
      len = 1;
    }
    const std::string_view ch = text.substr(pos, static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    if (!cut(cp)) {
      word.append(ch);
      continue;
    }
    if (!word.empty()) out.push_back(std::move(word));
    word.clear();
    if (keep) out.emplace_back(ch);
  }
  if (!word.empty()) out.push_back(std::move(word));
}

}  // namespace

std::string bert_normalize(std::string_view text, const BertNormalizerOptions& opts) {
  std::u32string cps = to_code_points(text);
  std::u32string next;
  next.reserve(cps.size());
  if (opts.clean_text || opts.handle_chinese_chars) {
    for (char32_t c : cps) {
      if (opts.clean_text) {
        if (c == 0 || c == kReplacement || is_bert_control(c)) continue;
        if (is_bert_whitespace(c)) c = ' ';
      }
      if (opts.handle_chinese_chars && is_chinese_char(c)) {
        next.push_back(' ');
        next.push_back(c);
        next.push_back(' ');
      } else {
        next.push_back(c);
      }
    }
    cps.swap(next);
  }
  if (opts.strip_accents) cps = drop_nonspacing_marks(nfd(cps));
  if (opts.lowercase) {
    next.clear();
    for (char32_t c : cps) lowercase_into(c, next);
    cps.swap(next);
  }
  return to_utf8(cps);
}

std::string lowercase_normalize(std::string_view text) {
  std::u32string out;
  for (char32_t c : to_code_points(text)) lowercase_into(c, out);
  return to_utf8(out);
}

std::string strip_accents_normalize(std::string_view text) {
  return to_utf8(drop_nonspacing_marks(to_code_points(text)));
}

void bert_pre_tokenize(std::string_view text, std::vector<std::string>& out) {
  std::vector<std::string> words;
  split_words(text, is_bert_whitespace, false, words);
  for (const std::string& w : words) split_words(w, is_bert_punctuation, true, out);
}

void whitespace_split(std::string_view text, std::vector<std::string>& out) {
  split_words(text, is_bert_whitespace, false, out);
}

}  // namespace strata::agent::impl
