// Text analysis for the BM25 index, modelled on Lucene's EnglishAnalyzer (what Pyserini and so
// Search-R1's BM25 retriever use):
//
//   1. word tokenisation by Unicode's word-boundary rules (UAX #29, as Lucene's StandardTokenizer):
//      "O'Neil's" "1,000" "3.5" "U.S" stay one token each; hyphens, slashes and most punctuation
//      split. Pure-ASCII stretches take a hand-written fast path that follows the same rules;
//      anything else goes through ICU's word BreakIterator.
//   2. English possessive removal: a trailing 's / ’s is dropped ("O'Neil's" -> "O'Neil").
//   3. lower-casing (ASCII) or ICU default case folding (other scripts).
//   4. Lucene's classic 33 English stop words are dropped.
//   5. stemming with Snowball's libstemmer: "porter" (the original Porter algorithm, as Lucene's
//      PorterStemFilter; the default), "english" (Porter2, as bm25s/PyStemmer) or "none".
//
// Differences from Lucene worth knowing: tokens longer than 255 bytes are dropped (Lucene splits
// them), and case folding maps e.g. "ß" to "ss" where Lucene only lower-cases.
//
// An Analyzer is NOT thread-safe (ICU iterators and Snowball stemmers keep state); give each
// thread its own. Construction costs tens of microseconds.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata::retrieval {

struct AnalyzerOptions {
  std::string stemmer = "porter";  // "porter", "english" or "none"
  bool stop_words = true;          // drop Lucene's English stop words
};

class Analyzer {
 public:
  explicit Analyzer(const AnalyzerOptions& options = {});  // throws on an unknown stemmer
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // Replaces `terms` with the index terms of `text`, in text order (duplicates kept).
  void analyze(std::string_view text, std::vector<std::string>& terms);
  std::vector<std::string> analyze(std::string_view text);

  // The word tokens of `text` before possessive removal, case folding, stop words and stemming.
  // Exposed for tests.
  std::vector<std::string> tokenize(std::string_view text);
  // The same through ICU's BreakIterator only (no ASCII fast path). For tests.
  std::vector<std::string> tokenize_icu(std::string_view text);

  const AnalyzerOptions& options() const { return options_; }

  // Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (33 words).
  static const std::vector<std::string>& stop_words();
  static bool is_stop_word(std::string_view word);

 private:
  struct Impl;
  AnalyzerOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::retrieval
