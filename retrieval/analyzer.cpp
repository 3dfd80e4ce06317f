#include "retrieval/analyzer.h"

#include <libstemmer.h>
#include <unicode/brkiter.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <unordered_map>

#include "core/error.h"

namespace strata::retrieval {

namespace {

constexpr size_t kMaxTokenBytes = 255;
// The stem cache is cleared when it reaches this many entries (Zipf: a few thousand words make up
// most tokens, so a small cache removes most stemmer calls).
constexpr size_t kStemCacheMax = 1 << 18;

// Word-break classes of the ASCII characters (UAX #29, the subset that ASCII can hit).
enum : uint8_t {
  kOther = 0,
  kLetter,     // ALetter
  kDigit,      // Numeric
  kExtendNum,  // ExtendNumLet: '_'
  kMidLetter,  // MidLetter (joins letters only): no ASCII member, as ICU drops ':' from it
  kMidNumLet,  // MidNumLet '.' and Single_Quote '\'' (join letters, or digits)
  kMidNum,     // MidNum ',' ';'  (joins digits only)
};

struct AsciiClasses {
  uint8_t c[128] = {};
  AsciiClasses() {
    for (int i = 'a'; i <= 'z'; ++i) c[i] = kLetter;
    for (int i = 'A'; i <= 'Z'; ++i) c[i] = kLetter;
    for (int i = '0'; i <= '9'; ++i) c[i] = kDigit;
    c['_'] = kExtendNum;
    c['.'] = kMidNumLet;
    c['\''] = kMidNumLet;
    c[','] = kMidNum;
    c[';'] = kMidNum;
  }
};
const AsciiClasses kAscii;

bool is_word_char(uint8_t cls) { return cls == kLetter || cls == kDigit || cls == kExtendNum; }

// Calls emit(begin, end) for each word of the pure-ASCII `s` (a token needs a letter or digit).
template <class Emit>
void ascii_words(std::string_view s, Emit&& emit) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t ci = kAscii.c[static_cast<uint8_t>(s[i])];
    if (!is_word_char(ci)) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool alnum = ci != kExtendNum;
    while (j < n) {
      const uint8_t cj = kAscii.c[static_cast<uint8_t>(s[j])];
      if (is_word_char(cj)) {
        alnum |= cj != kExtendNum;
        ++j;
        continue;
      }
      if (j + 1 < n && (cj == kMidLetter || cj == kMidNumLet || cj == kMidNum)) {
        const uint8_t prev = kAscii.c[static_cast<uint8_t>(s[j - 1])];
        const uint8_t next = kAscii.c[static_cast<uint8_t>(s[j + 1])];
        const bool letters = prev == kLetter && next == kLetter && cj != kMidNum;
        const bool digits = prev == kDigit && next == kDigit && cj != kMidLetter;
        if (letters || digits) {
          j += 2;
          continue;
        }
      }
      break;
    }
    if (alnum) emit(i, j);
    i = j;
  }
}

bool is_ascii(std::string_view s) {
  for (char ch : s)
    if (static_cast<uint8_t>(ch) >= 0x80) return false;
  return true;
}

bool is_space(char ch) { return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v'; }

}  // namespace

const std::vector<std::string>& Analyzer::stop_words() {
  static const std::vector<std::string> words = {
      "a",    "an",   "and",   "are",  "as",    "at",    "be",    "but",   "by",
      "for",  "if",   "in",    "into", "is",    "it",    "no",    "not",   "of",
      "on",   "or",   "such",  "that", "the",   "their", "then",  "there", "these",
      "they", "this", "to",    "was",  "will",  "with"};
  return words;
}

bool Analyzer::is_stop_word(std::string_view word) {
  if (word.size() > 5) return false;
  for (const auto& w : stop_words())
    if (w == word) return true;
  return false;
}

struct Analyzer::Impl {
  sb_stemmer* stemmer = nullptr;
  std::unique_ptr<icu::BreakIterator> words;
  std::unordered_map<std::string, std::string> stem_cache;
  std::string folded;

  ~Impl() {
    if (stemmer != nullptr) sb_stemmer_delete(stemmer);
  }

  // Calls emit(token, is_ascii) for each word token of `text`, as written (not yet folded).
  template <class Emit>
  void tokens(std::string_view text, Emit&& emit) {
    size_t i = 0;
    const size_t n = text.size();
    while (i < n) {
      while (i < n && is_space(text[i])) ++i;
      size_t j = i;
      while (j < n && !is_space(text[j])) ++j;
      if (j == i) break;
      const std::string_view chunk = text.substr(i, j - i);
      if (is_ascii(chunk)) {
        ascii_words(chunk, [&](size_t b, size_t e) { emit(chunk.substr(b, e - b), true); });
      } else {
        icu_words(chunk, emit);
      }
      i = j;
    }
  }

