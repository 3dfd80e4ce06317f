// Dense retrieval without a model: the hash embedder, building and opening dense index folders
// (flat and faiss factories, damage, resume), FlashRAG/Search-R1 faiss files against faiss from
// Python, the batching searcher (one encoder call for concurrent queries, overload) and
// reciprocal-rank fusion.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "tests/test_util.h"
#include "retrieval/dense/dense_builder.h"
#include "retrieval/dense/dense_index.h"
#include "retrieval/dense/dense_searcher.h"
#include "retrieval/hash_embedder.h"
#include "retrieval/hybrid_searcher.h"

namespace fs = std::filesystem;
using namespace strata::retrieval;
using namespace strata::retrieval::dense;

namespace {


fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() /
                     ("strata_dense_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A corpus of `n` passages about made-up towns; passage i names town i and its river.
fs::path write_corpus(const fs::path& dir, int n) {
  const fs::path p = dir / "corpus.jsonl";
  std::ofstream out(p);
  for (int i = 0; i < n; ++i) {
    nlohmann::json j = {{"id", std::to_string(1000 + i)},
                        {"contents", "\"Town" + std::to_string(i) + "\"\nTown" +
                                         std::to_string(i) + " lies on the river Flow" +
                                         std::to_string(i % 7) + " and has mayor Person" +
                                         std::to_string(i * 3)}};
    out << j.dump() << "\n";
  }
  return p;
}

DenseBuildOptions quiet(const std::string& factory = "Flat") {
  DenseBuildOptions o;
  o.factory = factory;
  o.batch_size = 8;
  o.shard_docs = 16;
  o.progress = false;
  return o;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Fails on the n-th embed() call (a build killed half-way).
class FailingEmbedder final : public Embedder {
 public:
  FailingEmbedder(int dim, int fail_at) : inner_(dim), fail_at_(fail_at) {}
  int dim() const override { return inner_.dim(); }
  std::string describe() const override { return inner_.describe(); }
  std::vector<float> embed(const std::vector<std::string>& t, bool q) override {
    if (++calls_ == fail_at_) throw strata::Error("killed");
    return inner_.embed(t, q);
  }

 private:
  HashEmbedder inner_;
  int fail_at_;
  int calls_ = 0;
};

}  // namespace

TEST(HashEmbedder, DeterministicNormalisedAndCountsSharedWords) {
  HashEmbedder e(64);
  const auto v = e.embed({"the river Flow", "The RIVER flow!", "a mayor", ""}, true);
  ASSERT_EQ(v.size(), 4u * 64);
  auto dot = [&](int a, int b) {
    double s = 0;
    for (int j = 0; j < 64; ++j) s += v[a * 64 + j] * v[b * 64 + j];
    return s;
  };
  EXPECT_NEAR(dot(0, 0), 1.0, 1e-6);
  EXPECT_NEAR(dot(0, 1), 1.0, 1e-6);  // case and punctuation do not matter
  EXPECT_LT(dot(0, 2), 0.9);
  EXPECT_EQ(dot(3, 3), 0.0);  // no words: the zero vector
  EXPECT_EQ(HashEmbedder::parse_spec("hash:384"), 384);
  EXPECT_EQ(HashEmbedder::parse_spec("hash:"), 0);
  EXPECT_EQ(HashEmbedder::parse_spec("models/minilm"), 0);
  EXPECT_EQ(e.calls(), 1);
}

TEST(DenseIndex, FlatBuildFindsEachPassageByItsOwnText) {
  const auto dir = temp_dir("flat");
  const auto corpus = write_corpus(dir, 50);
  HashEmbedder e(128);
  const auto st = build_dense_index(corpus.string(), (dir / "idx").string(), e, quiet());
  EXPECT_EQ(st.num_docs, 50u);
  EXPECT_EQ(st.encoded, 50u);
  EXPECT_FALSE(fs::exists(dir / "idx" / kBuildDir));  // shards removed once the index is whole
  const auto index = DenseIndex::open((dir / "idx").string(), DenseIndex::Verify::kFull);
  EXPECT_EQ(index->num_docs(), 50u);
  EXPECT_EQ(index->dim(), 128);
  EXPECT_EQ(index->encoder(), "hash:128");
  EXPECT_EQ(index->document(7).id, "1007");
  const auto q = e.embed({std::string(index->document(7).contents),
                          std::string(index->document(42).contents)},
                         true);
  const auto hits = index->search(q.data(), 2, 3);
  ASSERT_EQ(hits.size(), 2u);
  ASSERT_EQ(hits[0].size(), 3u);
  EXPECT_EQ(hits[0][0].doc, 7u);
  EXPECT_NEAR(hits[0][0].score, 1.0, 1e-5);
  EXPECT_GE(hits[0][0].score, hits[0][1].score);
  EXPECT_EQ(hits[1][0].doc, 42u);
  // The stored vector is what the encoder made.
  const auto v = index->vector(7);
  for (int j = 0; j < 128; ++j) ASSERT_FLOAT_EQ(v[j], q[j]);
  // k above the corpus size returns every passage once.
  EXPECT_EQ(index->search(q.data(), 1, 500)[0].size(), 50u);
  fs::remove_all(dir);
}

TEST(DenseIndex, FaissFactoriesBuildAndSearch) {
  const auto dir = temp_dir("factory");
  const auto corpus = write_corpus(dir, 300);
  HashEmbedder e(64);
  for (const std::string factory : {"HNSW16", "IVF4,Flat"}) {
    const auto out = (dir / ("idx_" + std::to_string(factory.size()))).string();
    build_dense_index(corpus.string(), out, e, quiet(factory));
    const auto index = DenseIndex::open(out);
    EXPECT_EQ(index->factory(), factory);
    if (factory.rfind("IVF", 0) == 0) index->set_search_parameters("nprobe=4");  // all lists
    const auto q = e.embed({std::string(index->document(123).contents)}, true);
    const auto hits = index->search(q.data(), 1, 5);
    ASSERT_FALSE(hits[0].empty()) << factory;
    EXPECT_EQ(hits[0][0].doc, 123u) << factory;
  }
  EXPECT_THROW(build_dense_index(corpus.string(), (dir / "bad").string(), e, quiet("NoSuchIndex")),
               strata::Error);
  fs::remove_all(dir);
}

TEST(DenseIndex, DamagedOrMismatchedFilesAreClearErrors) {
  const auto dir = temp_dir("damage");
  const auto corpus = write_corpus(dir, 40);
  HashEmbedder e(32);
  const auto idx = dir / "idx";
  build_dense_index(corpus.string(), idx.string(), e, quiet());
  // A flipped byte inside the vectors: found by the full check, not the fast one.
  {
    std::fstream f(idx / kVectors, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x7f');
  }
  EXPECT_NO_THROW(DenseIndex::open(idx.string(), DenseIndex::Verify::kFast));
  try {
    DenseIndex::open(idx.string(), DenseIndex::Verify::kFull);
    FAIL() << "a damaged vectors.f32 opened";
  } catch (const strata::Error& err) {
    EXPECT_NE(std::string(err.what()).find("checksum"), std::string::npos) << err.what();
  }
  // A truncated file: its size disagrees with the manifest.
  fs::resize_file(idx / kVectors, fs::file_size(idx / kVectors) - 4);
  EXPECT_THROW(DenseIndex::open(idx.string()), strata::Error);
  // An encoder of another dimension: refused before any query.
  build_dense_index(corpus.string(), idx.string(), e, quiet());
  const auto index = DenseIndex::open(idx.string());
  HashEmbedder other(48);
  try {
    DenseSearcher s(*index, other);
    FAIL() << "a 48-dim encoder was accepted for a 32-dim index";
  } catch (const strata::Error& err) {
    EXPECT_NE(std::string(err.what()).find("48"), std::string::npos) << err.what();
  }
  fs::remove_all(dir);
}

TEST(DenseIndex, InterruptedBuildResumesToTheSameIndex) {
  const auto dir = temp_dir("resume");
  const auto corpus = write_corpus(dir, 70);  // 4 whole shards of 16 and one of 6
  HashEmbedder e(32);
  build_dense_index(corpus.string(), (dir / "whole").string(), e, quiet());
  FailingEmbedder dying(32, 6);  // dies in the third shard (batches of 8, shards of 16)
  EXPECT_THROW(build_dense_index(corpus.string(), (dir / "resumed").string(), dying, quiet()),
               strata::Error);
  EXPECT_FALSE(fs::exists(dir / "resumed" / kManifest));
  EXPECT_THROW(DenseIndex::open((dir / "resumed").string()), strata::Error);
  const auto st = build_dense_index(corpus.string(), (dir / "resumed").string(), e, quiet());
  EXPECT_EQ(st.resumed_docs, 32u);  // two whole shards survived
  EXPECT_EQ(st.encoded, 38u);
  for (const char* f : {kVectors, "docs.bin", "docs.idx"})
    EXPECT_EQ(read_bytes(dir / "whole" / f), read_bytes(dir / "resumed" / f)) << f;
  // Other options than the interrupted build's start over instead of mixing shards.
  FailingEmbedder dying2(32, 3);
  EXPECT_THROW(build_dense_index(corpus.string(), (dir / "other").string(), dying2, quiet()),
               strata::Error);
  auto o = quiet();
  o.shard_docs = 32;
  EXPECT_EQ(build_dense_index(corpus.string(), (dir / "other").string(), e, o).resumed_docs, 0u);
  fs::remove_all(dir);
}

TEST(DenseIndex, E5SampleMatchesFaissFromPython) {
  STRATA_REQUIRE_SHARED(real);
  const fs::path kReal(real);
  const auto faiss_file = (kReal / "wiki18_sample_1000.e5_flat.faiss").string();
  const auto corpus = (kReal / "wiki18_sample_1000.jsonl").string();
  const auto dir = temp_dir("e5");
  const std::vector<uint32_t> docs = {0, 1, 2, 17, 123, 500, 998, 999};
  const int k = 10;
  const auto ref_path = dir / "ref.json";
  std::string cmd = std::string(std::getenv("STRATA_PYTHON") ? std::getenv("STRATA_PYTHON")
                                                             : "python3") +
                    " " + STRATA_SOURCE_DIR + "/tests/python/faiss_reference.py '" + faiss_file +
                    "' " + std::to_string(k) + " '" + ref_path.string() + "'";
  for (uint32_t d : docs) cmd += " " + std::to_string(d);
  const int rc = std::system(cmd.c_str());
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 3)
    GTEST_SKIP() << "faiss-cpu is not installed (scripts/setup.sh installs it)";
  ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << cmd;
  nlohmann::json ref;
  std::ifstream(ref_path) >> ref;

  // Served as it is (faiss's reader) and adopted into a folder (memory-mapped rows): both agree
  // with faiss from Python, neighbours exactly and scores to float precision.
  const auto pair = DenseIndex::open_faiss(faiss_file, corpus);
  adopt_faiss_index(faiss_file, corpus, (dir / "adopted").string(), "e5-base-v2 (FlashRAG)");
  const auto adopted = DenseIndex::open((dir / "adopted").string(), DenseIndex::Verify::kFull);
  for (const DenseIndex* index : {pair.get(), adopted.get()}) {
    ASSERT_EQ(index->num_docs(), 1000u);
    ASSERT_EQ(index->dim(), 768);
    EXPECT_EQ(index->metric(), Metric::kInnerProduct);
    EXPECT_EQ(index->document(0).id, "0");
    std::vector<float> q;
    for (uint32_t d : docs) {
      const auto v = index->vector(d);
      q.insert(q.end(), v.begin(), v.end());
    }
    const auto hits = index->search(q.data(), docs.size(), k);
    for (size_t i = 0; i < docs.size(); ++i) {
      ASSERT_EQ(hits[i].size(), static_cast<size_t>(k));
      for (int j = 0; j < k; ++j) {
        EXPECT_EQ(hits[i][j].doc, ref["ids"][i][j].get<int64_t>()) << index->describe() << " q" << i;
        EXPECT_NEAR(hits[i][j].score, ref["scores"][i][j].get<double>(), 1e-5);
      }
    }
  }
  EXPECT_EQ(adopted->encoder(), "e5-base-v2 (FlashRAG)");
  EXPECT_EQ(pair->document(999).contents, adopted->document(999).contents);

  // A corpus one passage short: refused before anything is loaded, naming both counts.
  const auto short_corpus = dir / "short.jsonl";
  {
    std::ifstream in(corpus);
    std::ofstream out(short_corpus);
    std::string line;
    for (int i = 0; i < 999 && std::getline(in, line); ++i) out << line << "\n";
  }
  for (int how = 0; how < 2; ++how) {
    try {
      if (how == 0) DenseIndex::open_faiss(faiss_file, short_corpus.string());
      else adopt_faiss_index(faiss_file, short_corpus.string(), (dir / "bad").string(), "");
      FAIL() << "a 1000-vector index was paired with a 999-passage corpus";
    } catch (const strata::Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("1000"), std::string::npos) << m;
      EXPECT_NE(m.find("999"), std::string::npos) << m;
    }
  }
  EXPECT_FALSE(fs::exists(dir / "bad" / kManifest));
  fs::remove_all(dir);
}

TEST(DenseSearcher, ConcurrentQueriesShareEncoderCalls) {
  const auto dir = temp_dir("batch");
  const auto corpus = write_corpus(dir, 60);
  HashEmbedder build_e(64);
  build_dense_index(corpus.string(), (dir / "idx").string(), build_e, quiet());
  const auto index = DenseIndex::open((dir / "idx").string());
  HashEmbedder e(64, /*delay_ms=*/40);
  BatchOptions bo;
  bo.max_batch = 64;
  bo.max_wait_us = 20000;
  DenseSearcher s(*index, e, bo);
  constexpr int kThreads = 16;
  std::vector<std::vector<Hit>> got(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] { got[t] = s.search(index->document(t * 3).contents, 2); });
  for (auto& t : ts) t.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(got[t].size(), 2u);
    EXPECT_EQ(got[t][0].doc, static_cast<uint32_t>(t * 3)) << "caller " << t;
  }
  const auto st = s.stats();
  EXPECT_EQ(st.queries, static_cast<uint64_t>(kThreads));
  EXPECT_LT(st.batches, 6u) << "16 concurrent queries took " << st.batches << " encoder calls";
  EXPECT_GT(st.largest_batch, 1u);
  EXPECT_EQ(e.calls(), static_cast<long>(st.batches));
  // A multi-query request is one job; its lists come back in order with its own k.
  const auto multi = s.search_batch({std::string(index->document(5).contents),
                                     std::string(index->document(9).contents)},
                                    1, 0);
  ASSERT_EQ(multi.size(), 2u);
  EXPECT_EQ(multi[0].size(), 1u);
  EXPECT_EQ(multi[0][0].doc, 5u);
  EXPECT_EQ(multi[1][0].doc, 9u);
  const std::string m = s.metrics_text();
  EXPECT_NE(m.find("strata_encoder_seconds_total"), std::string::npos);
  EXPECT_NE(m.find("strata_encoder_batch_size_count"), std::string::npos);
  fs::remove_all(dir);
}

