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

// A number beyond a double names where it is and its key, not nlohmann's "number overflow".
TEST(Config, NumberOutOfRangeNamesTheKey) {
  const auto msg = error_of([] { config::parse_document("{\n  \"verbose\": true,\n  \"lr\": 1e400\n}\n", "big.json"); });
  EXPECT_EQ(msg.rfind("big.json:3: lr: number out of range: 1e400", 0), 0u) << msg;
  auto doc = config::parse_document("{}", "c");
  EXPECT_EQ(error_of([&] { config::apply_overrides(doc, {"trainer.lr=-1e999"}); })
                .rfind("--set trainer.lr=-1e999: trainer.lr: number out of range", 0),
            0u);
}

// A struct's removed keys are named as such, with what to use instead, anywhere in the tree.
struct WithRemovedKey {
  double temperature = 1.0;  // not a key any more
  int epochs = 1;
  static constexpr config::RemovedKey kRemovedKeys[] = {{"temperature", "set sampling.temperature"}};
  template <class V>
  void visit(V& v) {
    v("epochs", epochs, "epochs");
  }
};
struct HoldsRemovedKey {
  WithRemovedKey update;
  template <class V>
  void visit(V& v) {
    v("update", update, "update");
  }
};

TEST(Config, RemovedKeyIsNamedWithWhatToUseInstead) {
  const auto msg = error_of(
      [] { config::from_document<HoldsRemovedKey>(config::parse_document(R"({"update": {"temperature": 0.5}})", "r.json")); });
  EXPECT_EQ(msg, "r.json:1: update.temperature: removed: set sampling.temperature");
  EXPECT_EQ(config::from_document<HoldsRemovedKey>(config::parse_document(R"({"update": {"epochs": 3}})", "r.json"))
                .update.epochs,
            3);
  EXPECT_EQ(config::describe_fields(HoldsRemovedKey{}).find("temperature"), std::string::npos);
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

// ---- enums ---------------------------------------------------------------------------------

enum class Mode { kFast, kSafe, kOff };
inline constexpr config::EnumName<Mode> kModeNames[] = {{Mode::kFast, "fast"}, {Mode::kSafe, "safe"}, {Mode::kOff, "off"}};
inline config::EnumTable<Mode> enum_names(Mode) { return kModeNames; }

struct ModeOptions {
  Mode mode = Mode::kSafe;
  int level = 1;
  template <class V>
  void visit(V& v) {
    v("mode", mode, "fast, safe or off");
    v("level", level, "level");
  }
  void validate() const { STRATA_CHECK(level >= 0, "level: expected >= 0, got " << level); }
};
struct ModeConfig {
  ModeOptions opts;
  template <class V>
  void visit(V& v) {
    v("opts", opts, "options");
  }
  void validate() const { config::validate_nested("opts", opts); }
};

TEST(ConfigEnum, ReadWrittenAndListedByName) {
  auto c = config::from_document<ModeConfig>(config::parse_document(R"({"opts": {"mode": "off"}})", "m.json"));
  EXPECT_EQ(c.opts.mode, Mode::kOff);
  EXPECT_EQ(config::to_json(c)["opts"]["mode"], "off");
  EXPECT_NE(config::describe_fields(ModeConfig{}).find("opts.mode = \"safe\""), std::string::npos);
  EXPECT_STREQ(config::name_of(Mode::kFast), "fast");
  EXPECT_EQ(config::parse_enum<Mode>("safe"), Mode::kSafe);
  EXPECT_FALSE(config::parse_enum<Mode>("Safe").has_value());
  EXPECT_EQ(config::enum_choices<Mode>(), "fast, safe or off");
}

TEST(ConfigEnum, BadNameNamesKeyLineAndChoices) {
  auto doc = config::parse_document("{\n  \"opts\": {\n    \"mode\": \"slow\"\n  }\n}", "m.json");
  EXPECT_EQ(error_of([&] { config::from_document<ModeConfig>(doc); }),
            "m.json:3: opts.mode: expected fast, safe or off, got \"slow\"");
  auto num = config::parse_document(R"({"opts": {"mode": 2}})", "m.json");
  EXPECT_EQ(error_of([&] { config::from_document<ModeConfig>(num); }),
            "m.json:1: opts.mode: expected fast, safe or off, got 2");
  auto set = config::parse_document("{}", "m.json");
  config::apply_overrides(set, {"opts.mode=slow"});
  EXPECT_EQ(error_of([&] { config::from_document<ModeConfig>(set); }),
            "--set opts.mode=slow: opts.mode: expected fast, safe or off, got \"slow\"");
  EXPECT_EQ(error_of([] { config::enum_from_name<Mode>("x", "mode"); }), "mode: expected fast, safe or off, got \"x\"");
}

// validate() names the leaf; the loader adds the path and the leaf's own line, once.
TEST(ConfigErrors, ValidateNamesTheLeafAndTheLoaderThePath) {
  auto doc = config::parse_document("{\n  \"opts\": {\n    \"mode\": \"fast\",\n    \"level\": -1\n  }\n}", "m.json");
  const auto msg = error_of([&] { config::from_document<ModeConfig>(doc); });
  EXPECT_EQ(msg.rfind("m.json:4: opts.level: expected >= 0, got -1", 0), 0u) << msg;
  // A parent's validate() of a nested struct prefixes the key.
  ModeConfig c;
  c.opts.level = -2;
  EXPECT_EQ(error_of([&] { c.validate(); }).rfind("opts.level: expected >= 0, got -2", 0), 0u);
  EXPECT_EQ(config::prefix_leaf("env", "max_turns: expected >= 1"), "env.max_turns: expected >= 1");
  EXPECT_EQ(config::prefix_leaf("env", "give at least one"), "env: give at least one");
}

// ---- dotted paths --------------------------------------------------------------------------

TEST(ConfigPath, OneWalkerForOverridesFlagsAndDiffs) {
  EXPECT_EQ(config::split_path("a.b[2].c"), (std::vector<std::string>{"a", "b", "2", "c"}));
  EXPECT_EQ(config::join_path("", "a"), "a");
  EXPECT_EQ(config::join_path("a.b", "c"), "a.b.c");
  config::Json j = config::Json::object();
  config::node_at(j, "x.y.z") = 3;
  EXPECT_EQ(j["x"]["y"]["z"], 3);
  j["n"] = 5;
  EXPECT_NE(error_of([&] { config::node_at(j, "n.k"); }).find("n is 5, not an object, so it has no key \"k\""),
            std::string::npos);
  auto doc = config::parse_document(R"({"trainer": {"lr": 0.1}})", "c.json");
  config::set_value(doc, "trainer.warmup", 4, "--warmup 4");
  EXPECT_EQ(config::from_document<TrainConfig>(doc).trainer.warmup, 4);
  EXPECT_EQ(doc.source.locate("trainer.warmup"), "--warmup 4");
  EXPECT_NE(error_of([&] { config::set_value(doc, "trainer.lr.x", 1, "--flag 1"); }).rfind("--flag 1: trainer.lr is", 0),
            std::string::npos);
  const auto a = config::Json::parse(R"({"a": 1, "b": {"c": 2, "d": 3}, "e": 4})");
  const auto b = config::Json::parse(R"({"a": 1, "b": {"c": 5, "d": 3}, "f": 4})");
  EXPECT_EQ(config::diff_paths(a, b), (std::vector<std::string>{"b.c", "e", "f"}));
}

}  // namespace
}  // namespace strata
