// Scoring mode on hand-checked predictions: the exact summary numbers, missing ids, and the
// errors for lines that do not fit the data.
#include "eval/predictions_file.h"

#include <gtest/gtest.h>

#include "eval/metrics.h"
#include "eval/report.h"
#include "tests/test_util.h"

namespace strata::eval {
namespace {

// Nine questions; each prediction below is checked by hand against SQuAD normalisation.
const char* kGold =
    R"({"id": "q1", "question": "Q1", "golden_answers": ["Eiffel Tower"]}
{"id": "q2", "question": "Q2", "golden_answers": ["Paris"]}
{"id": "q3", "question": "Q3", "golden_answers": ["United States", "USA", "U.S."]}
{"id": "q4", "question": "Q4", "golden_answers": ["George Washington"]}
{"id": "q5", "question": "Q5", "golden_answers": ["1998"]}
{"id": "q6", "question": "Q6", "golden_answers": ["blue whale"]}
{"id": "q7", "question": "Q7", "golden_answers": ["yes"]}
{"id": "q8", "question": "Q8", "golden_answers": ["Marie Curie"]}
{"id": "q9", "question": "Q9", "golden_answers": ["An Apple a Day"]}
)";

const char* kPredictions =
    R"({"id": "q1", "prediction": "the Eiffel tower.", "searches": 2}
{"id": "q2", "prediction": "PARIS!!", "searches": 1}
{"id": "q3", "prediction": "usa"}
{"id": "q4", "prediction": "Washington"}

{"id": "q5", "prediction": null}
{"id": "q6", "prediction": "It is the blue whale", "queries": ["largest animal"]}
{"id": "q7", "prediction": "no", "extra": "ignored"}
{"id": "q9", "prediction": "apple day"}
)";
// em:        q1 q2 q3 q9                         = 4/9
// f1:        1 1 1 2/3 0 2/3 0 0 1               = (4 + 4/3)/9
// cover_em:  q1 q2 q3 q6 q9                      = 5/9
// answered:  q1 q2 q3 q4 q6 q7 q9                = 7/9   (q5 null, q8 missing)
// searches:  2 + 1                               = 3/9

class PredictionsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_file(dir_.file("gold.jsonl"), kGold);
    testing::write_file(dir_.file("preds.jsonl"), kPredictions);
  }
  std::vector<Dataset> gold(int64_t limit = 0) const {
    return load_datasets({dir_.file("gold.jsonl")}, limit);
  }
  std::string fail_with(const std::string& lines, int64_t limit = 0) const {
    testing::write_file(dir_.file("bad.jsonl"), lines);
    return testing::error_of([&] { score_predictions_file(dir_.file("bad.jsonl"), gold(limit)); });
  }
  testing::TempDir dir_;
};

TEST_F(PredictionsFile, HandCheckedSummaryNumbers) {
  const auto scored = score_predictions_file(dir_.file("preds.jsonl"), gold());
  EXPECT_EQ(scored.lines, 8u);
  ASSERT_EQ(scored.missing, std::vector<std::string>{"gold/q8"});
  ASSERT_EQ(scored.predictions.size(), 9u);
  EXPECT_EQ(scored.predictions[7].id, "q8");  // gold order, not file order
  EXPECT_TRUE(scored.predictions[7].missing);
  EXPECT_EQ(scored.predictions[7].end_reason, "missing");
  EXPECT_EQ(scored.predictions[5].queries, std::vector<std::string>{"largest animal"});

  const auto j = summary_to_json(summarize(scored.predictions, {"gold"}));
  const auto expected = nlohmann::json::parse(R"({
    "overall": {"n": 9, "em": 44.4444, "f1": 59.2593, "cover_em": 55.5556, "searches": 0.3333,
                "answer_rate": 77.7778, "missing": 1},
    "datasets": {"gold": {"n": 9, "em": 44.4444, "f1": 59.2593, "cover_em": 55.5556,
                          "searches": 0.3333, "answer_rate": 77.7778, "missing": 1}}})");
  EXPECT_EQ(nlohmann::json::parse(j.dump()), expected) << j.dump(2);
}

TEST_F(PredictionsFile, ExtractAnswerTakesTheLastAnswerBlock) {
  testing::write_file(
      dir_.file("raw.jsonl"),
      R"({"id": "q2", "prediction": "<think>hm</think><answer>Rome</answer> <answer> paris </answer>"})"
      "\n");
  PredictionsFileOptions o;
  EXPECT_EQ(score_predictions_file(dir_.file("raw.jsonl"), gold(), o).predictions[1].em, 0);
  o.extract_answer = true;
  const auto p = score_predictions_file(dir_.file("raw.jsonl"), gold(), o).predictions[1];
  EXPECT_EQ(p.prediction, "paris");
  EXPECT_EQ(p.em, 1);
}