  template <class Emit>
  void icu_words(std::string_view chunk, Emit&& emit) {
    if (!words) {
      UErrorCode status = U_ZERO_ERROR;
      words.reset(icu::BreakIterator::createWordInstance(icu::Locale::getRoot(), status));
      STRATA_CHECK(U_SUCCESS(status) && words, "ICU word BreakIterator unavailable: "
                                                   << u_errorName(status));
    }
    const icu::UnicodeString u = icu::UnicodeString::fromUTF8(
        icu::StringPiece(chunk.data(), static_cast<int32_t>(chunk.size())));
    words->setText(u);
    int32_t start = words->first();
    std::string utf8;
    for (int32_t end = words->next(); end != icu::BreakIterator::DONE;
         start = end, end = words->next()) {
      if (words->getRuleStatus() == UBRK_WORD_NONE) continue;
      bool alnum = false;
      for (int32_t k = start; k < end && !alnum;) {
        const UChar32 c = u.char32At(k);
        alnum = u_isalnum(c);
        k += U16_LENGTH(c);
      }
      if (!alnum) continue;
      utf8.clear();
      u.tempSubStringBetween(start, end).toUTF8String(utf8);
      emit(std::string_view(utf8), false);
    }
  }

  // Lower-cases an ASCII token into `folded`.
  std::string_view fold_ascii(std::string_view token) {
    folded.assign(token.data(), token.size());
    for (char& ch : folded)
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    return folded;
  }

  // ICU default case folding of a UTF-8 token into `folded`.
  std::string_view fold_unicode(std::string_view token) {
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(
        icu::StringPiece(token.data(), static_cast<int32_t>(token.size())));
    u.foldCase(U_FOLD_CASE_DEFAULT);
    folded.clear();
    u.toUTF8String(folded);
    return folded;
  }

  static std::string_view strip_possessive(std::string_view t) {
    if (t.size() >= 2 && t.back() == 's') {
      if (t[t.size() - 2] == '\'') return t.substr(0, t.size() - 2);
      // U+2019 (E2 80 99) and U+FF07 (EF BC 87) before the s.
      if (t.size() >= 4) {
        const std::string_view tail = t.substr(t.size() - 4, 3);
        if (tail == "\xE2\x80\x99" || tail == "\xEF\xBC\x87") return t.substr(0, t.size() - 4);
      }
    }
    return t;
  }

  const std::string& stem(std::string_view word) {
    std::string key(word);
    auto it = stem_cache.find(key);
    if (it != stem_cache.end()) return it->second;
    if (stem_cache.size() >= kStemCacheMax) stem_cache.clear();
    const sb_symbol* out =
        sb_stemmer_stem(stemmer, reinterpret_cast<const sb_symbol*>(word.data()),
                        static_cast<int>(word.size()));
    STRATA_ASSERT(out != nullptr, "Snowball stemmer ran out of memory");
    std::string stemmed(reinterpret_cast<const char*>(out),
                        static_cast<size_t>(sb_stemmer_length(stemmer)));
    return stem_cache.emplace(std::move(key), std::move(stemmed)).first->second;
  }
};

Analyzer::Analyzer(const AnalyzerOptions& options) : options_(options), impl_(new Impl) {
  if (options_.stemmer != "none") {
    STRATA_CHECK(options_.stemmer == "porter" || options_.stemmer == "english",
                 "unknown stemmer \"" << options_.stemmer
                                      << "\" (expected porter, english or none)");
    impl_->stemmer = sb_stemmer_new(options_.stemmer.c_str(), "UTF_8");
    STRATA_CHECK(impl_->stemmer != nullptr,
                 "libstemmer has no \"" << options_.stemmer << "\" stemmer for UTF-8");
  }
}

Analyzer::~Analyzer() = default;

void Analyzer::analyze(std::string_view text, std::vector<std::string>& terms) {
  terms.clear();
  Impl& im = *impl_;
  im.tokens(text, [&](std::string_view token, bool ascii) {
    if (token.size() > kMaxTokenBytes) return;
    std::string_view t = ascii ? im.fold_ascii(token) : im.fold_unicode(token);
    t = Impl::strip_possessive(t);
    if (t.empty()) return;
    if (options_.stop_words && is_stop_word(t)) return;
    if (im.stemmer == nullptr) {
      terms.emplace_back(t);
    } else {
      terms.push_back(im.stem(t));
    }
  });
}

std::vector<std::string> Analyzer::analyze(std::string_view text) {
  std::vector<std::string> terms;
  analyze(text, terms);
  return terms;
}

std::vector<std::string> Analyzer::tokenize(std::string_view text) {
  std::vector<std::string> out;
  impl_->tokens(text, [&](std::string_view token, bool) { out.emplace_back(token); });
  return out;
}

std::vector<std::string> Analyzer::tokenize_icu(std::string_view text) {
  std::vector<std::string> out;
  if (!text.empty())
    impl_->icu_words(text, [&](std::string_view token, bool) { out.emplace_back(token); });
  return out;
}

}  // namespace strata::retrieval
