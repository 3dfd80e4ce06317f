// The evaluate program in scoring mode: outputs, exit codes and messages.
#include <gtest/gtest.h>

#include "tests/eval/eval_test_util.h"
#include "tests/test_util.h"

namespace strata::eval {
namespace {

using namespace strata::testing;

TEST(EvaluateCli, ScoresAPredictionsFileAgainstTwoFormats) {
  STRATA_REQUIRE_EVALUATE(exe);
  TempDir dir;
  // FlashRAG fixture (ids "nq_0", ...) and HotpotQA's original JSON (with type and level).
  write_file(dir.file("preds.jsonl"),
             R"({"id": "5a8b57f25542995d1e6f1371", "prediction": "Yes", "searches": 2}
{"id": "5a8c7595554299585d9e36b6", "prediction": "chief of protocol", "searches": 1}
)");
  const auto r = run_command(exe + " --predictions " + dir.file("preds.jsonl") + " --data " +
                             fixture("hotpot_original.json") + " --out " + dir.file("out"));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("| hotpot_original | 2 | 100.00 | 100.00 | 100.00 | 1.50 | 100.00 |"),
            std::string::npos)
      << r.output;
  const auto s = read_json(dir.file("out/summary.json"));
  EXPECT_EQ(s["overall"]["n"], 2);
  EXPECT_EQ(s["overall"]["em"], 100.0);
  EXPECT_EQ(s["datasets"]["hotpot_original"]["by_type"]["comparison"]["n"], 1);
  EXPECT_EQ(s["datasets"]["hotpot_original"]["by_type"]["bridge"]["searches"], 1.0);
  const auto lines = read_jsonl(dir.file("out/scored.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["type"], "comparison");
  EXPECT_EQ(read_json(dir.file("out/run.json"))["mode"], "predictions");
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/summary.md")));
}

TEST(EvaluateCli, MissingPredictionsAreReportedAndCountedWrong) {
  STRATA_REQUIRE_EVALUATE(exe);
  TempDir dir;
  write_file(dir.file("preds.jsonl"), R"({"id": "5a8b57f25542995d1e6f1371", "prediction": "yes"})"
                                      "\n");
  const auto r = run_command(exe + " --predictions " + dir.file("preds.jsonl") + " --data " +
                             fixture("hotpot_original.json") + " --out " + dir.file("out"));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("1 gold question(s) have no prediction and count as wrong: "
                          "hotpot_original/5a8c7595554299585d9e36b6"),
            std::string::npos)
      << r.output;
  const auto s = read_json(dir.file("out/summary.json"));
  EXPECT_EQ(s["overall"]["em"], 50.0);
  EXPECT_EQ(s["overall"]["missing"], 1);
}

TEST(EvaluateCli, BadInputExitsWithTwoAndNamesTheProblem) {
  STRATA_REQUIRE_EVALUATE(exe);
  TempDir dir;
  write_file(dir.file("preds.jsonl"),
             "{\"id\": \"5a8b57f25542995d1e6f1371\", \"prediction\": \"x\"}\n"
             "{\"id\": \"not-there\", \"prediction\": \"x\"}\n");
  const std::string data = " --data " + fixture("hotpot_original.json");
  auto r = run_command(exe + " --predictions " + dir.file("preds.jsonl") + data + " --out " +
                       dir.file("o"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(
      r.output.find(dir.file("preds.jsonl") + ":2: id \"not-there\" is not in any --data file"),
      std::string::npos)
      << r.output;

  r = run_command(exe + data + " --out " + dir.file("o"));  // no mode
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("give exactly one of --model DIR, --endpoint URL or --predictions FILE"),
            std::string::npos);
  r = run_command(exe + " --predictions " + dir.file("preds.jsonl") + " --out " + dir.file("o"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("give at least one --data FILE"), std::string::npos);
  r = run_command(exe + " --predictions " + dir.file("absent.jsonl") + data + " --out " +
                  dir.file("o"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("absent.jsonl"), std::string::npos);
  r = run_command(exe + " --no-such-flag");
  EXPECT_EQ(r.rc, 2);
  write_file(dir.file("broken.jsonl"),
             "{\"id\": \"a\", \"question\": \"q\", \"golden_answers\": [\"x\"]}\n{oops\n");
  r = run_command(exe + " --predictions " + dir.file("preds.jsonl") + " --data " +
                  dir.file("broken.jsonl") + " --out " + dir.file("o"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find(dir.file("broken.jsonl") + ":2"), std::string::npos) << r.output;
  r = run_command(exe + " --endpoint http://127.0.0.1:9" + data + " --out " + dir.file("o"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("--endpoint needs --endpoint-model NAME"), std::string::npos);
  r = run_command(exe + " --model /x --set env.max_turns=0" + data + " --out " + dir.file("o"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("env.max_turns"), std::string::npos) << r.output;
}

TEST(EvaluateCli, HelpExplainsTheModesAndPrintConfigShowsGreedyDefaults) {
  STRATA_REQUIRE_EVALUATE(exe);
  auto r = run_command(exe + " --help");
  EXPECT_EQ(r.rc, 0);
  for (const char* s : {"--model", "--endpoint", "--predictions", "--retriever", "summary.json",
                        "predictions.jsonl", "Exit codes"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
  r = run_command(exe + " --model x --print-config --set env.topk=5 --max-turns 2");
  ASSERT_EQ(r.rc, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["temperature"], 0.0);
  EXPECT_EQ(j["samples_per_prompt"], 1);
  EXPECT_EQ(j["env"]["topk"], 5);
  EXPECT_EQ(j["env"]["max_turns"], 2);
}

TEST(EvaluateCli, EvalScriptTakesTheQaFilesOfAFolderAndSkipsTheCorpus) {
  STRATA_REQUIRE_EVALUATE(exe);
  STRATA_REQUIRE_SHARED(real);
  TempDir dir;
  // The first two questions of each file answered right (R1-Searcher ids collide across files,
  // hence "dataset").
  write_file(dir.file("preds.jsonl"),
             R"({"id": 1, "dataset": "hotpotqa_500", "prediction": "Kauffman Stadium"}
{"id": 1, "dataset": "2wiki_500", "prediction": "Tetisheri"}
{"id": "test_0", "dataset": "nq_test_17", "prediction": "Wilhelm Conrad Röntgen"}
)");
  const std::string build_dir = std::filesystem::path(STRATA_BIN_DIR).parent_path().string();
  const auto r =
      run_command("STRATA_BUILD_DIR='" + build_dir + "' " + std::string(STRATA_SOURCE_DIR) +
                  "/scripts/eval.sh " + real + " --predictions " + dir.file("preds.jsonl") +
                  " --limit 2 --out " + dir.file("out"));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("skipping " + real + "/wiki18_sample_1000.jsonl"), std::string::npos)
      << r.output;
  for (const char* row : {"| 2wiki_500 | 2 | 50.00 |", "| hotpotqa_500 | 2 | 50.00 |",
                          "| nq_test_17 | 2 | 50.00 |", "| **overall** | 6 | 50.00 |"})
    EXPECT_NE(r.output.find(row), std::string::npos) << row << "\n" << r.output;
}

}  // namespace
}  // namespace strata::eval
