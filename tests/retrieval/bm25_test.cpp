// Over 450 lines on purpose: BM25 against a brute-force reference, the builder's edge cases and
// every kind of index damage, sharing the build helpers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "retrieval/analyzer.h"
#include "retrieval/bm25_builder.h"
#include "retrieval/bm25_format.h"
#include "retrieval/bm25_index.h"
#include "retrieval/bm25_search.h"
#include "tests/test_util.h"

namespace strata::retrieval {
namespace {

using Docs = std::vector<std::pair<std::string, std::string>>;  // (id, contents)

BuildOptions quiet_options() {
  BuildOptions o;
  o.progress = false;
  o.threads = 2;
  return o;
}

void build(const std::string& dir, const Docs& docs, const BuildOptions& options) {
  IndexBuilder b(dir, options);
  for (const auto& [id, contents] : docs) b.add(id, contents);
  b.finish();
}

// BM25 straight from the definition, on the analysed documents: the reference the index must
// reproduce. Sums each document's score in query-term order, in float, as the index does.
class BruteForce {
 public:
  BruteForce(const Docs& docs, const BuildOptions& o) : k1_(o.k1), b_(o.b), analyzer_(o.analyzer) {
    double total = 0;
    for (const auto& d : docs) {
      std::map<std::string, uint32_t> tf;
      const auto terms = analyzer_.analyze(d.second);
      for (const auto& t : terms) ++tf[t];
      for (const auto& [t, n] : tf) ++df_[t];
      tfs_.push_back(std::move(tf));
      lens_.push_back(static_cast<uint32_t>(terms.size()));
      total += static_cast<double>(terms.size());
    }
    avgdl_ = docs.empty() ? 0 : total / static_cast<double>(docs.size());
  }

  std::vector<Hit> search(const std::string& query, int k) {
    std::vector<std::pair<std::string, uint32_t>> q;  // distinct terms, first-appearance order
    for (const auto& t : analyzer_.analyze(query)) {
      if (!df_.count(t)) continue;
      auto it = std::find_if(q.begin(), q.end(), [&](const auto& p) { return p.first == t; });
      if (it == q.end()) {
        q.emplace_back(t, 1);
      } else {
        ++it->second;
      }
    }
    const double n = static_cast<double>(lens_.size());
    std::vector<Hit> hits;
    for (uint32_t d = 0; d < lens_.size(); ++d) {
      float score = 0;
      bool any = false;
      const float norm =
          static_cast<float>(k1_ * (1.0 - b_ + b_ * static_cast<double>(lens_[d]) / avgdl_));
      for (const auto& [t, qtf] : q) {
        auto it = tfs_[d].find(t);
        if (it == tfs_[d].end()) continue;
        const double df = df_[t];
        const float idf = static_cast<float>(std::log(1.0 + (n - df + 0.5) / (df + 0.5)));
        const float tf = static_cast<float>(it->second);
        score += (static_cast<float>(qtf) * idf) * (tf / (tf + norm));
        any = true;
      }
      if (any) hits.push_back({d, score});
    }
    std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
      return a.score > b.score || (a.score == b.score && a.doc < b.doc);
    });
    if (hits.size() > static_cast<size_t>(k)) hits.resize(k);
    return hits;
  }

 private:
  double k1_, b_, avgdl_ = 0;
  Analyzer analyzer_;
  std::vector<std::map<std::string, uint32_t>> tfs_;
  std::vector<uint32_t> lens_;
  std::map<std::string, uint32_t> df_;
};

void expect_same_hits(const std::vector<Hit>& got, const std::vector<Hit>& want,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].doc, want[i].doc) << what << " rank " << i;
    EXPECT_NEAR(got[i].score, want[i].score, 1e-5 * std::max(1.0f, want[i].score))
        << what << " rank " << i;
  }
}

const Docs kThreeDocs = {{"d0", "cat dog"}, {"d1", "cat cat fish"}, {"d2", "bird"}};

