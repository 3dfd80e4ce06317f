#include "core/config.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace strata {
namespace {

struct OptimOptions {
  double lr = 1e-6;
  int warmup = 10;
  std::string schedule = "constant";
  template <class V>
  void visit(V& v) {
    v("lr", lr, "learning rate");
    v("warmup", warmup, "warm-up steps");
    v("schedule", schedule, "constant or cosine");
  }
  void validate() const {
    STRATA_CHECK(lr > 0, "lr must be > 0, got " << lr);
    STRATA_CHECK(schedule == "constant" || schedule == "cosine",
                 "schedule must be constant or cosine, got \"" << schedule << "\"");
  }
};

struct TrainConfig {
  OptimOptions trainer;
  bool verbose = false;
  std::vector<std::string> data = {"a.jsonl"};
  std::map<std::string, double> weights;
  std::optional<int> max_steps;
  uint32_t seed = 7;
  template <class V>
  void visit(V& v) {
    v("trainer", trainer, "optimiser");
    v("verbose", verbose, "more logs");
    v("data", data, "data files");
    v("weights", weights, "per-dataset weights");
    v("max_steps", max_steps, "stop after this many steps");
    v("seed", seed, "seed");
  }
};

using testing::error_of;

TEST(Config, DefaultsWhenEmpty) {
  auto doc = config::parse_document("{}", "t.json");
  auto c = config::from_document<TrainConfig>(doc);
  EXPECT_DOUBLE_EQ(c.trainer.lr, 1e-6);
  EXPECT_EQ(c.trainer.warmup, 10);
  EXPECT_EQ(c.data, std::vector<std::string>{"a.jsonl"});
  EXPECT_FALSE(c.max_steps.has_value());
}

TEST(Config, ReadsEveryFieldType) {
  auto doc = config::parse_document(R"({
    "trainer": {"lr": 3e-4, "warmup": 5, "schedule": "cosine"},
    "verbose": true,
    "data": ["x.jsonl", "y.jsonl"],
    "weights": {"nq": 0.5, "hotpot": 2},
    "max_steps": 100,
    "seed": 42
  })", "t.json");
  auto c = config::from_document<TrainConfig>(doc);
  EXPECT_DOUBLE_EQ(c.trainer.lr, 3e-4);
  EXPECT_EQ(c.trainer.warmup, 5);
  EXPECT_EQ(c.trainer.schedule, "cosine");
  EXPECT_TRUE(c.verbose);
  EXPECT_EQ(c.data.size(), 2u);
  EXPECT_DOUBLE_EQ(c.weights.at("hotpot"), 2.0);
  ASSERT_TRUE(c.max_steps.has_value());
  EXPECT_EQ(*c.max_steps, 100);
  EXPECT_EQ(c.seed, 42u);
}

TEST(Config, MistypedValueNamesPathAndLine) {
  auto doc = config::parse_document("{\n  \"trainer\": {\n    \"lr\": \"abc\"\n  }\n}", "cfg.json");
  const auto msg = error_of([&] { config::from_document<TrainConfig>(doc); });
  EXPECT_EQ(msg, "cfg.json:3: trainer.lr: expected number, got \"abc\"");
}

