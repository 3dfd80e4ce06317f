#include "env/reward.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "env/answer_match.h"

namespace strata::env {
namespace {

TEST(AnswerMatch, SquadNormalisation) {
  EXPECT_EQ(normalize_answer("The  Eiffel Tower!"), "eiffel tower");
  EXPECT_EQ(normalize_answer("  A cat, an owl & THE dog. "), "cat owl dog");
  EXPECT_EQ(normalize_answer("theatre"), "theatre");  // articles only as whole words
  EXPECT_EQ(normalize_answer("Wilhelm Conrad R\xC3\x96NTGEN"), "wilhelm conrad r\xC3\xB6ntgen");
  EXPECT_EQ(normalize_answer("3,000"), "3000");
  EXPECT_EQ(normalize_answer(""), "");
}

TEST(AnswerMatch, ExactAndCoverMatch) {
  const std::vector<std::string> golds = {"Wilhelm Conrad R\xC3\xB6ntgen", "Roentgen"};
  EXPECT_EQ(exact_match("wilhelm conrad r\xC3\xB6ntgen.", golds), 1.0);
  EXPECT_EQ(exact_match("the Roentgen", golds), 1.0);
  EXPECT_EQ(exact_match("Conrad", golds), 0.0);
  EXPECT_EQ(cover_exact_match("It was Roentgen, in 1901", golds), 1.0);
  EXPECT_EQ(cover_exact_match("Roentgenium", golds), 0.0);  // whole words only
  EXPECT_EQ(cover_exact_match("", golds), 0.0);
}

TEST(AnswerMatch, F1) {
  // pred tokens {new, york, city}, gold {new, york}: P = 2/3, R = 1, F1 = 0.8.
  EXPECT_NEAR(f1_score("New York City", {"New York"}), 0.8, 1e-12);
  EXPECT_NEAR(f1_score("Paris", {"London", "Paris"}), 1.0, 1e-12);
  EXPECT_EQ(f1_score("Berlin", {"Paris"}), 0.0);
  // Each token counts as often as it occurs on both sides: common = {red, blue}, P = R = 2/3.
  EXPECT_NEAR(f1_score("red red blue", {"red blue blue"}), 2.0 / 3.0, 1e-12);
  // HotpotQA rule: yes/no only match themselves.
  EXPECT_EQ(f1_score("yes", {"no"}), 0.0);
  EXPECT_EQ(f1_score("yes it is", {"yes"}), 0.0);
  EXPECT_EQ(f1_score("yes", {"yes"}), 1.0);
}

TEST(AnswerMatch, ExtractsTheLastCompleteAnswer) {
  EXPECT_EQ(extract_answer("<answer> first </answer> then <answer>second</answer>"), "second");
  EXPECT_EQ(extract_answer("<think>x</think>\n<answer>\n Paris \n</answer>"), "Paris");
  EXPECT_FALSE(extract_answer("<answer>never closed").has_value());
  EXPECT_FALSE(extract_answer("no tags at all").has_value());
  EXPECT_EQ(extract_answer("<answer></answer>"), "");
}

TEST(AnswerMatch, ProtocolFormat) {
  EXPECT_TRUE(valid_format("<think>a</think><answer>b</answer>"));
  EXPECT_TRUE(valid_format("<answer>b</answer>\n"));
  EXPECT_TRUE(valid_format(
      "<think>need to look</think>\n<search> q </search>\n\n<information>Doc 1(Title: T) x"
      "</information>\n\n<think>ok</think>\n<search>q2</search><information>y</information>"
      "<answer>z</answer>"));
  EXPECT_FALSE(valid_format("<think>a</think>"));                        // no answer
  EXPECT_FALSE(valid_format("<search>q</search><answer>b</answer>"));    // search w/o information
  EXPECT_FALSE(valid_format("text before <answer>b</answer>"));          // stray text
  EXPECT_FALSE(valid_format("<answer>b</answer><answer>c</answer>"));    // two answers
  EXPECT_FALSE(valid_format("<think>a<search>q</search></think><answer>b</answer>"));  // nesting
  EXPECT_FALSE(valid_format("<think>a</think><answer>b"));               // left open
  EXPECT_FALSE(valid_format("<information>x</information><answer>b</answer>"));  // info first
  EXPECT_FALSE(valid_format(""));
}

TEST(Reward, ComponentsAndConfiguredReward) {
  const std::vector<std::string> golds = {"Port Walonei"};
  RewardOptions em;
  const auto r = score_response("<think>t</think><answer>port walonei</answer>", golds, em);
  EXPECT_EQ(r.reward, 1.0);
  EXPECT_EQ(r.em, 1.0);
  EXPECT_EQ(r.f1, 1.0);
  EXPECT_EQ(r.cover_em, 1.0);
  EXPECT_TRUE(r.has_answer);
  EXPECT_TRUE(r.format_valid);
  EXPECT_EQ(r.answer, "port walonei");

  RewardOptions f1;
  f1.name = "f1";
  EXPECT_NEAR(score_response("<answer>Walonei</answer>", golds, f1).reward, 2.0 / 3.0, 1e-12);
  RewardOptions cover;
  cover.name = "cover_em";
  EXPECT_EQ(score_response("<answer>in Port Walonei, I think</answer>", golds, cover).reward, 1.0);
  EXPECT_EQ(score_response("Port Walonei", golds, em).reward, 0.0);  // no answer block
}

TEST(Reward, FormatAwareTable) {
  const std::vector<std::string> golds = {"1987"};
  RewardOptions o;
  o.name = "format_em";
  EXPECT_EQ(score_response("<think>t</think><answer>1987</answer>", golds, o).reward, 1.0);
  EXPECT_EQ(score_response("hmm <answer>1987</answer>", golds, o).reward, 0.8);
  EXPECT_EQ(score_response("<think>t</think><answer>1990</answer>", golds, o).reward, 0.2);
  EXPECT_EQ(score_response("hmm <answer>1990</answer>", golds, o).reward, 0.1);
  EXPECT_EQ(score_response("no idea", golds, o).reward, 0.0);
}

TEST(Reward, UnknownNameIsAnError) {
  RewardOptions o;
  o.name = "bleu";
  EXPECT_THROW(o.validate(), Error);
}

}  // namespace
}  // namespace strata::env