TEST(Bm25Scoring, HandComputedThreeDocuments) {
  testing::TempDir tmp;
  build(tmp.path(), kThreeDocs, quiet_options());
  Bm25Index index(tmp.path());
  EXPECT_EQ(index.num_docs(), 3u);
  EXPECT_DOUBLE_EQ(index.avg_doc_len(), 2.0);
  EXPECT_EQ(index.doc_freq("cat"), 2u);
  EXPECT_EQ(index.doc_length(1), 3u);
  // idf(cat) = ln(1 + 1.5/2.5); d0: tf 1, dl 2 -> norm 0.9; d1: tf 2, dl 3 -> norm 1.08.
  auto hits = index.search("cat", 10);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].doc, 1u);
  EXPECT_NEAR(hits[0].score, 0.3051971618, 1e-6);
  EXPECT_EQ(hits[1].doc, 0u);
  EXPECT_NEAR(hits[1].score, 0.2473703312, 1e-6);
  hits = index.search("Cat FISH", 10);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].doc, 1u);
  EXPECT_NEAR(hits[0].score, 0.3051971618 + 0.4715525255, 1e-6);
  hits = index.search("dog fish", 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].doc, 0u);
  EXPECT_NEAR(hits[0].score, 0.5162259226, 1e-6);
  // A repeated query term counts per occurrence.
  hits = index.search("cat cat", 10);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_NEAR(hits[0].score, 2 * 0.3051971618, 1e-6);
}

TEST(Bm25Scoring, EmptyStopWordAndUnknownQueries) {
  testing::TempDir tmp;
  build(tmp.path(), kThreeDocs, quiet_options());
  Bm25Index index(tmp.path());
  EXPECT_TRUE(index.search("", 10).empty());
  EXPECT_TRUE(index.search("the of and", 10).empty());
  EXPECT_TRUE(index.search("zebra", 10).empty());
  EXPECT_TRUE(index.search("cat", 0).empty());
  EXPECT_THROW(index.search("cat", -1), Error);
  EXPECT_EQ(index.search("zebra bird", 10).size(), 1u);
}

TEST(Bm25Scoring, TiesGoToTheSmallerDocument) {
  testing::TempDir tmp;
  Docs docs;
  for (int i = 0; i < 300; ++i) docs.push_back({std::to_string(i), i % 3 == 0 ? "red apple" : "green pear"});
  build(tmp.path(), docs, quiet_options());
  Bm25Index index(tmp.path());
  const auto hits = index.search("apple", 5);
  ASSERT_EQ(hits.size(), 5u);
  for (size_t i = 0; i < hits.size(); ++i) {
    EXPECT_EQ(hits[i].doc, 3 * i);
    EXPECT_EQ(hits[i].score, hits[0].score);
  }
  EXPECT_EQ(index.search("apple", 1000).size(), 100u);
  expect_same_hits(index.search_exhaustive("apple", 5), hits, "ties exhaustive");
  expect_same_hits(index.search_exhaustive("apple pear", 7), index.search("apple pear", 7), "ties");
}

// A corpus with a Zipf-like vocabulary, so that postings span many blocks and MaxScore prunes.
Docs random_corpus(size_t n, uint32_t seed, std::vector<std::string>& vocab) {
  std::mt19937 rng(seed);
  const char* syll[] = {"ka", "lo", "mi", "ren", "tu", "sa", "vor", "ple", "dan", "qui", "zo", "nex"};
  vocab.clear();
  for (int i = 0; i < 3000; ++i) {
    std::string w;
    for (int s = 0; s < 2 + i % 3; ++s) w += syll[rng() % 12];
    vocab.push_back(w + std::to_string(i));
  }
  std::vector<double> weights;
  for (size_t i = 0; i < vocab.size(); ++i) weights.push_back(1.0 / std::pow(i + 1.0, 1.05));
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  Docs docs;
  for (size_t d = 0; d < n; ++d) {
    std::string text = "\"Title " + std::to_string(d) + "\"\n";
    const int len = 3 + static_cast<int>(rng() % 120);
    for (int t = 0; t < len; ++t) text += vocab[pick(rng)] + (t % 9 == 8 ? ". " : " ");
    docs.push_back({"doc" + std::to_string(d), text});
  }
  return docs;
}

std::vector<std::string> random_queries(const std::vector<std::string>& vocab, uint32_t seed,
                                        int count) {
  std::mt19937 rng(seed);
  std::vector<std::string> queries;
  for (int i = 0; i < count; ++i) {
    std::string q;
    const int len = 1 + static_cast<int>(rng() % 7);
    for (int t = 0; t < len; ++t) {
      // Mix frequent, mid and rare terms; now and then a repeat or a stop word.
      const size_t r = rng() % 4 == 0 ? rng() % 20 : rng() % vocab.size();
      q += vocab[r] + " ";
      if (rng() % 10 == 0) q += "the ";
      if (rng() % 12 == 0) q += vocab[r] + " ";
    }
    queries.push_back(q);
  }
  return queries;
}

