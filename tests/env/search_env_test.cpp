#include "env/search_env.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/test_util.h"

namespace strata::env {
namespace {

std::vector<int32_t> enc(std::string_view s) { return testing::byte_encode(s); }
std::string dec(const std::vector<int32_t>& ids) { return testing::byte_decode(ids); }

data::QaRecord question() {
  data::QaRecord q;
  q.id = "q1";
  q.question = "Where was Kreimex Setofa born?";
  q.golden_answers = {"Port Walonei"};
  return q;
}

// A scripted policy turn: its text as ids, with log-prob -0.5 for every token.
struct Turn {
  std::vector<int32_t> ids;
  std::vector<float> lps;
};
Turn turn(const std::string& text) {
  Turn t{enc(text), {}};
  t.lps.assign(t.ids.size(), -0.5f);
  return t;
}

std::vector<RetrievedDoc> docs() {
  return {{"2", "\"Kreimex Setofa\"\nKreimex Setofa was born in Port Walonei in 1968."},
          {"7", "\"Kreimex Setafa\"\nKreimex Setafa was born in Dunmor."}};
}

TEST(SearchEnv, ParsesActions) {
  EXPECT_EQ(parse_action("<think>x</think><search> who </search>").kind, Action::kSearch);
  EXPECT_EQ(parse_action("<think>x</think><search> who </search>").payload, "who");
  EXPECT_EQ(parse_action("<answer> Paris </answer>").payload, "Paris");
  EXPECT_EQ(parse_action("<answer>A</answer><search>q</search>").kind, Action::kAnswer);
  EXPECT_EQ(parse_action("<search>  </search>").kind, Action::kInvalid);   // empty query
  EXPECT_EQ(parse_action("I think it is Paris.").kind, Action::kInvalid);
  EXPECT_EQ(parse_action("query</search>").kind, Action::kInvalid);        // no opening tag
}

TEST(SearchEnv, InformationFormatIsSearchR1s) {
  EXPECT_EQ(format_information(docs()),
            "\n\n<information>Doc 1(Title: \"Kreimex Setofa\") Kreimex Setofa was born in Port "
            "Walonei in 1968.\nDoc 2(Title: \"Kreimex Setafa\") Kreimex Setafa was born in "
            "Dunmor.\n</information>\n\n");
}

TEST(SearchEnv, SearchThenAnswerMasksExactlyTheObservation) {
  SearchEnvOptions o;
  Episode ep(o, question(), enc, dec);
  EXPECT_NE(ep.prompt_text().find("Question: Where was Kreimex Setofa born?"), std::string::npos);
  const auto t1 = turn("<think>look it up</think><search>Kreimex Setofa birthplace</search>");
  auto s = ep.on_generation(t1.ids, t1.lps, TurnFinish::kStopSequence);
  ASSERT_EQ(s.kind, Episode::StepKind::kSearch);
  EXPECT_EQ(s.query, "Kreimex Setofa birthplace");
  ep.on_retrieval(docs(), 12.5, 1);
  const auto obs = ep.take_pending_observation();
  EXPECT_EQ(dec(obs), format_information(docs()));
  EXPECT_TRUE(ep.take_pending_observation().empty());
  const auto t2 = turn("<think>found</think><answer>Port Walonei</answer>");
  s = ep.on_generation(t2.ids, t2.lps, TurnFinish::kStopSequence);
  EXPECT_EQ(s.kind, Episode::StepKind::kDone);
  EXPECT_EQ(ep.end_reason(), EndReason::kAnswered);

  // Mask: 1 over both policy turns, 0 over exactly the observation.
  const size_t n1 = t1.ids.size(), n2 = t2.ids.size(), no = obs.size();
  ASSERT_EQ(ep.response_ids().size(), n1 + no + n2);
  for (size_t i = 0; i < ep.loss_mask().size(); ++i) {
    const bool in_obs = i >= n1 && i < n1 + no;
    EXPECT_EQ(ep.loss_mask()[i], in_obs ? 0 : 1) << "token " << i;
    EXPECT_FLOAT_EQ(ep.logprobs()[i], in_obs ? 0.0f : -0.5f);
  }
  EXPECT_EQ(ep.num_searches(), 1);
  EXPECT_TRUE(ep.gold_retrieved());
  ASSERT_EQ(ep.turns().size(), 2u);
  EXPECT_EQ(ep.turns()[0].doc_ids, (std::vector<std::string>{"2", "7"}));
  EXPECT_DOUBLE_EQ(ep.turns()[0].retrieval_ms, 12.5);
  const auto r = ep.score();
  EXPECT_EQ(r.em, 1.0);
  EXPECT_TRUE(r.format_valid);
  const auto segs = ep.segments();
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_TRUE(segs[0].second);
  EXPECT_FALSE(segs[1].second);
  EXPECT_EQ(segs[1].first, format_information(docs()));
}

TEST(SearchEnv, InvalidTurnGetsMaskedFeedbackAndCounts) {
  SearchEnvOptions o;
  o.max_turns = 2;
  Episode ep(o, question(), enc, dec);
  const auto t1 = turn("I am not sure what to do.");
  auto s = ep.on_generation(t1.ids, t1.lps, TurnFinish::kEos);
  ASSERT_EQ(s.kind, Episode::StepKind::kContinue);
  EXPECT_EQ(dec(ep.take_pending_observation()), o.invalid_feedback);
  EXPECT_EQ(ep.turns()[0].action, Action::kInvalid);
  // The second (last) turn also fails: the episode ends on max_turns.
  s = ep.on_generation(t1.ids, t1.lps, TurnFinish::kMaxTokens);
  EXPECT_EQ(s.kind, Episode::StepKind::kDone);
  EXPECT_EQ(ep.end_reason(), EndReason::kMaxTurns);
  EXPECT_EQ(ep.score().reward, 0.0);
}

// The feedback after an invalid turn mentions "<answer> and </answer>", and retrieved text may hold
// answer tags too: neither is the agent's answer.
TEST(SearchEnv, OnlyThePolicysOwnTextIsScored) {
  SearchEnvOptions o;
  o.max_turns = 3;
  o.reward.name = "format_em";
  Episode ep(o, question(), enc, dec);
  const auto t1 = turn("I am not sure what to do.");
  ep.on_generation(t1.ids, t1.lps, TurnFinish::kEos);
  (void)ep.take_pending_observation();
  const auto t2 = turn("<think>x</think><search>Kreimex Setofa</search>");
  auto s = ep.on_generation(t2.ids, t2.lps, TurnFinish::kStopSequence);
  ASSERT_EQ(s.kind, Episode::StepKind::kSearch);
  ep.on_retrieval({{"9", "\"Quiz\"\nThe reply was <answer> Port Walonei </answer> in 1968."}}, 1.0, 1);
  (void)ep.take_pending_observation();
  const auto t3 = turn("<think>still unsure</think>");
  ep.on_generation(t3.ids, t3.lps, TurnFinish::kEos);
  ASSERT_TRUE(ep.done());
  EXPECT_NE(ep.response_text().find("<answer> and </answer>"), std::string::npos);
  const auto r = ep.score();
  EXPECT_FALSE(r.has_answer);
  EXPECT_EQ(r.answer, "");
  EXPECT_EQ(r.em, 0.0);
  EXPECT_EQ(r.reward, 0.0);  // format_em gives a wrong-but-answered trajectory 0.1; this one has none
}

TEST(SearchEnv, SearchOnTheLastTurnEndsWithoutRetrieval) {
  SearchEnvOptions o;
  o.max_turns = 1;
  Episode ep(o, question(), enc, dec);
  const auto t = turn("<search>q</search>");
  EXPECT_EQ(ep.on_generation(t.ids, t.lps, TurnFinish::kStopSequence).kind,
            Episode::StepKind::kDone);
  EXPECT_EQ(ep.end_reason(), EndReason::kMaxTurns);
  EXPECT_EQ(ep.num_searches(), 0);
}

TEST(SearchEnv, ObservationIsTruncatedButKeepsItsClosingTag) {
  SearchEnvOptions o;
  o.max_obs_tokens = 20;
  Episode ep(o, question(), enc, dec);
  const auto t = turn("<search>q</search>");
  ep.on_generation(t.ids, t.lps, TurnFinish::kStopSequence);
  ep.on_retrieval(docs(), 1, 1);
  const std::string obs = dec(ep.take_pending_observation());
  EXPECT_TRUE(ep.turns()[0].observation_truncated);
  EXPECT_EQ(obs.size(), std::string("\n\n<information>").size() + 20 +
                            std::string("</information>\n\n").size());
  EXPECT_EQ(obs.rfind("</information>\n\n"), obs.size() - 16);
}

TEST(SearchEnv, ResponseTokenBudgetEndsTheEpisode) {
  SearchEnvOptions o;
  o.max_turn_tokens = 30;
  o.max_response_tokens = 60;
  Episode ep(o, question(), enc, dec);
  const auto t = turn("<search>Kreimex Setofa</search>");  // 31 tokens
  ASSERT_EQ(ep.on_generation(t.ids, t.lps, TurnFinish::kStopSequence).kind,
            Episode::StepKind::kSearch);
  ep.on_retrieval(docs(), 1, 1);  // the observation alone is > 60 tokens
  EXPECT_TRUE(ep.done());
  EXPECT_EQ(ep.end_reason(), EndReason::kMaxResponseTokens);
}

TEST(SearchEnv, RetrievalFailureEndsWithReason) {
  Episode ep(SearchEnvOptions{}, question(), enc, dec);
  const auto t = turn("<search>q</search>");
  ep.on_generation(t.ids, t.lps, TurnFinish::kStopSequence);
  ep.on_retrieval_failed("connection refused after 4 attempts", 900, 4);
  EXPECT_EQ(ep.end_reason(), EndReason::kRetrievalFailed);
  EXPECT_EQ(ep.error(), "connection refused after 4 attempts");
  EXPECT_EQ(ep.turns()[0].retrieval_attempts, 4);
  EXPECT_STREQ(end_reason_name(ep.end_reason()), "retrieval_failed");
}

TEST(SearchEnv, InvalidOptionsNameTheKey) {
  SearchEnvOptions o;
  o.prompt_template = "no placeholder";
  try {
    o.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("env.prompt_template"), std::string::npos);
  }
  o = {};
  o.max_turns = 0;
  EXPECT_THROW(o.validate(), Error);
}

}  // namespace
}  // namespace strata::env