TEST_F(PredictionsFile, ErrorsNameFileAndLine) {
  const std::string bad = dir_.file("bad.jsonl");
  EXPECT_NE(
      fail_with(
          "{\"id\": \"q1\", \"prediction\": \"x\"}\n{\"id\": \"nope\", \"prediction\": \"x\"}\n")
          .find(bad + ":2: id \"nope\" is not in any --data file (gold)"),
      std::string::npos);
  EXPECT_NE(
      fail_with(
          "\n{\"id\": \"q1\", \"prediction\": \"x\"}\n{\"id\": \"q1\", \"prediction\": \"y\"}\n")
          .find(bad + ":3: a second prediction for id \"q1\" of gold (the first is on line 2)"),
      std::string::npos);
  EXPECT_NE(fail_with("{\"id\": \"q1\"}\n").find(bad + ":1: missing \"prediction\""),
            std::string::npos);
  EXPECT_NE(fail_with("{\"prediction\": \"x\"}\n").find(bad + ":1: missing \"id\""),
            std::string::npos);
  EXPECT_NE(
      fail_with("{\"id\": \"q1\", \"prediction\": 3}\n").find(bad + ":1: \"prediction\" must be"),
      std::string::npos);
  EXPECT_NE(fail_with("{\"id\": \"q1\", \"prediction\": \"x\"\n").find(bad + ":1: not valid JSON"),
            std::string::npos);
  EXPECT_NE(fail_with("[1]\n").find(bad + ":1: expected a JSON object"), std::string::npos);
  EXPECT_NE(fail_with("{\"id\": \"q1\", \"prediction\": \"x\", \"dataset\": \"other\"}\n")
                .find(bad + ":1: dataset \"other\" is not one of the --data files (gold)"),
            std::string::npos);
  EXPECT_NE(fail_with("{\"id\": \"q1\", \"prediction\": \"x\", \"searches\": -1}\n")
                .find(bad + ":1: \"searches\" must be a non-negative integer"),
            std::string::npos);
}

TEST_F(PredictionsFile, LinesBeyondTheLimitAreSkipped) {
  const auto scored = score_predictions_file(dir_.file("preds.jsonl"), gold(3));
  EXPECT_EQ(scored.predictions.size(), 3u);
  EXPECT_EQ(scored.lines, 3u);
  EXPECT_EQ(scored.beyond_limit, 5u);
  EXPECT_TRUE(scored.missing.empty());
}

TEST_F(PredictionsFile, AnIdInSeveralFilesNeedsADatasetField) {
  testing::write_file(dir_.file("other.jsonl"),
                      R"({"id": "q1", "question": "Q1 again", "golden_answers": ["Louvre"]})"
                      "\n");
  const auto both = load_datasets({dir_.file("gold.jsonl"), dir_.file("other.jsonl")});
  testing::write_file(dir_.file("amb.jsonl"), R"({"id": "q1", "prediction": "Louvre"})"
                                              "\n");
  EXPECT_NE(testing::error_of([&] {
              score_predictions_file(dir_.file("amb.jsonl"), both);
            }).find("id \"q1\" is in several --data files (gold, other): add a \"dataset\" field"),
            std::string::npos);
  testing::write_file(dir_.file("ok.jsonl"),
                      R"({"id": "q1", "prediction": "Louvre", "dataset": "other"})"
                      "\n");
  const auto scored = score_predictions_file(dir_.file("ok.jsonl"), both);
  ASSERT_EQ(scored.predictions.size(), 10u);
  EXPECT_EQ(scored.predictions[9].dataset, "other");
  EXPECT_EQ(scored.predictions[9].em, 1);
  EXPECT_EQ(scored.missing.size(), 9u);
}

TEST_F(PredictionsFile, DatasetsAreNamedByStemAndMustBeDistinct) {
  EXPECT_EQ(dataset_name("/a/b/hotpotqa_500.jsonl"), "hotpotqa_500");
  testing::write_file(dir_.file("sub/gold.jsonl"), "");
  std::filesystem::create_directories(dir_.file("sub"));
  testing::write_file(dir_.file("sub/gold.jsonl"), kGold);
  EXPECT_NE(testing::error_of([&] {
              load_datasets({dir_.file("gold.jsonl"), dir_.file("sub/gold.jsonl")});
            }).find("have the same name \"gold\""),
            std::string::npos);
  EXPECT_NE(
      testing::error_of([&] { load_datasets({dir_.file("absent.jsonl")}); }).find("no such file"),
      std::string::npos);
}

}  // namespace
}  // namespace strata::eval