TEST(Bm25TopK, EqualsBruteForceOnRandomCorpus) {
  testing::TempDir tmp;
  std::vector<std::string> vocab;
  const Docs docs = random_corpus(4000, 11, vocab);
  BuildOptions o = quiet_options();
  o.run_postings = 20000;  // several sorted runs, merged
  build(tmp.path(), docs, o);
  Bm25Index index(tmp.path());
  ASSERT_EQ(index.num_docs(), docs.size());
  BruteForce ref(docs, o);
  const auto queries = random_queries(vocab, 5, 120);
  for (int k : {1, 3, 10, 100}) {
    for (const auto& q : queries) {
      const auto want = ref.search(q, k);
      expect_same_hits(index.search(q, k), want, "maxscore k=" + std::to_string(k) + " q=" + q);
      expect_same_hits(index.search_exhaustive(q, k), want,
                       "exhaustive k=" + std::to_string(k) + " q=" + q);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(Bm25TopK, OtherParametersAndStemmer) {
  testing::TempDir tmp;
  std::vector<std::string> vocab;
  const Docs docs = random_corpus(1500, 3, vocab);
  BuildOptions o = quiet_options();
  o.k1 = 1.2;
  o.b = 0.75;
  o.analyzer.stemmer = "english";
  o.threads = 1;
  build(tmp.path(), docs, o);
  Bm25Index index(tmp.path());
  EXPECT_DOUBLE_EQ(index.k1(), 1.2);
  EXPECT_DOUBLE_EQ(index.b(), 0.75);
  EXPECT_EQ(index.analyzer_options().stemmer, "english");
  BruteForce ref(docs, o);
  for (const auto& q : random_queries(vocab, 9, 60))
    expect_same_hits(index.search(q, 10), ref.search(q, 10), "q=" + q);
}

TEST(Bm25TopK, BatchEqualsSingleQueries) {
  testing::TempDir tmp;
  std::vector<std::string> vocab;
  const Docs docs = random_corpus(2000, 21, vocab);
  build(tmp.path(), docs, quiet_options());
  Bm25Index index(tmp.path());
  const auto queries = random_queries(vocab, 4, 50);
  for (int threads : {0, 1, 3}) {
    const auto batch = index.search_batch(queries, 5, threads);
    ASSERT_EQ(batch.size(), queries.size());
    for (size_t i = 0; i < queries.size(); ++i)
      expect_same_hits(batch[i], index.search(queries[i], 5), "batch q=" + queries[i]);
  }
  EXPECT_TRUE(index.search_batch({}, 5, 2).empty());
}

// ---- The bound scan over impact arrays (bm25_search.h) ---------------------------------------

BuildOptions scan_options(double share) {
  BuildOptions o = quiet_options();
  o.impact_share = share;
  return o;
}

// Every path gives the same hits with bit-identical scores: the bound scan (AVX-512 where the
// CPU has it, and the plain loops), the main pass, the cost-based choice, and exhaustive
// scoring; and those equal brute force.
void expect_all_paths_agree(Bm25Index& index, BruteForce& ref, const std::string& q, int k) {
  const auto exhaustive = index.search_exhaustive(q, k);
  expect_same_hits(exhaustive, ref.search(q, k), "exhaustive vs brute force, q=" + q);
  for (BoundScan mode : {BoundScan::kAlways, BoundScan::kOff, BoundScan::kAuto}) {
    for (bool simd : {true, false}) {
      set_bound_scan_simd(simd);
      index.set_bound_scan(mode);
      const auto got = index.search(q, k);
      const std::string what = "mode " + std::to_string(static_cast<int>(mode)) + " simd " +
                               std::to_string(simd) + " k=" + std::to_string(k) + " q=" + q;
      ASSERT_EQ(got.size(), exhaustive.size()) << what;
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].doc, exhaustive[i].doc) << what << " rank " << i;
        EXPECT_EQ(got[i].score, exhaustive[i].score) << what << " rank " << i;
      }
    }
  }
  set_bound_scan_simd(true);
  index.set_bound_scan(BoundScan::kAuto);
}