TEST(Config, UnknownKeyRejectedWithKnownKeys) {
  auto doc = config::parse_document("{\n\"trainer\": {\"lrr\": 1}\n}", "cfg.json");
  const auto msg = error_of([&] { config::from_document<TrainConfig>(doc); });
  EXPECT_NE(msg.find("cfg.json:2: trainer.lrr: unknown key"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lr, warmup, schedule"), std::string::npos) << msg;
}

TEST(Config, IntegerChecks) {
  auto frac = config::parse_document(R"({"trainer": {"warmup": 1.5}})", "c");
  EXPECT_NE(error_of([&] { config::from_document<TrainConfig>(frac); })
                .find("trainer.warmup: expected integer, got 1.5"),
            std::string::npos);
  auto neg = config::parse_document(R"({"seed": -1})", "c");
  EXPECT_NE(error_of([&] { config::from_document<TrainConfig>(neg); })
                .find("seed: integer out of range"),
            std::string::npos);
  auto whole = config::parse_document(R"({"trainer": {"warmup": 3.0}})", "c");
  EXPECT_EQ(config::from_document<TrainConfig>(whole).trainer.warmup, 3);
}

TEST(Config, ListElementErrorsHaveIndex) {
  auto doc = config::parse_document(R"({"data": ["ok", 3]})", "c");
  EXPECT_NE(error_of([&] { config::from_document<TrainConfig>(doc); })
                .find("data[1]: expected string, got 3"),
            std::string::npos);
}

TEST(Config, ValidateRunsWithPath) {
  auto doc = config::parse_document(R"({"trainer": {"lr": -1}})", "c");
  const auto msg = error_of([&] { config::from_document<TrainConfig>(doc); });
  EXPECT_NE(msg.find("trainer: lr must be > 0, got -1"), std::string::npos) << msg;
}

TEST(Config, OverridesApplyAndAreBlamedInErrors) {
  auto doc = config::parse_document(R"({"trainer": {"lr": 0.1}})", "c.json");
  config::apply_overrides(doc, {"trainer.lr=0.5", "trainer.schedule=cosine", "verbose=true",
                                "data=[\"p\",\"q\"]"});
  auto c = config::from_document<TrainConfig>(doc);
  EXPECT_DOUBLE_EQ(c.trainer.lr, 0.5);
  EXPECT_EQ(c.trainer.schedule, "cosine");  // not JSON -> taken as a string
  EXPECT_TRUE(c.verbose);
  EXPECT_EQ(c.data, (std::vector<std::string>{"p", "q"}));

  auto bad = config::parse_document("{}", "c.json");
  config::apply_overrides(bad, {"trainer.lr=abc"});
  EXPECT_EQ(error_of([&] { config::from_document<TrainConfig>(bad); }),
            "--set trainer.lr=abc: trainer.lr: expected number, got \"abc\"");
}

TEST(Config, OverrideSyntaxErrors) {
  auto doc = config::parse_document(R"({"verbose": true})", "c");
  EXPECT_NE(error_of([&] { config::apply_overrides(doc, {"novalue"}); }).find("expected KEY=VALUE"),
            std::string::npos);
  EXPECT_NE(error_of([&] { config::apply_overrides(doc, {"verbose.x=1"}); }).find("not an object"),
            std::string::npos);
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
  const auto msg = error_of([] { config::parse_document("{\n  \"a\": 1,\n  \"b\": }\n", "bad.json"); });
  EXPECT_EQ(msg.rfind("bad.json:3:", 0), 0u) << msg;
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of([] { config::parse_document("[1]", "arr.json"); }).find("JSON object"),
            std::string::npos);
}

TEST(Config, LoadFileAndRoundTrip) {
  testing::TempDir dir;
  testing::write_file(dir.file("c.json"), R"({"trainer": {"warmup": 3}, "seed": 9})");
  auto c = config::load<TrainConfig>(dir.file("c.json"), {"seed=11"});
  EXPECT_EQ(c.trainer.warmup, 3);
  EXPECT_EQ(c.seed, 11u);
  // to_json -> from_document gives the same values back.
  auto j = config::to_json(c);
  auto back = config::from_document<TrainConfig>(config::parse_document(j.dump(), "rt"));
  EXPECT_EQ(config::to_json(back), j);
  EXPECT_NE(error_of([&] { config::load<TrainConfig>(dir.file("missing.json"), {}); })
                .find("cannot open config file"),
            std::string::npos);
}

TEST(Config, DescribeFieldsListsLeaves) {
  const auto text = config::describe_fields(TrainConfig());
  EXPECT_NE(text.find("trainer.lr = 1e-06"), std::string::npos) << text;
  EXPECT_NE(text.find("learning rate"), std::string::npos);
}

}  // namespace
}  // namespace strata
