// build_index --dense and retrieval_server's dense, FlashRAG-pair and hybrid modes as black
// boxes (the model-free hash:DIM encoder): a build killed with SIGKILL resumes to the same
// index; the daemon answers /retrieve unchanged, batches concurrent requests into shared encoder
// calls (visible on /metrics), answers 503 + Retry-After when the encoder queue is full, and
// refuses bad inputs (dimension or passage-count mismatches) with exit 2 before serving.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/child_process.h"
#include "tests/test_util.h"
#include "tests/retrieval/dense_daemon_util.h"

namespace fs = std::filesystem;
using strata::testing::ChildProcess;
using namespace strata::retrieval::testing;

namespace {

fs::path write_corpus(const fs::path& dir, int n) {
  const fs::path p = dir / "corpus.jsonl";
  std::ofstream out(p);
  for (int i = 0; i < n; ++i) {
    nlohmann::json j = {{"id", std::to_string(i)},
                        {"contents", "\"Town" + std::to_string(i) + "\"\nTown" +
                                         std::to_string(i) + " lies on the river Flow" +
                                         std::to_string(i % 7) + " and has mayor Person" +
                                         std::to_string(i * 3)}};
    out << j.dump() << "\n";
  }
  return p;
}

}  // namespace

TEST(BuildIndexDense, KilledBuildResumesToTheSameIndex) {
  const auto dir = temp_dir("kill");
  const auto corpus = write_corpus(dir, 400);
  const std::vector<std::string> common = {"--dense", "--encoder", "hash:32", "--encoder-batch",
                                           "8", "--shard-docs", "16", "--corpus",
                                           corpus.string()};
  auto args = [&](const std::string& out, int delay) {
    std::vector<std::string> a = {kBin + "/build_index"};
    a.insert(a.end(), common.begin(), common.end());
    a.insert(a.end(), {"--out", out, "--hash-delay-ms", std::to_string(delay)});
    return a;
  };
  ASSERT_EQ(run(args((dir / "whole").string(), 0), dir / "whole.log"), 0)
      << read_bytes(dir / "whole.log");
  {
    // 50 batches of 20 ms: kill it once a few shards are on disk.
    ChildProcess p(args((dir / "resumed").string(), 20), (dir / "killed.log").string());
    const fs::path third = dir / "resumed" / "build" / "shard-000002.f32";
    for (int i = 0; i < 500 && !fs::exists(third) && p.poll() == -1; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(fs::exists(third)) << read_bytes(dir / "killed.log");
    p.signal(SIGKILL);
    EXPECT_EQ(p.wait(10), 128 + SIGKILL);
  }
  EXPECT_FALSE(fs::exists(dir / "resumed" / "manifest.json"));
  ASSERT_EQ(run(args((dir / "resumed").string(), 0), dir / "resume.log"), 0)
      << read_bytes(dir / "resume.log");
  EXPECT_NE(read_bytes(dir / "resume.log").find("resuming"), std::string::npos)
      << read_bytes(dir / "resume.log");
  for (const char* f : {"vectors.f32", "docs.bin", "docs.idx", "manifest.json"})
    EXPECT_EQ(read_bytes(dir / "whole" / f), read_bytes(dir / "resumed" / f)) << f;
  fs::remove_all(dir);
}

TEST(RetrievalServerDense, ServesBatchesAndOverloads) {
  const auto dir = temp_dir("serve");
  const auto corpus = write_corpus(dir, 100);
  ASSERT_EQ(run({kBin + "/build_index", "--dense", "--encoder", "hash:64", "--corpus",
                 corpus.string(), "--out", (dir / "dense").string()},
                dir / "build.log"),
            0)
      << read_bytes(dir / "build.log");
  ASSERT_EQ(run({kBin + "/build_index", "--corpus", corpus.string(), "--out",
                 (dir / "bm25").string()},
                dir / "bm25.log"),
            0);
  // Dense: the Search-R1 response, batched encoder calls under 16 concurrent requests.
  {
    Daemon d({"--index", (dir / "dense").string(), "--encoder", "hash:64", "--hash-delay-ms",
              "30", "--encoder-max-wait-us", "20000"},
             dir);
    ASSERT_NE(d.port, 0) << read_bytes(dir / "daemon.log");
    const auto r = d.post(R"({"queries": ["Town7 river Flow0 mayor Person21"], "topk": 2,
                               "return_scores": true})");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = nlohmann::json::parse(r.body);
    ASSERT_EQ(j["result"][0].size(), 2u);
    EXPECT_EQ(j["result"][0][0]["document"]["id"], "7");
    EXPECT_TRUE(j["result"][0][0].contains("score"));
    std::vector<std::thread> ts;
    std::atomic<int> ok{0};
    for (int t = 0; t < 16; ++t)
      ts.emplace_back([&, t] {
        if (d.post(R"({"queries": ["Town)" + std::to_string(t) + R"("], "topk": 1})").status ==
            200)
          ++ok;
      });
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok.load(), 16);
    const auto m = d.get("/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("strata_encoder_seconds_total"), std::string::npos) << m.body;
    // 17 queries; far fewer encoder calls than requests.
    const std::string key = "strata_encoder_batch_size_count ";
    const auto at = m.body.find(key);
    ASSERT_NE(at, std::string::npos);
    const int calls = std::stoi(m.body.substr(at + key.size()));
    EXPECT_LT(calls, 10) << m.body;
  }
  // Overload: one query in flight at a time and a queue of one: the rest get 503 + Retry-After.
  {
    Daemon d({"--index", (dir / "dense").string(), "--encoder", "hash:64", "--hash-delay-ms",
              "300", "--encoder-max-batch", "1", "--encoder-max-queue", "1", "--retry-after",
              "2"},
             dir);
    ASSERT_NE(d.port, 0) << read_bytes(dir / "daemon.log");
    std::vector<std::thread> ts;
    std::atomic<int> ok{0}, busy{0};
    std::string retry_after;
    std::mutex mu;
    for (int t = 0; t < 8; ++t)
      ts.emplace_back([&] {
        const auto r = d.post(R"({"queries": ["river"], "topk": 1})");
        if (r.status == 200) ++ok;
        if (r.status == 503) {
          ++busy;
          std::lock_guard<std::mutex> lock(mu);
          retry_after = r.header("retry-after");
        }
      });
    for (auto& t : ts) t.join();
    EXPECT_GT(ok.load(), 0);
    EXPECT_GT(busy.load(), 0);
    EXPECT_EQ(retry_after, "2");
  }
  // Hybrid: both rankings fused; the document both agree on comes first.
  {
    Daemon d({"--hybrid", (dir / "bm25").string() + "," + (dir / "dense").string(), "--encoder",
              "hash:64"},
             dir);
    ASSERT_NE(d.port, 0) << read_bytes(dir / "daemon.log");
    const auto r = d.post(R"({"queries": ["Town42 mayor Person126"], "topk": 3})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(nlohmann::json::parse(r.body)["result"][0][0]["id"], "42") << r.body;
  }
  // Bad inputs: exit 2 before serving.
  EXPECT_EQ(run({kBin + "/retrieval_server", "--index", (dir / "dense").string(), "--encoder",
                 "hash:48"},
                dir / "dim.log"),
            2);
  EXPECT_NE(read_bytes(dir / "dim.log").find("48"), std::string::npos);
  EXPECT_EQ(run({kBin + "/retrieval_server", "--index", (dir / "dense").string()},
                dir / "noenc.log"),
            2);
  fs::remove_all(dir);
}

TEST(RetrievalServerDense, ServesAFlashRagPairAndRefusesAMismatchedOne) {
  STRATA_REQUIRE_SHARED(real);
  const auto faiss_file = fs::path(real) / "wiki18_sample_1000.e5_flat.faiss";
  const auto corpus = fs::path(real) / "wiki18_sample_1000.jsonl";
  const auto dir = temp_dir("pair");
  // The E5 weights are not available here: a 768-dim stand-in encoder shows the plumbing.
  {
    Daemon d({"--faiss", faiss_file.string(), "--corpus", corpus.string(), "--encoder",
              "hash:768"},
             dir);
    ASSERT_NE(d.port, 0) << read_bytes(dir / "daemon.log");
    const auto h = d.get("/health");
    EXPECT_NE(h.body.find("\"documents\":1000"), std::string::npos) << h.body;
    const auto r = d.post(R"({"queries": ["Evan Morris lobbyist"], "topk": 3})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(nlohmann::json::parse(r.body)["result"][0].size(), 3u);
  }
  const auto short_corpus = dir / "short.jsonl";
  {
    std::ifstream in(corpus);
    std::ofstream out(short_corpus);
    std::string line;
    for (int i = 0; i < 500 && std::getline(in, line); ++i) out << line << "\n";
  }
  EXPECT_EQ(run({kBin + "/retrieval_server", "--faiss", faiss_file.string(), "--corpus",
                 short_corpus.string(), "--encoder", "hash:768"},
                dir / "short.log"),
            2);
  EXPECT_NE(read_bytes(dir / "short.log").find("500 passages"), std::string::npos)
      << read_bytes(dir / "short.log");
  // Adopted as a folder, then served memory-mapped.
  ASSERT_EQ(run({kBin + "/build_index", "--adopt-faiss", faiss_file.string(), "--corpus",
                 corpus.string(), "--out", (dir / "e5").string(), "--encoder-name", "e5-base-v2"},
                dir / "adopt.log"),
            0)
      << read_bytes(dir / "adopt.log");
  EXPECT_EQ(run({kBin + "/retrieval_server", "--index", (dir / "e5").string(), "--encoder",
                 "hash:384"},
                dir / "dim.log"),
            2);
  fs::remove_all(dir);
}
