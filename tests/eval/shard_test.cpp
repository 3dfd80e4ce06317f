// Sharded evaluation: three shards of a scoring run (two by --shard, one by torchrun's
// RANK/WORLD_SIZE), merged with --merge, give byte for byte the files of the unsharded run; the
// merge refuses a missing shard, and --shard refuses a shard that does not exist.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/eval/eval_test_util.h"
#include "tests/test_util.h"

namespace strata::eval {
namespace {

using namespace strata::testing;

// Two data files (7 and 4 questions, with hops and type) and predictions for them: right, wrong,
// partly right (fractional F1) and missing ones.
void write_inputs(TempDir& dir) {
  std::string a, b, preds;
  const char* answers[] = {"Paris", "Berlin", "Rome", "Madrid", "Lisbon", "Vienna", "Oslo"};
  for (int i = 0; i < 7; ++i) {
    a += "{\"id\": \"a" + std::to_string(i) + "\", \"question\": \"capital number " + std::to_string(i) +
         "\", \"golden_answers\": [\"" + answers[i] + " city\"], \"hops\": " + std::to_string(i % 3) +
         ", \"type\": \"" + (i % 2 ? "bridge" : "single") + "\"}\n";
    if (i != 4)
      preds += "{\"id\": \"a" + std::to_string(i) + "\", \"dataset\": \"set_a\", \"prediction\": \"" +
               (i % 3 == 0 ? std::string(answers[i]) + " city" : i % 3 == 1 ? std::string(answers[i]) : "no idea") +
               "\", \"searches\": " + std::to_string(i % 4) + "}\n";
  }
  for (int i = 0; i < 4; ++i) {
    b += "{\"id\": \"b" + std::to_string(i) + "\", \"question\": \"who " + std::to_string(i) +
         "\", \"golden_answers\": [\"the person " + std::to_string(i) + "\"]}\n";
    preds += "{\"id\": \"b" + std::to_string(i) + "\", \"dataset\": \"set_b\", \"prediction\": \"" +
             (i < 3 ? "person " + std::to_string(i) : std::string("")) + "\"}\n";
  }
  write_file(dir.file("set_a.jsonl"), a);
  write_file(dir.file("set_b.jsonl"), b);
  write_file(dir.file("preds.jsonl"), preds);
}

TEST(EvaluateShard, ThreeShardsMergedEqualTheUnshardedRun) {
  STRATA_REQUIRE_EVALUATE(exe);
  TempDir dir;
  write_inputs(dir);
  const std::string common = exe + " --predictions " + dir.file("preds.jsonl") + " --data " +
                             dir.file("set_a.jsonl") + " --data " + dir.file("set_b.jsonl");
  auto r = run_command(common + " --out " + dir.file("whole"));
  ASSERT_EQ(r.rc, 0) << r.output;
  for (int i = 0; i < 2; ++i) {
    r = run_command(common + " --shard " + std::to_string(i) + "/3 --out " + dir.file("sharded"));
    ASSERT_EQ(r.rc, 0) << r.output;
  }
  // The third as one rank of torchrun would run it.
  r = run_command("RANK=2 WORLD_SIZE=3 " + common + " --out " + dir.file("sharded"));
  ASSERT_EQ(r.rc, 0) << r.output;
  // Shard 1 of 3 holds questions 1 and 4 of set_a (4 has no prediction) and 1 of set_b.
  const auto s1 = read_json(dir.file("sharded/shard-1-of-3/summary.json"));
  EXPECT_EQ(s1["datasets"]["set_a"]["n"], 2);
  EXPECT_EQ(s1["datasets"]["set_a"]["missing"], 1);
  EXPECT_EQ(s1["datasets"]["set_b"]["n"], 1);
  const auto run2 = read_json(dir.file("sharded/shard-2-of-3/run.json"));
  EXPECT_EQ(run2["shard"]["index"], 2);
  EXPECT_EQ(run2["shard"]["count"], 3);
  EXPECT_EQ(run2["data"][0]["total_questions"], 7);

  r = run_command(exe + " --merge " + dir.file("sharded"));
  ASSERT_EQ(r.rc, 0) << r.output;
  for (const char* f : {"summary.json", "summary.md", "scored.jsonl"})
    EXPECT_EQ(read_file(dir.file(std::string("sharded/") + f)), read_file(dir.file(std::string("whole/") + f)))
        << f;
  const auto merged = read_json(dir.file("sharded/run.json"));
  EXPECT_EQ(merged["data"], read_json(dir.file("whole/run.json"))["data"]);
  EXPECT_EQ(merged["merged_from"].size(), 3u);
  EXPECT_FALSE(merged.contains("shard"));
  // The summary is not trivial: partial F1, a missing question, hops and type groups.
  const auto whole = read_json(dir.file("whole/summary.json"));
  EXPECT_EQ(whole["overall"]["missing"], 1);
  EXPECT_EQ(whole["datasets"]["set_a"]["by_hops"].size(), 3u);
}

TEST(EvaluateShard, MergeRefusesMissingShardsAndBadSpecs) {
  STRATA_REQUIRE_EVALUATE(exe);
  TempDir dir;
  write_inputs(dir);
  const std::string common = exe + " --predictions " + dir.file("preds.jsonl") + " --data " +
                             dir.file("set_a.jsonl") + " --data " + dir.file("set_b.jsonl");
  for (int i : {0, 2}) {
    const auto r = run_command(common + " --shard " + std::to_string(i) + "/3 --out " + dir.file("s"));
    ASSERT_EQ(r.rc, 0) << r.output;
  }
  auto r = run_command(exe + " --merge " + dir.file("s"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("--merge: shard(s) 1 of 3 are missing (found 2 of 3)"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("s/summary.json")));
  // A damaged shard: a prediction line lost.
  r = run_command(common + " --shard 1/3 --out " + dir.file("s"));
  ASSERT_EQ(r.rc, 0) << r.output;
  write_file(dir.file("s/shard-1-of-3/scored.jsonl"), "");
  r = run_command(exe + " --merge " + dir.file("s"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("0 predictions of set_a, expected 2"), std::string::npos) << r.output;

  r = run_command(common + " --shard 3/3 --out " + dir.file("t"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("--shard: shard 3 of 3 does not exist"), std::string::npos) << r.output;
  r = run_command(common + " --shard half --out " + dir.file("t"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("--shard: expected I/N"), std::string::npos) << r.output;
  r = run_command("WORLD_SIZE=2 " + common + " --out " + dir.file("t"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("WORLD_SIZE is set (2) but RANK is not"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace strata::eval
