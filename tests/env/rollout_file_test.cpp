#include "env/rollout_file.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "core/error.h"
#include "tests/test_util.h"

namespace strata::env {
namespace {

std::vector<int32_t> enc(std::string_view s) { return testing::byte_encode(s); }
std::string dec(const std::vector<int32_t>& ids) { return testing::byte_decode(ids); }

// One finished episode: `searches` searches, then the given answer.
pb::Trajectory episode_record(int searches, const std::string& answer, int64_t group) {
  data::QaRecord q;
  q.id = "q" + std::to_string(group);
  q.question = "Who founded Befo Studios?";
  q.golden_answers = {"Maiga Blodu"};
  Episode ep(SearchEnvOptions{}, q, enc, dec);
  for (int s = 0; s < searches; ++s) {
    const auto ids = enc("<search>Befo Studios founder</search>");
    ep.on_generation(ids, std::vector<float>(ids.size(), -1.0f), TurnFinish::kStopSequence);
    ep.on_retrieval({{"4793", "\"Befo Studios\"\nBefo Studios was founded by Maiga Blodu."}}, 3, 1);
  }
  const auto ids = enc("<answer>" + answer + "</answer>");
  ep.on_generation(ids, std::vector<float>(ids.size(), -0.25f), TurnFinish::kStopSequence);
  const auto r = ep.score();
  return make_record(ep, r, enc(ep.prompt_text()), group, 0, 7, ep.num_searches());
}

TEST(RolloutFile, RoundTripKeepsEveryField) {
  testing::TempDir dir;
  const auto a = episode_record(1, "Maiga Blodu", 0);
  const auto b = episode_record(0, "someone else", 1);
  {
    RolloutWriter w(dir.file("step_7.pb"));
    w.write(a);
    w.write(b);
    w.flush();
    EXPECT_EQ(w.written(), 2u);
  }
  RolloutReader r(dir.file("step_7.pb"));
  pb::Trajectory t;
  ASSERT_TRUE(r.next(t));
  EXPECT_EQ(t.SerializeAsString(), a.SerializeAsString());
  EXPECT_EQ(t.reward(), 1.0);
  EXPECT_EQ(t.num_searches(), 1);
  EXPECT_EQ(t.end_reason(), "answered");
  EXPECT_EQ(t.loss_mask_size(), t.response_ids_size());
  EXPECT_EQ(t.behaviour_logprobs_size(), t.response_ids_size());
  EXPECT_EQ(t.turns(0).doc_ids(0), "4793");
  EXPECT_TRUE(t.gold_retrieved());
  ASSERT_TRUE(r.next(t));
  EXPECT_EQ(t.reward(), 0.0);
  EXPECT_EQ(t.stratum(), 0);
  EXPECT_FALSE(r.next(t));
}

// A small policy can emit a query whose bytes are not valid UTF-8 (byte-level tokens cut a
// character); the record keeps those bytes exactly.
TEST(RolloutFile, QueryWithInvalidUtf8RoundTrips) {
  testing::TempDir dir;
  auto a = episode_record(1, "Maiga Blodu", 0);
  const std::string bad = std::string("Befo \xe2\x82") + " Studios";
  a.mutable_turns(0)->set_query(bad);
  {
    RolloutWriter w(dir.file("q.pb"));
    w.write(a);
    w.flush();
  }
  RolloutReader r(dir.file("q.pb"));
  pb::Trajectory t;
  ASSERT_TRUE(r.next(t));
  EXPECT_EQ(t.turns(0).query(), bad);
}

TEST(RolloutFile, TruncatedFileIsAnErrorWithTheRecordIndex) {
  testing::TempDir dir;
  {
    RolloutWriter w(dir.file("f.pb"));
    w.write(episode_record(1, "x", 0));
    w.write(episode_record(1, "y", 1));
  }
  std::string bytes = testing::read_file(dir.file("f.pb"));
  testing::write_file(dir.file("cut.pb"), bytes.substr(0, bytes.size() - 10));
  RolloutReader r(dir.file("cut.pb"));
  pb::Trajectory t;
  ASSERT_TRUE(r.next(t));
  try {
    r.next(t);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("record 1 is truncated or corrupt"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(RolloutReader(dir.file("missing.pb")), Error);
}

TEST(RolloutFile, InspectRolloutsShowsMaskedTextAndFilters) {
  testing::TempDir dir;
  {
    RolloutWriter w(dir.file("r.pb"));
    w.write(episode_record(1, "Maiga Blodu", 0));
    w.write(episode_record(0, "nobody", 1));
    w.write(episode_record(2, "Maiga Blodu", 2));
  }
  auto run = [&](const std::string& args) {
    const std::string out = dir.file("out.txt");
    const std::string cmd = testing::bin("inspect_rollouts") + " " + dir.file("r.pb") + " " +
                            args + " --no-color > " + out + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return testing::read_file(out);
  };
  const auto all = run("");
  EXPECT_NE(all.find("[masked]\n\n<information>Doc 1(Title: \"Befo Studios\")"), std::string::npos)
      << all;
  EXPECT_NE(all.find("3 trajectories"), std::string::npos);
  EXPECT_NE(all.find("by searches: 0=1 1=1 2=1"), std::string::npos) << all;
  const auto s2 = run("--stratum 2");
  EXPECT_NE(s2.find("1 matching"), std::string::npos) << s2;
  EXPECT_NE(s2.find("group 2"), std::string::npos);
  EXPECT_EQ(s2.find("group 0"), std::string::npos);
  const auto wrong = run("--max-reward 0");
  EXPECT_NE(wrong.find("nobody"), std::string::npos);
  EXPECT_EQ(wrong.find("group 0 "), std::string::npos);
}

}  // namespace
}  // namespace strata::env
