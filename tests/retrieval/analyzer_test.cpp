#include "retrieval/analyzer.h"

#include <gtest/gtest.h>

#include <random>

#include "core/error.h"

namespace strata::retrieval {
namespace {

using Terms = std::vector<std::string>;

TEST(Analyzer, LowerCasesDropsStopWordsAndStems) {
  Analyzer a;
  EXPECT_EQ(a.analyze("The Connections of RUNNING dogs"), (Terms{"connect", "run", "dog"}));
  EXPECT_EQ(a.analyze("the and of a an it is"), Terms{});
  EXPECT_EQ(a.analyze(""), Terms{});
  EXPECT_EQ(a.analyze("  \n\t "), Terms{});
}

TEST(Analyzer, LuceneStopWordSet) {
  EXPECT_EQ(Analyzer::stop_words().size(), 33u);
  for (const char* w : {"a", "such", "their", "there", "with", "will", "into"})
    EXPECT_TRUE(Analyzer::is_stop_word(w)) << w;
  for (const char* w : {"he", "she", "we", "you", "has", "theirs"})
    EXPECT_FALSE(Analyzer::is_stop_word(w)) << w;
  AnalyzerOptions keep;
  keep.stop_words = false;
  keep.stemmer = "none";
  EXPECT_EQ(Analyzer(keep).analyze("The cat"), (Terms{"the", "cat"}));
}

TEST(Analyzer, NumbersStayWhole) {
  Analyzer a;
  EXPECT_EQ(a.tokenize("1,000 people, 3.5 km in 2015."), (Terms{"1,000", "people", "3.5", "km", "in", "2015"}));
  EXPECT_EQ(a.analyze("1,000 people 3.5 km 2015"), (Terms{"1,000", "peopl", "3.5", "km", "2015"}));
  EXPECT_EQ(a.tokenize("version 2.0.1, 10;20"), (Terms{"version", "2.0.1", "10;20"}));
  EXPECT_EQ(a.tokenize("a1b2 x_y a:b"), (Terms{"a1b2", "x_y", "a", "b"}));
}

TEST(Analyzer, ApostrophesAndPossessives) {
  Analyzer a;
  EXPECT_EQ(a.tokenize("O'Neil's dogs' 'quoted'"), (Terms{"O'Neil's", "dogs", "quoted"}));
  EXPECT_EQ(a.analyze("O'Neil's"), Terms{"o'neil"});
  EXPECT_EQ(a.analyze("John\u2019s book"), (Terms{"john", "book"}));
  EXPECT_EQ(a.analyze("it's"), Terms{});  // "it" after the possessive goes, a stop word
}

TEST(Analyzer, HyphensSlashesAndPunctuationSplit) {
  Analyzer a;
  EXPECT_EQ(a.tokenize("state-of-the-art AC/DC (1999)!"),
            (Terms{"state", "of", "the", "art", "AC", "DC", "1999"}));
  EXPECT_EQ(a.analyze("state-of-the-art"), (Terms{"state", "art"}));
  EXPECT_EQ(a.tokenize("U.S. e.g. end."), (Terms{"U.S", "e.g", "end"}));
  EXPECT_EQ(a.tokenize("\"Evan Morris\"\nEvan"), (Terms{"Evan", "Morris", "Evan"}));
}

TEST(Analyzer, UnicodeGoesThroughIcu) {
  Analyzer a;
  EXPECT_EQ(a.tokenize("Jędrzejewiczowa (née Kowalska)"),
            (Terms{"Jędrzejewiczowa", "née", "Kowalska"}));
  const Terms t = a.analyze("Jędrzejewiczowa");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].rfind("jędrzejewicz", 0), 0u) << t[0];
  EXPECT_EQ(a.analyze("Ça va"), (Terms{"ça", "va"}));
  EXPECT_EQ(a.analyze("ÉCOLE Straße"), (Terms{"école", "strass"}));  // case folding: ß -> ss
  EXPECT_EQ(a.tokenize("Zürich–Genève — 1,000€"), (Terms{"Zürich", "Genève", "1,000"}));
  EXPECT_EQ(a.analyze("ΑΘΗΝΑ"), Terms{"αθηνα"});
  EXPECT_EQ(a.tokenize("東京 🙂 ok"), (Terms{"東京", "ok"}));
}

// The ASCII fast path must cut exactly where ICU's word BreakIterator does.
TEST(Analyzer, AsciiFastPathMatchesIcu) {
  Analyzer a;
  std::mt19937 rng(7);
  const std::string alphabet = "aZb9 0.,;:'_-/\"!?()x1";
  for (int trial = 0; trial < 3000; ++trial) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
    ASSERT_EQ(a.tokenize(s), a.tokenize_icu(s)) << "text: [" << s << "]";
  }
}

TEST(Analyzer, StemmerChoice) {
  AnalyzerOptions english;
  english.stemmer = "english";
  EXPECT_EQ(Analyzer(english).analyze("generously running"), (Terms{"generous", "run"}));
  EXPECT_EQ(Analyzer().analyze("generously running"), (Terms{"gener", "run"}));
  AnalyzerOptions bad;
  bad.stemmer = "klingon";
  EXPECT_THROW(Analyzer{bad}, Error);
}

TEST(Analyzer, OverlongTokensAreDropped) {
  Analyzer a;
  EXPECT_EQ(a.analyze(std::string(300, 'x') + " cat"), Terms{"cat"});
}

}  // namespace
}  // namespace strata::retrieval
