// The dense path end to end with real weights: build_index --dense encodes a corpus with
// all-MiniLM-L6-v2, retrieval_server serves it, and every answer equals what the encoder library
// computes in this process (the same top-3 passages, in the same order, with the same inner
// products). Paraphrased questions find their passage first, which a bag-of-words embedder could
// not do. Skips where the MiniLM folder is not in the strata cache (scripts/setup.sh puts it
// there).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "agent/encoder.h"
#include "tests/retrieval/dense_daemon_util.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace strata::retrieval::testing;

namespace {

// Ten passages on unrelated subjects; each question below paraphrases one of them and shares
// few words with it.
const std::vector<std::string> kPassages = {
    "The violin is a wooden string instrument played with a bow; it has four strings tuned in "
    "perfect fifths.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen.",
    "The Great Wall was built over many centuries to protect Chinese states from northern raids.",
    "A marathon is a long-distance foot race of 42.195 kilometres.",
    "Volcanoes erupt when molten rock from the mantle rises through cracks in the crust.",
    "Penicillin, found by Alexander Fleming in 1928, was the first widely used antibiotic.",
    "The stock exchange is a market where shares of public companies are bought and sold.",
    "Honey bees communicate the direction of flowers to their hive mates with a waggle dance.",
    "Chess is a board game for two players in which each side tries to checkmate the other king.",
    "Glaciers are slow rivers of ice that carve valleys as they move downhill.",
};
const std::vector<std::pair<std::string, int>> kQuestions = {
    {"which medicine did Fleming discover", 5},
    {"how do bees tell each other where food is", 7},
    {"how long is the running race of 42 km", 3},
    {"what makes lava come out of a mountain", 4},
    {"how do green leaves make food from light", 1},
    {"which game ends when a king cannot escape", 8},
};

}  // namespace

TEST(MiniLmDaemon, ServesWhatTheEncoderLibraryComputes) {
  const std::string model = strata::testing::cached_model_dir("all-minilm-l6-v2");
  if (model.empty())
    GTEST_SKIP() << "all-MiniLM-L6-v2 is not in the strata cache (run scripts/setup.sh, which "
                    "unpacks it into ~/.cache/strata/models/all-minilm-l6-v2)";
  const auto dir = temp_dir("minilm");
  {
    std::ofstream out(dir / "corpus.jsonl");
    for (size_t i = 0; i < kPassages.size(); ++i)
      out << nlohmann::json{{"id", "p" + std::to_string(i)}, {"contents", kPassages[i]}}.dump()
          << "\n";
  }
  ASSERT_EQ(
      run({kBin + "/build_index", "--dense", "--encoder", model, "--corpus",
           (dir / "corpus.jsonl").string(), "--out", (dir / "dense").string(), "--threads", "1"},
          dir / "build.log", 300),
      0)
      << read_bytes(dir / "build.log");
  Daemon d({"--index", (dir / "dense").string(), "--encoder", model}, dir);
  ASSERT_NE(d.port, 0) << read_bytes(dir / "daemon.log");

  nlohmann::json req = {{"queries", nlohmann::json::array()}, {"topk", 3}, {"return_scores", true}};
  for (const auto& [q, _] : kQuestions) req["queries"].push_back(q);
  const auto r = d.post(req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const auto result = nlohmann::json::parse(r.body)["result"];
  ASSERT_EQ(result.size(), kQuestions.size());

  // The same model in this process: exhaustive inner products over the ten passages.
  auto enc = strata::agent::TextEncoder::load(model, strata::agent::EncoderOptions{});
  const int dim = enc->dim();
  ASSERT_EQ(dim, 384);
  const auto pv = enc->encode_passages(kPassages);
  std::vector<std::string> questions;
  for (const auto& [q, _] : kQuestions) questions.push_back(q);
  const auto qv = enc->encode_queries(questions);
  for (size_t i = 0; i < kQuestions.size(); ++i) {
    std::vector<double> score(kPassages.size());
    for (size_t p = 0; p < kPassages.size(); ++p) {
      double s = 0;
      for (int k = 0; k < dim; ++k) s += double(qv[i * dim + k]) * pv[p * dim + k];
      score[p] = s;
    }
    std::vector<int> order(kPassages.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return score[a] > score[b]; });
    const auto& hits = result[i];
    ASSERT_EQ(hits.size(), 3u) << kQuestions[i].first;
    for (int rank = 0; rank < 3; ++rank) {
      EXPECT_EQ(hits[rank]["document"]["id"], "p" + std::to_string(order[rank]))
          << kQuestions[i].first << " at rank " << rank;
      EXPECT_NEAR(hits[rank]["score"].get<double>(), score[order[rank]], 1e-4)
          << kQuestions[i].first << " at rank " << rank;
    }
    EXPECT_EQ(hits[0]["document"]["id"], "p" + std::to_string(kQuestions[i].second))
        << "a paraphrase finds its passage first: " << kQuestions[i].first << " -> "
        << hits[0]["document"]["contents"];
  }
  fs::remove_all(dir);
}