TEST(Bm25BoundScan, EqualsExhaustiveOnRandomCorpus) {
  testing::TempDir tmp;
  std::vector<std::string> vocab;
  const Docs docs = random_corpus(4000, 17, vocab);
  BuildOptions o = scan_options(0.01);  // every term in 40+ documents gets an array
  o.run_postings = 30000;
  build(tmp.path(), docs, o);
  Bm25Index index(tmp.path());
  EXPECT_GT(index.num_impact_arrays(), 20u);
  BruteForce ref(docs, o);
  for (const auto& q : random_queries(vocab, 7, 60)) {
    for (int k : {1, 10, 100}) {
      expect_all_paths_agree(index, ref, q, k);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// The shape of the slow questions: rare names that match fewer passages than k, among very
// common words, so that passages matching only common words fill the top-k; many of those are
// identical (exact ties), some longer than 255 terms (the length-class bound of the lists
// without an array) or with a tf above 4 (outside the contribution table).
TEST(Bm25BoundScan, RareNamesAmongCommonWordsWithTies) {
  testing::TempDir tmp;
  Docs docs;
  std::mt19937 rng(5);
  const char* filler[] = {"river", "stone", "music", "paper", "garden", "winter", "bridge"};
  for (int d = 0; d < 3000; ++d) {
    std::string text;
    const int kind = d % 10;
    if (kind < 4) {
      text = "In the year 1900 she was born in a small town.";  // identical passages: ties
    } else if (kind < 6) {
      text = "The year of the flood was a year to remember.";
    } else if (kind == 6) {
      text =
          "He was born there; born again, he wrote of the town and the town and the town "
          "and the town and the town and the town.";  // tf 6 for "town"
    } else {
      const int len = kind == 9 ? 300 : 5 + static_cast<int>(rng() % 40);
      for (int t = 0; t < len; ++t) text += std::string(filler[rng() % 7]) + " ";
      if (rng() % 2) text += "year ";
      if (rng() % 3 == 0) text += "born town ";
    }
    docs.push_back({"p" + std::to_string(d), text});
  }
  docs[1234].second += " Relsek Boshin";
  docs[2345].second += " Relsek";
  docs[77].second += " Boshin Boshin";
  const BuildOptions o = scan_options(0.2);  // year and born get arrays, town does not
  build(tmp.path(), docs, o);
  Bm25Index index(tmp.path());
  EXPECT_GE(index.num_impact_arrays(), 2u);
  BruteForce ref(docs, o);
  for (const char* q : {"In what year was Relsek Boshin born?", "year born", "born town Boshin",
                        "year year born town river", "Relsek town", "town"}) {
    for (int k : {1, 3, 10, 50, 5000}) {  // 5000: above the number of matches
      expect_all_paths_agree(index, ref, q, k);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(Bm25BoundScan, ImpactArraysDoNotChangeResults) {
  testing::TempDir with, without;
  std::vector<std::string> vocab;
  const Docs docs = random_corpus(2500, 23, vocab);
  build(with.path(), docs, scan_options(0.005));
  build(without.path(), docs, scan_options(0));
  Bm25Index a(with.path()), b(without.path());
  EXPECT_GT(a.num_impact_arrays(), 0u);
  EXPECT_EQ(b.num_impact_arrays(), 0u);
  a.set_bound_scan(BoundScan::kAlways);
  for (const auto& q : random_queries(vocab, 3, 80)) {
    const auto x = a.search(q, 10), y = b.search(q, 10);
    ASSERT_EQ(x.size(), y.size()) << q;
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(x[i].doc, y[i].doc) << q;
      EXPECT_EQ(x[i].score, y[i].score) << q;
    }
  }
}

TEST(Bm25BoundScan, ImpactBytesAreTheSmallestUpperBound) {
  std::mt19937 rng(1);
  for (int i = 0; i < 20000; ++i) {
    const float max = 0.05f + static_cast<float>(rng() % 1000) / 1000.0f;
    const float t = max * static_cast<float>(rng() % 100001) / 100000.0f;
    if (!(t > 0)) continue;
    const uint32_t q = format::impact_byte(t, max);
    ASSERT_GE(q, 1u);
    ASSERT_LE(q, 255u);
    EXPECT_GE(q * static_cast<double>(max) / 255.0, static_cast<double>(t)) << t << " " << max;
    if (q > 1) {
      EXPECT_LT((q - 1) * static_cast<double>(max) / 255.0, static_cast<double>(t));
    }
  }
}

TEST(Bm25BoundScan, VersionOneIndexOpensWithoutArrays) {
  testing::TempDir tmp;
  std::vector<std::string> vocab;
  const Docs docs = random_corpus(1200, 9, vocab);
  build(tmp.path(), docs, scan_options(0.01));
  const auto queries = random_queries(vocab, 2, 20);
  std::vector<std::vector<Hit>> before;
  {
    Bm25Index index(tmp.path());
    for (const auto& q : queries) before.push_back(index.search(q, 10));
  }
  // What an index of format version 1 looks like: no impacts.bin.
  auto m = nlohmann::json::parse(testing::read_file(tmp.file("manifest.json")));
  m["version"] = 1;
  m["files"].erase("impacts.bin");
  testing::write_file(tmp.file("manifest.json"), m.dump(2));
  std::filesystem::remove(tmp.file("impacts.bin"));
  Bm25Index index(tmp.path(), Bm25Index::Verify::kFull);
  EXPECT_EQ(index.num_impact_arrays(), 0u);
  index.set_bound_scan(BoundScan::kAlways);  // nothing to scan: the main pass
  for (size_t i = 0; i < queries.size(); ++i)
    expect_same_hits(index.search(queries[i], 10), before[i], "version 1, q=" + queries[i]);
}

TEST(Bm25Build, SpilledRunsGiveTheSameIndex) {
  testing::TempDir a, b;
  std::vector<std::string> vocab;
  const Docs docs = random_corpus(1200, 8, vocab);
  BuildOptions one = quiet_options();
  BuildOptions many = quiet_options();
  many.run_postings = 1024;
  many.threads = 3;
  build(a.path(), docs, one);
  build(b.path(), docs, many);
  for (const char* f : {"postings.bin", "terms.bin", "terms.str", "doclens.bin", "docs.bin", "docs.idx"})
    EXPECT_EQ(testing::read_file(a.file(f)), testing::read_file(b.file(f))) << f;
  for (const auto& e : std::filesystem::directory_iterator(b.path()))
    EXPECT_NE(e.path().extension(), ".tmp") << "temporary run left behind: " << e.path();
}

// An empty corpus used to give an empty index that answered every query with nothing; it is
// refused now (almost always a wrong path or a failed export upstream).
TEST(Bm25Build, RefusesAnEmptyCorpus) {
  testing::TempDir tmp;
  EXPECT_THROW(build(tmp.file("idx"), {}, quiet_options()), Error);
  EXPECT_FALSE(std::filesystem::exists(tmp.file("idx/manifest.json")));
  testing::write_file(tmp.file("empty.jsonl"), "\n  \n");
  try {
    build_index(tmp.file("empty.jsonl"), tmp.file("idx2"), quiet_options());
    FAIL() << "built an index from an empty corpus";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty.jsonl has no passages"), std::string::npos) << e.what();
  }
}

TEST(Bm25Build, RefusesDuplicatePassageIds) {
  testing::TempDir tmp;
  Docs docs;
  for (int i = 0; i < 300; ++i) docs.push_back({std::to_string(i), "passage number " + std::to_string(i)});
  docs.push_back({"17", "another passage claiming id 17"});
  try {
    build(tmp.path(), docs, quiet_options());
    FAIL() << "built an index with a duplicate id";
  } catch (const Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("passage id \"17\" appears more than once"), std::string::npos) << w;
    EXPECT_NE(w.find("passages 18 and 301"), std::string::npos) << w;
  }
  EXPECT_FALSE(std::filesystem::exists(tmp.file("manifest.json")));
}

TEST(Bm25Build, ReadsTheCorpusThroughTheDataReader) {
  // Search-R1 contents are stored byte for byte (no quotes added to a bare first line); the
  // title/text form gets the quoted title line.
  testing::TempDir tmp;
  testing::write_file(tmp.file("c.jsonl"),
                      "{\"id\": 3, \"contents\": \"Bare title\\nsome text\"}\n"
                      "{\"id\": \"x\", \"title\": \"T\", \"text\": \"body\"}\n");
  build_index(tmp.file("c.jsonl"), tmp.file("idx"), quiet_options());
  Bm25Index index(tmp.file("idx"));
  ASSERT_EQ(index.num_docs(), 2u);
  EXPECT_EQ(index.document(0).id, "3");
  EXPECT_EQ(index.document(0).contents, "Bare title\nsome text");
  EXPECT_EQ(index.document(1).contents, "\"T\"\nbody");
}

TEST(Bm25Build, RejectsBadOptions) {
  BuildOptions o;
  o.k1 = -1;
  EXPECT_THROW(validate(o), Error);
  o = BuildOptions();
  o.b = 1.5;
  EXPECT_THROW(validate(o), Error);
  o = BuildOptions();
  o.analyzer.stemmer = "nope";
  EXPECT_THROW(validate(o), Error);
}

TEST(Bm25Index, BothCorpusFormsGiveTheSameIndex) {
  testing::TempDir tmp;
  const std::string a = tmp.file("contents.jsonl"), b = tmp.file("title_text.jsonl");
  testing::write_file(a,
                      "{\"id\": \"0\", \"contents\": \"\\\"Ed Wood\\\"\\nEd Wood was a director.\"}\n"
                      "{\"id\": 1, \"contents\": \"\\\"Plan 9\\\"\\nPlan 9 is a film by Ed Wood.\"}\n");
  testing::write_file(b,
                      "{\"id\": \"0\", \"title\": \"Ed Wood\", \"text\": \"Ed Wood was a director.\"}\n\n"
                      "{\"id\": \"1\", \"title\": \"Plan 9\", \"text\": \"Plan 9 is a film by Ed Wood.\"}\n");
  BuildOptions o = quiet_options();
  build_index(a, tmp.file("ia"), o);
  build_index(b, tmp.file("ib"), o);
  Bm25Index ia(tmp.file("ia")), ib(tmp.file("ib"));
  ASSERT_EQ(ia.num_docs(), 2u);
  ASSERT_EQ(ib.num_docs(), 2u);
  for (uint32_t d = 0; d < 2; ++d) {
    EXPECT_EQ(ia.document(d).id, ib.document(d).id);
    EXPECT_EQ(ia.document(d).contents, ib.document(d).contents);
  }
  EXPECT_EQ(ia.document(1).id, "1");
  EXPECT_EQ(ia.document(1).contents, "\"Plan 9\"\nPlan 9 is a film by Ed Wood.");
  expect_same_hits(ia.search("ed wood film", 2), ib.search("ed wood film", 2), "forms");
  EXPECT_EQ(ia.search("film", 2).at(0).doc, 1u);
  EXPECT_THROW(ia.document(2), Error);
}

TEST(Bm25IndexReal, Wiki18SampleRoundTrip) {
  STRATA_REQUIRE_SHARED(dir);
  const std::string corpus = dir + "/wiki18_sample_1000.jsonl";
  testing::TempDir tmp;
  const BuildStats stats = build_index(corpus, tmp.path(), quiet_options());
  EXPECT_EQ(stats.num_docs, 1000u);
  Bm25Index index(tmp.path());
  ASSERT_EQ(index.num_docs(), 1000u);
  EXPECT_EQ(index.size_bytes(), stats.index_bytes);
  std::ifstream in(corpus);
  std::string line;
  uint32_t d = 0;
  std::vector<std::string> titles;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    ASSERT_LT(d, index.num_docs());
    const DocumentView v = index.document(d);
    EXPECT_EQ(v.id, j["id"].get<std::string>());
    EXPECT_EQ(v.contents, j["contents"].get<std::string>()) << "document " << d;
    const std::string c = j["contents"].get<std::string>();
    titles.push_back(c.substr(0, c.find('\n')));
    ++d;
  }
  EXPECT_EQ(d, 1000u);
  // The passage's own title with a distinctive word finds it near the top.
  const auto hits = index.search("Evan Morris lobbyist Genentech", 3);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(index.document(hits[0].doc).id, "0");
  // Exhaustive and MaxScore agree on title queries.
  for (size_t i = 0; i < titles.size(); i += 7)
    expect_same_hits(index.search(titles[i], 10), index.search_exhaustive(titles[i], 10),
                     "title " + titles[i]);
}

// A searcher whose search() throws on one query: search_batch must hand the exception to the
// caller (a worker thread that let it escape would terminate the process).
class ThrowingSearcher final : public Searcher {
 public:
  std::vector<Hit> search(std::string_view query, int) const override {
    if (query == "boom") STRATA_FAIL("exploded on purpose");
    return {{0, 1.0f}};
  }
  DocumentView document(uint32_t) const override { return {"0", "x"}; }
  uint32_t num_docs() const override { return 1; }
};

TEST(SearchBatch, AWorkerExceptionReachesTheCaller) {
  const ThrowingSearcher s;
  std::vector<std::string> queries(64, "fine");
  EXPECT_EQ(s.search_batch(queries, 3, 4).size(), 64u);
  queries[37] = "boom";
  for (int threads : {1, 4}) EXPECT_THROW(s.search_batch(queries, 3, threads), Error) << threads;
}

class Bm25Corrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    build(tmp_.path(), kThreeDocs, quiet_options());
    Bm25Index ok(tmp_.path());  // opens before any damage
  }
  // Asserts that opening the index throws strata::Error whose message contains `needle`.
  void expect_error(const std::string& needle) {
    try {
      Bm25Index index(tmp_.path());
      FAIL() << "opened a damaged index; expected an error containing " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  void expect_error(const std::string& needle, Bm25Index::Verify verify) {
    try {
      Bm25Index index(tmp_.path(), verify);
      FAIL() << "opened a damaged index; expected an error containing " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  // Flips one bit of byte `at` (counted from the end when negative) of an index file.
  void flip(const std::string& name, long at) {
    std::string s = testing::read_file(tmp_.file(name));
    const size_t i = at >= 0 ? static_cast<size_t>(at) : s.size() - static_cast<size_t>(-at);
    s[i] = static_cast<char>(s[i] ^ 0x10);
    testing::write_file(tmp_.file(name), s);
  }
  void edit_manifest(const std::function<void(nlohmann::json&)>& f) {
    auto m = nlohmann::json::parse(testing::read_file(tmp_.file("manifest.json")));
    f(m);
    testing::write_file(tmp_.file("manifest.json"), m.dump(2));
  }
  void truncate(const std::string& name, size_t drop) {
    const std::string s = testing::read_file(tmp_.file(name));
    testing::write_file(tmp_.file(name), s.substr(0, s.size() - drop));
  }
  testing::TempDir tmp_;
};

TEST_F(Bm25Corrupt, MissingDirectoryOrManifest) {
  EXPECT_THROW(Bm25Index(tmp_.file("nope")), Error);
  std::filesystem::remove(tmp_.file("manifest.json"));
  expect_error("manifest.json");
}

TEST_F(Bm25Corrupt, MissingFile) {
  std::filesystem::remove(tmp_.file("postings.bin"));
  expect_error("postings.bin");
}

TEST_F(Bm25Corrupt, TruncatedFiles) {
  truncate("doclens.bin", 4);
  expect_error("doclens.bin");
}

TEST_F(Bm25Corrupt, TruncatedPostings) {
  truncate("postings.bin", 30);
  expect_error("postings.bin has");  // the manifest's size; without it, a term past the end
  edit_manifest([](nlohmann::json& m) { m.erase("files"); });
  expect_error("terms.bin");  // an index without checksums: a term's postings lie past the end
}

TEST_F(Bm25Corrupt, TruncatedDocs) {
  truncate("docs.bin", 1);
  expect_error("docs.bin");
}

TEST_F(Bm25Corrupt, BadMagic) {
  std::string s = testing::read_file(tmp_.file("terms.bin"));
  s[0] = 'X';
  testing::write_file(tmp_.file("terms.bin"), s);
  expect_error("terms.bin");
}

TEST_F(Bm25Corrupt, VersionMismatch) {
  std::string m = testing::read_file(tmp_.file("manifest.json"));
  const auto pos = m.find("\"version\": 2");
  ASSERT_NE(pos, std::string::npos) << m;
  m.replace(pos, 12, "\"version\": 99");
  testing::write_file(tmp_.file("manifest.json"), m);
  expect_error("version 99");
}

TEST_F(Bm25Corrupt, FormatOfTheWrongTypeIsRefused) {
  // A number where the format name belongs once escaped as nlohmann's type_error (fuzz finding).
  edit_manifest([](nlohmann::json& m) { m["format"] = 1; });
  expect_error("is not a");
}

TEST_F(Bm25Corrupt, GarbageManifest) {
  testing::write_file(tmp_.file("manifest.json"), "{not json");
  expect_error("manifest.json");
}

// Bit flips that keep every structure valid used to be served as 200s with wrong scores or
// lengths. The manifest's CRC-32s catch them: small files at every open, all files with kFull.
TEST_F(Bm25Corrupt, BitFlipsInSmallFilesFailTheChecksumAtOpen) {
  for (const char* name : {"doclens.bin", "terms.str", "terms.bin", "docs.idx"}) {
    SCOPED_TRACE(name);
    const std::string saved = testing::read_file(tmp_.file(name));
    flip(name, -1);
    expect_error(std::string(name) + " fails its checksum");
    testing::write_file(tmp_.file(name), saved);
  }
  Bm25Index index(tmp_.path(), Bm25Index::Verify::kFull);  // intact again
  EXPECT_EQ(index.num_docs(), 3u);
}

TEST_F(Bm25Corrupt, BitFlipsInLargeFilesFailFullVerification) {
  flip("docs.bin", -2);  // inside the last passage's text: structurally still valid
  Bm25Index fast(tmp_.path());  // sizes only for the large files
  EXPECT_EQ(fast.num_docs(), 3u);
  expect_error("docs.bin fails its checksum", Bm25Index::Verify::kFull);
}

TEST_F(Bm25Corrupt, ChangedSizeIsNamed) {
  std::string s = testing::read_file(tmp_.file("docs.bin"));
  testing::write_file(tmp_.file("docs.bin"), s + "extra");
  expect_error("docs.bin has");
}

TEST_F(Bm25Corrupt, UnknownStemmerFailsAtOpenNotAtQueryTime) {
  edit_manifest([](nlohmann::json& m) { m["analyzer"]["stemmer"] = "klingon"; });
  expect_error("manifest.json: ");
  expect_error("klingon");
}

TEST_F(Bm25Corrupt, IndexWithoutChecksumsStillOpens) {
  // Indexes built before the manifest carried checksums open (with a warning).
  edit_manifest([](nlohmann::json& m) { m.erase("files"); });
  Bm25Index index(tmp_.path(), Bm25Index::Verify::kFull);
  EXPECT_EQ(index.num_docs(), 3u);
  EXPECT_EQ(index.search("cat", 3).size(), 2u);
}

TEST_F(Bm25Corrupt, MalformedChecksumEntry) {
  edit_manifest([](nlohmann::json& m) { m["files"]["terms.bin"]["crc32"] = 5; });
  expect_error("files.terms.bin");
}

TEST_F(Bm25Corrupt, MissingImpactsOfAVersionTwoIndex) {
  std::filesystem::remove(tmp_.file("impacts.bin"));
  expect_error("impacts.bin");
}

TEST_F(Bm25Corrupt, TruncatedImpacts) {
  truncate("impacts.bin", 1);
  expect_error("impacts.bin has");  // the manifest's size
  edit_manifest([](nlohmann::json& m) { m.erase("files"); });
  expect_error("impacts.bin is corrupt");  // without it, the last array runs past the end
}

TEST_F(Bm25Corrupt, ImpactTableOutOfRange) {
  // The same size, so only the table's own checks can tell: a count past the file, then a
  // term slot past the dictionary.
  std::string s = testing::read_file(tmp_.file("impacts.bin"));
  const std::string saved = s;
  s[16] = static_cast<char>(0xFF);
  s[17] = static_cast<char>(0xFF);
  testing::write_file(tmp_.file("impacts.bin"), s);
  expect_error("impacts.bin is corrupt");
  s = saved;
  s[24] = static_cast<char>(0x7F);  // the first entry's term
  testing::write_file(tmp_.file("impacts.bin"), s);
  expect_error("impacts.bin is corrupt");
  expect_error("impacts.bin fails its checksum", Bm25Index::Verify::kFull);
}

TEST_F(Bm25Corrupt, DamagedBlockIsAnErrorNotACrash) {
  // Point the first block of every term at a wrong last_doc: decoding must notice.
  std::string s = testing::read_file(tmp_.file("postings.bin"));
  for (size_t i = 16; i + 4 <= s.size(); i += 4) s[i] = static_cast<char>(0x7F);
  testing::write_file(tmp_.file("postings.bin"), s);
  Bm25Index index(tmp_.path());
  EXPECT_THROW(index.search("cat", 3), Error);
}

}  // namespace
}  // namespace strata::retrieval