TEST(DenseSearcher, FullQueueRefusesWithOverloadedError) {
  const auto dir = temp_dir("overload");
  const auto corpus = write_corpus(dir, 20);
  HashEmbedder build_e(16);
  build_dense_index(corpus.string(), (dir / "idx").string(), build_e, quiet());
  const auto index = DenseIndex::open((dir / "idx").string());
  HashEmbedder slow(16, /*delay_ms=*/150);
  BatchOptions bo;
  bo.max_batch = 1;
  bo.max_queue = 2;
  DenseSearcher s(*index, slow, bo);
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 10; ++t)
    ts.emplace_back([&] {
      try {
        s.search("river Flow3", 1);
        ++ok;
      } catch (const OverloadedError&) {
        ++refused;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_GT(refused.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(ok + refused, 10);
  EXPECT_EQ(s.stats().overloaded, static_cast<uint64_t>(refused.load()));
  fs::remove_all(dir);
}

TEST(HybridSearcher, ReciprocalRankFusion) {
  HybridOptions o;
  o.rrf_k = 60;
  // Doc 1 is second in both lists; doc 0 first in one only; doc 3 first in the other only.
  const std::vector<Hit> bm25 = {{0, 9}, {1, 8}, {2, 7}};
  const std::vector<Hit> dense = {{3, .9f}, {1, .8f}};
  const auto f = HybridSearcher::fuse(bm25, dense, o, 10);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].doc, 1u);
  EXPECT_NEAR(f[0].score, 0.5 / 62 + 0.5 / 62, 1e-7);
  EXPECT_EQ(f[1].doc, 0u);  // tie of 0.5/61 with doc 3: the smaller doc first
  EXPECT_EQ(f[2].doc, 3u);
  EXPECT_NEAR(f[1].score, 0.5 / 61, 1e-7);
  EXPECT_EQ(f[3].doc, 2u);
  EXPECT_EQ(HybridSearcher::fuse(bm25, dense, o, 2).size(), 2u);
  // Weight 1 is the dense ranking alone, weight 0 the BM25 one.
  o.dense_weight = 1;
  const auto d = HybridSearcher::fuse(bm25, dense, o, 10);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].doc, 3u);
  EXPECT_EQ(d[1].doc, 1u);
  o.dense_weight = 0;
  const auto b = HybridSearcher::fuse(bm25, dense, o, 10);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].doc, 0u);
  o.dense_weight = 1.5;
  EXPECT_THROW(validate(o), strata::Error);
}

TEST(HybridSearcher, RefusesIndexesOfDifferentCorpora) {
  const auto dir = temp_dir("hybrid");
  HashEmbedder e(16);
  build_dense_index(write_corpus(dir, 30).string(), (dir / "a").string(), e, quiet());
  const auto other_dir = dir / "o";
  fs::create_directories(other_dir);
  build_dense_index(write_corpus(other_dir, 31).string(), (dir / "b").string(), e, quiet());
  const auto a = DenseIndex::open((dir / "a").string());
  const auto b = DenseIndex::open((dir / "b").string());
  DenseSearcher sa(*a, e), sb(*b, e);
  EXPECT_THROW(HybridSearcher(sa, sb, HybridOptions{}), strata::Error);
  HybridSearcher same(sa, sa, HybridOptions{});
  const auto hits = same.search(a->document(4).contents, 3);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].doc, 4u);
  fs::remove_all(dir);
}
