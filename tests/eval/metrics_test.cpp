// Scoring one prediction (the rewards' answer matching), aggregating, and the summary files.
#include "eval/metrics.h"

#include <gtest/gtest.h>

#include "eval/prediction.h"
#include "eval/report.h"
#include "tests/test_util.h"

namespace strata::eval {
namespace {

data::QaRecord record(const std::string& id, std::vector<std::string> golds,
                      nlohmann::json metadata = nlohmann::json::object()) {
  data::QaRecord r;
  r.id = id;
  r.question = "question " + id;
  r.golden_answers = std::move(golds);
  r.metadata = std::move(metadata);
  return r;
}

TEST(EvalScore, ArticlesPunctuationAndCaseAreNormalisedAway) {
  const auto p = make_prediction(record("1", {"Eiffel Tower"}), "d", "the eiffel TOWER.");
  EXPECT_EQ(p.em, 1);
  EXPECT_EQ(p.f1, 1);
  EXPECT_EQ(p.cover_em, 1);
  EXPECT_EQ(make_prediction(record("2", {"An Apple a Day"}), "d", "apple, day!").em, 1);
}

TEST(EvalScore, AnyGoldAnswerCounts) {
  const auto rec = record("1", {"United States", "USA", "U.S."});
  EXPECT_EQ(make_prediction(rec, "d", "usa").em, 1);
  EXPECT_EQ(make_prediction(rec, "d", "the united states").em, 1);
  EXPECT_EQ(make_prediction(rec, "d", "US").em, 1);  // "U.S." normalises to "us"
  EXPECT_EQ(make_prediction(rec, "d", "Canada").em, 0);
}

TEST(EvalScore, PartialAnswersGetF1AndCoverEm) {
  const auto part = make_prediction(record("1", {"George Washington"}), "d", "Washington");
  EXPECT_EQ(part.em, 0);
  EXPECT_NEAR(part.f1, 2.0 / 3.0, 1e-12);  // precision 1, recall 1/2
  EXPECT_EQ(part.cover_em, 0);
  const auto cover = make_prediction(record("2", {"blue whale"}), "d", "It is the blue whale");
  EXPECT_EQ(cover.em, 0);
  EXPECT_NEAR(cover.f1, 2.0 / 3.0, 1e-12);  // "it is blue whale": precision 1/2, recall 1
  EXPECT_EQ(cover.cover_em, 1);
}

TEST(EvalScore, EmptyPredictionIsWrongAndYesNoMismatchHasNoF1) {
  const auto empty = make_prediction(record("1", {"1998"}), "d", "");
  EXPECT_EQ(empty.em + empty.f1 + empty.cover_em, 0);
  const auto yn = make_prediction(record("2", {"yes"}), "d", "no");
  EXPECT_EQ(yn.em + yn.f1 + yn.cover_em, 0);
}

TEST(EvalScore, HopsAndTypeComeFromTheRecord) {
  const auto p = make_prediction(record("1", {"x"}, {{"hops", 2}, {"type", "bridge"}}), "w", "x");
  ASSERT_TRUE(p.hops.has_value());
  EXPECT_EQ(*p.hops, 2);
  EXPECT_EQ(p.type, "bridge");
  const auto j = to_json(p);
  EXPECT_EQ(j["hops"], 2);
  EXPECT_EQ(j["type"], "bridge");
  EXPECT_EQ(j["dataset"], "w");
  const auto bare = to_json(make_prediction(record("2", {"x"}), "w", "y"));
  EXPECT_FALSE(bare.contains("hops"));
  EXPECT_FALSE(bare.contains("type"));
  EXPECT_FALSE(bare.contains("error"));
}

TEST(EvalScore, TheAnswerComesFromThePolicysOwnText) {
  // The invalid-action feedback mentions "<answer> and </answer>": it must not become an answer.
  const std::vector<std::pair<std::string, bool>> no_answer = {
      {"I think", true},
      {"\nTo answer I must write it between <answer> and </answer>.\n", false},
      {"still thinking", true}};
  EXPECT_EQ(policy_answer(no_answer), "");
  const std::vector<std::pair<std::string, bool>> answered = {
      {"<search> q </search>", true},
      {"<information>Doc 1 <answer>doc</answer></information>", false},
      {"<answer> Paris </answer>", true}};
  EXPECT_EQ(policy_answer(answered), "Paris");
}

TEST(EvalSummary, PercentagesAreExactAndGroupsSplitByHopsAndType) {
  std::vector<Prediction> preds;
  auto add = [&](const std::string& ds, const std::string& answer, int hops, const char* type,
                 int searches) {
    auto p = make_prediction(
        record(std::to_string(preds.size()), {"gold"}, {{"hops", hops}, {"type", type}}), ds,
        answer);
    p.searches = searches;
    preds.push_back(p);
  };
  add("a", "gold", 1, "single", 1);
  add("a", "gold", 2, "bridge", 2);
  add("a", "", 2, "bridge", 0);
  add("a", "wrong", 2, "comparison", 3);
  add("a", "the gold", 1, "single", 1);
  add("b", "gold", 0, "common", 0);
  const auto s = summarize(preds, {"b", "a"});
  ASSERT_EQ(s.datasets.size(), 2u);
  EXPECT_EQ(s.datasets[0].first, "b");  // --data order
  const auto& a = s.datasets[1].second;
  EXPECT_EQ(a.all.n, 5);
  EXPECT_EQ(a.all.em, 60.0);  // 3 of 5, exactly
  EXPECT_EQ(a.all.searches, 7.0 / 5.0);
  EXPECT_EQ(a.all.answer_rate, 80.0);
  EXPECT_EQ(a.by_hops.at(2).n, 3);
  EXPECT_NEAR(a.by_hops.at(2).em, 100.0 / 3.0, 1e-12);
  EXPECT_EQ(a.by_type.at("single").em, 100.0);
  EXPECT_EQ(s.overall.all.n, 6);
  EXPECT_NEAR(s.overall.all.em, 400.0 / 6.0, 1e-12);

  const auto j = summary_to_json(s);
  EXPECT_EQ(j["overall"]["em"], 66.6667);  // rounded to 4 decimals
  EXPECT_EQ(j["datasets"]["a"]["by_hops"]["2"]["em"], 33.3333);
  EXPECT_EQ(j["datasets"]["a"]["by_type"]["comparison"]["n"], 1);
  EXPECT_FALSE(j["overall"].contains("by_hops"));
  const auto md = summary_markdown(s);
  EXPECT_NE(md.find("| a | 5 | 60.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| a · hops=2 | 3 | 33.33 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **overall** | 6 | 66.67 |"), std::string::npos) << md;
}

TEST(EvalSummary, WritesBothFiles) {
  testing::TempDir dir;
  std::vector<Prediction> preds = {make_prediction(record("1", {"x"}), "d", "x")};
  write_summary(dir.file("out"), summarize(preds, {"d"}));
  EXPECT_NE(testing::read_file(dir.file("out/summary.json")).find("\"em\": 100.0"),
            std::string::npos);
  EXPECT_NE(testing::read_file(dir.file("out/summary.md")).find("| d | 1 | 100.00 |"),
            std::string::npos);
  PredictionWriter w(dir.file("out/p.jsonl"));
  auto bad = preds[0];
  bad.trajectory = std::string("cut \xE2\x82", 6);  // a UTF-8 character cut in two
  w.write(bad);
  EXPECT_EQ(w.written(), 1u);
  EXPECT_NE(testing::read_file(dir.file("out/p.jsonl")).find("\"trajectory\":\"cut"),
            std::string::npos);
}

}  // namespace
}  // namespace strata::eval
