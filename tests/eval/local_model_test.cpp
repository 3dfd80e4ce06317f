// evaluate --model end to end with a tiny random policy on a small built-in world: a real BM25
// daemon on loopback, a tokenizer trained on the world, greedy rollouts. The policy is untrained,
// so this checks the files and their fields, not the scores.
#include <gtest/gtest.h>

#include <memory>

#include "env/world/world.h"
#include "tests/eval/eval_test_util.h"
#include "tests/loopback_daemon.h"
#include "tests/test_util.h"

namespace strata::eval {
namespace {

using namespace strata::testing;

TEST(LocalModelEval, WritesPredictionsAndSummaryWithHopsAndTypes) {
  setenv("STRATA_NO_PROGRESS", "1", 1);
  STRATA_REQUIRE_EVALUATE(exe);
  TempDir dir;
  env::WorldOptions w;
  w.seed = 5;
  w.entities = 300;
  w.train = 60;
  w.dev = 10;
  w.test = 10;
  env::write_world(w, dir.file("world"));
  LoopbackDaemon daemon(dir.file("world/corpus.jsonl"), dir.file("index"));

  auto r = run_command(bin("train_tokenizer") + " --input " + dir.file("world/corpus.jsonl") +
                       " --vocab-size 400 --out " + dir.file("tiny/tokenizer.json") +
                       " --log-level warn");
  ASSERT_EQ(r.rc, 0) << r.output;
  r = run_command(bin("make_tiny_model") + " --tokenizer " + dir.file("tiny") + " --out " +
                  dir.file("tiny") + " --hidden 32 --layers 1 --heads 2 --kv-heads 1 --seed 3");
  ASSERT_EQ(r.rc, 0) << r.output;

  r = run_command(
      exe + " --model " + dir.file("tiny") + " --data " + dir.file("world/test.jsonl") +
      " --data " + dir.file("world/dev.jsonl") + " --limit 5 --retriever " +
      daemon.url() + " --out " + dir.file("out") +
      " --threads 1 --max-turns 2 --max-turn-tokens 24 --max-obs-tokens 60 --max-batch 4"
      " --set env.max_response_tokens=200 --set max_seq_len=768");
  daemon.stop();
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("| test | 5 |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| dev | 5 |"), std::string::npos) << r.output;

  const auto lines = read_jsonl(dir.file("out/predictions.jsonl"));
  ASSERT_EQ(lines.size(), 10u);  // 5 + 5
  for (const auto& p : lines) {
    for (const char* k :
         {"id", "dataset", "question", "golden_answers", "prediction", "em", "f1", "cover_em",
          "searches", "queries", "hops", "type", "end_reason", "trajectory"})
      EXPECT_TRUE(p.contains(k)) << k << " missing in " << p.dump();
    EXPECT_FALSE(p["trajectory"].get<std::string>().empty());
    EXPECT_EQ(p["queries"].size(), p["searches"].get<size_t>());
    // No answer block of its own, no prediction (the feedback text's "<answer> and </answer>"
    // does not count).
    if (p["end_reason"] != "answered") {
      EXPECT_EQ(p["prediction"], "") << p.dump();
    }
  }
  EXPECT_EQ(lines[0]["id"], "test_0");
  EXPECT_EQ(lines[5]["dataset"], "dev");

  const auto s = read_json(dir.file("out/summary.json"));
  EXPECT_EQ(s["overall"]["n"], 10);
  EXPECT_EQ(s["datasets"]["test"]["n"], 5);
  EXPECT_TRUE(s["datasets"]["test"].contains("by_hops"));
  EXPECT_TRUE(s["datasets"]["test"].contains("by_type"));
  int64_t by_hops_n = 0;
  for (const auto& [k, a] : s["datasets"]["test"]["by_hops"].items())
    by_hops_n += a["n"].get<int64_t>();
  EXPECT_EQ(by_hops_n, 5);
  const auto run = read_json(dir.file("out/run.json"));
  EXPECT_EQ(run["mode"], "model");
  EXPECT_EQ(run["rollout"]["temperature"], 0.0);
  EXPECT_EQ(run["rollout"]["env"]["max_turns"], 2);
}

}  // namespace
}  // namespace strata::eval
