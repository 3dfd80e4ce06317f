// grpo_train's loop end to end on a tiny random policy, a small world and a real daemon (over
// 450 lines on purpose: every end-to-end promise of the loop shares one world and daemon).
#include "rl/trainer.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <fstream>
#include <set>
#include <thread>

#include "agent/tokenizer/bpe_trainer.h"
#include "agent/checkpoint.h"
#include "agent/model.h"
#include "core/config.h"
#include "core/error.h"
#include "env/rollout_file.h"
#include "env/world/world.h"
#include "tests/child_process.h"
#include "tests/loopback_daemon.h"
#include "tests/shared_fixture.h"
#include "tests/test_util.h"
#include "tests/rl/tiny_train_world.h"

namespace strata::rl {
namespace {

// A small world, its index served on loopback, a world tokenizer and a tiny random policy. They
// are built once per test binary (tests/shared_fixture.h); each TrainWorld copies the world and
// the policy into its own folder (where its runs write) and serves the shared index.
struct TrainWorld : testing::TinyTrainWorld {
  TrainWorld() : TinyTrainWorld("rl_trainer", 2) {}
  TrainerConfig config(const std::string& out, int steps) const {
    TrainerConfig tc = base_config(out, steps);
    tc.prompts_per_step = 3;
    tc.rollout.samples_per_prompt = 2;
    tc.rollout.max_batch = 6;
    tc.rollout.env.max_response_tokens = 400;
    tc.update.mini_batch = 6;
    tc.update.micro_batch = 3;
    return tc;
  }
};

// An entropy bonus gives a gradient even when every reward of the untrained policy is 0 (the
// zero-advantage guard is off so that those batches are trained on).
TrainerConfig with_entropy(const TrainWorld& s, const std::string& out, int steps) {
  auto c = s.config(out, steps);
  c.loss.entropy_coef = 0.05;
  c.update.skip_zero_advantage = false;
  return c;
}

TEST(Trainer, ResumeIsExact) {
  TrainWorld s;
  auto with_entropy = [&](const std::string& out, int steps) { return rl::with_entropy(s, out, steps); };
  train_grpo(with_entropy("straight", 4));
  train_grpo(with_entropy("resumed", 2));
  auto cfg = with_entropy("resumed", 4);
  train_grpo(cfg, /*resume=*/true);
  const auto a = testing::read_file(s.dir.file("straight/final/model.safetensors"));
  const auto b = testing::read_file(s.dir.file("resumed/final/model.safetensors"));
  EXPECT_TRUE(a == b) << "4 steps straight and 2 + resume + 2 must end with the same weights";
  EXPECT_TRUE(a != testing::read_file(s.dir.file("tiny/model.safetensors"))) << "training changed nothing";
  // A resume with a config that matters is refused, naming the key.
  cfg.lr = 0.5;
  cfg.steps = 6;
  try {
    train_grpo(cfg, true);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("differs from the checkpoint's"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("in: lr"), std::string::npos) << e.what();
  }
}

TEST(Trainer, TwoStepsWriteLogsRolloutsAndAModel) {
  TrainWorld setup;
  const auto& dir = setup.dir;
  const auto s = train_grpo(setup.config("run", 2));
  EXPECT_EQ(s.steps, 2);
  EXPECT_TRUE(std::filesystem::exists(dir.file("run/checkpoints/step_000002/optimizer.pt")));

  // One JSONL line per step with the per-step scalars.
  std::ifstream in(dir.file("run/metrics.jsonl"));
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["step"], lines);
    for (const char* k : {"reward/mean", "rollout/tokens_per_s", "rollout/answer_rate", "rollout/turns_per_traj",
                          "rollout/response_len", "rollout/trajectories", "tokens/total", "time/rollout_s",
                          "time/old_logp_s", "time/ref_logp_s", "time/train_s", "time/update_s", "time/step_s", "lr",
                          "update/skipped_zero_adv"})
      EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["rollout/trajectories"], 6.0);
    EXPECT_GT(j["rollout/response_len"].get<double>(), 0.0);
    // The rollout phase split: each part measured, none longer than the phase, and together
    // (one process) not more than it; every trajectory decodes and its prompt is prefilled.
    double parts = 0;
    for (const char* k : {"time/rollout_prefill_s", "time/rollout_decode_s", "time/rollout_sample_s",
                          "time/rollout_wait_s", "time/rollout_other_s"}) {
      ASSERT_TRUE(j.contains(k)) << k;
      EXPECT_GE(j[k].get<double>(), 0.0) << k;
      parts += j[k].get<double>();
    }
    EXPECT_GT(j["time/rollout_prefill_s"].get<double>(), 0.0);
    EXPECT_GT(j["time/rollout_decode_s"].get<double>(), 0.0);
    EXPECT_LE(parts, j["time/rollout_s"].get<double>() + 1e-6);
    EXPECT_GE(j["rollout/prefill_tokens"].get<double>(), j["tokens/prompt"].get<double>() / 2)
        << "3 prompts x 2 samples: each prompt prefilled at least once";
    EXPECT_GT(j["rollout/decode_tokens"].get<double>(), 0.0);
    double ends = 0;
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key().rfind("rollout/end/", 0) == 0) ends += it.value().get<double>();
    EXPECT_NEAR(ends, 1.0, 1e-9) << "the end-reason shares add up to 1";
    // The untrained policy never answers: every reward 0, so the guard skips the update, and
    // what the update did not compute is absent, not 0.
    if (j["reward/mean"] == 0.0) {
      EXPECT_EQ(j["update/skipped_zero_adv"], 1.0);
      for (const char* k : {"entropy", "loss/kl", "loss/pg", "grad_norm"}) EXPECT_FALSE(j.contains(k)) << k;
    } else {
      for (const char* k : {"entropy", "loss/kl", "loss/pg", "grad_norm"}) EXPECT_TRUE(j.contains(k)) << k;
    }
  }
  EXPECT_EQ(lines, 2);
  EXPECT_EQ(s.trajectories, 12);
  EXPECT_EQ(s.window, 1);
  // A rollouts file per step, 3 prompts x 2 samples, groups unique per prompt across steps.
  std::set<int64_t> groups;
  for (int step = 1; step <= 2; ++step) {
    env::RolloutReader r(dir.file("run/rollouts/step_00000" + std::to_string(step) + ".pb"));
    env::pb::Trajectory t;
    int n = 0;
    while (r.next(t)) {
      ++n;
      EXPECT_EQ(t.step(), step);
      groups.insert(t.group());
    }
    EXPECT_EQ(n, 6);
  }
  EXPECT_EQ(groups.size(), 6u);
  // TensorBoard events and the final model in the HF layout.
  bool tb = false;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("run/tb")))
    tb = tb || (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0 && e.file_size() > 100);
  EXPECT_TRUE(tb);
  const auto back = agent::load_model(dir.file("run/final"));
  EXPECT_EQ(back.config().hidden_size, 32);
  EXPECT_TRUE(std::filesystem::exists(dir.file("run/final/tokenizer.json")));
}

// Entropy is logged at every trained step with entropy_coef 0 (the default), and the guard off
// so that the untrained policy's all-zero batches are trained on.
TEST(Trainer, EntropyIsLoggedWithoutTheBonus) {
  TrainWorld setup;
  auto c = setup.config("ent", 1);
  c.update.skip_zero_advantage = false;
  ASSERT_EQ(c.loss.entropy_coef, 0.0);
  train_grpo(c);
  std::ifstream in(setup.dir.file("ent/metrics.jsonl"));
  std::string line;
  ASSERT_TRUE(static_cast<bool>(std::getline(in, line)));
  const auto j = nlohmann::json::parse(line);
  ASSERT_TRUE(j.contains("entropy"));
  EXPECT_GT(j["entropy"].get<double>(), 1.0) << "a random policy's entropy, not 0";
}

env::pb::Trajectory made_up(int64_t stratum, double reward, const std::string& end, int policy_tokens, int turns) {
  env::pb::Trajectory t;
  t.set_stratum(stratum);
  t.set_reward(reward);
  t.set_em(reward);
  t.set_end_reason(end);
  t.set_num_searches(static_cast<int32_t>(stratum));
  for (int i = 0; i < 5; ++i) t.add_prompt_ids(1);
  for (int i = 0; i < policy_tokens; ++i) {
    t.add_response_ids(2);
    t.add_loss_mask(1);
  }
  for (int i = 0; i < 3; ++i) {  // an observation
    t.add_response_ids(3);
    t.add_loss_mask(0);
  }
  for (int i = 0; i < turns; ++i) t.add_turns();
  return t;
}

TEST(TrainerMetrics, BatchStatisticsByEndReasonAndStratum) {
  const std::vector<env::pb::Trajectory> batch = {
      made_up(0, 1.0, "answered", 10, 1), made_up(0, 0.0, "answered", 20, 1), made_up(1, 0.0, "max_turns", 30, 4),
      made_up(1, 0.0, "retrieval_failed", 40, 2)};
  const std::vector<double> adv = {1.5, -0.5, -0.25, 0.0};
  std::map<std::string, double> m;
  add_batch_metrics(batch, adv, m);
  EXPECT_DOUBLE_EQ(m.at("reward/mean"), 0.25);
  EXPECT_DOUBLE_EQ(m.at("rollout/answer_rate"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("rollout/end/answered"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("rollout/end/max_turns"), 0.25);
  EXPECT_DOUBLE_EQ(m.at("rollout/end/retrieval_failed"), 0.25);
  EXPECT_DOUBLE_EQ(m.at("rollout/response_len"), 25.0);
  EXPECT_DOUBLE_EQ(m.at("rollout/turns_per_traj"), 2.0);
  EXPECT_DOUBLE_EQ(m.at("rollout/searches_per_traj"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("tokens/prompt"), 20.0);
  EXPECT_DOUBLE_EQ(m.at("tokens/policy"), 100.0);
  EXPECT_DOUBLE_EQ(m.at("tokens/observation"), 12.0);
  EXPECT_DOUBLE_EQ(m.at("tokens/total"), 132.0);
  EXPECT_DOUBLE_EQ(m.at("stratum/0/count"), 2.0);
  EXPECT_DOUBLE_EQ(m.at("stratum/0/reward"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("stratum/0/bias"), 0.25);
  EXPECT_DOUBLE_EQ(m.at("stratum/0/adv"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("stratum/0/adv_std"), 1.0);
  // The failed trajectory counts in the stratum but not in its advantage statistics.
  EXPECT_DOUBLE_EQ(m.at("stratum/1/count"), 2.0);
  EXPECT_DOUBLE_EQ(m.at("stratum/1/adv"), -0.25);
  EXPECT_DOUBLE_EQ(m.at("stratum/1/adv_std"), 0.0);
}

// The closing summary averages the first and last few steps of the whole metrics file.
TEST(TrainerMetrics, SummaryAveragesTheFirstAndLastSteps) {
  testing::TempDir dir;
  {
    std::ofstream out(dir.file("metrics.jsonl"));
    for (int step = 1; step <= 12; ++step) {
      nlohmann::json j;
      j["step"] = step;
      j["reward/mean"] = step <= 5 ? 0.1 * step : (step >= 8 ? 0.5 + 0.1 * (step - 8) : 9.0);
      j["update/skipped_zero_adv"] = step % 3 == 0 ? 1.0 : 0.0;
      j["rollout/trajectories"] = 16.0;
      j["rollout/failed"] = step == 4 ? 2.0 : 0.0;
      out << j.dump() << "\n";
    }
    out << "{\"step\": 13, \"reward";  // cut by a kill
  }
  const auto s = summarize_metrics_file(dir.file("metrics.jsonl"));
  EXPECT_EQ(s.steps, 12);
  EXPECT_EQ(s.window, 5);
  EXPECT_NEAR(s.first_reward, 0.3, 1e-12);  // steps 1-5: 0.1 .. 0.5
  EXPECT_NEAR(s.last_reward, 0.7, 1e-12);   // steps 8-12: 0.5 .. 0.9
  EXPECT_EQ(s.skipped_zero_advantage, 4);
  EXPECT_EQ(s.trajectories, 192);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(format_summary(s),
            "trained 12 steps: mean reward 0.300 (steps 1-5) -> 0.700 (steps 8-12); 4 of 12 steps skipped "
            "(every advantage 0); 2 of 192 trajectories failed (retrieval)");
}

TEST(Trainer, BadConfigNamesTheKey) {
  TrainerConfig tc;
  try {
    tc.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model: a model directory is required"), std::string::npos);
  }
  tc.model = "m";
  tc.train_data = "d";
  tc.loss.dual_clip = 0.5;
  EXPECT_NE(testing::error_of([&] { tc.validate(); }).find("loss.dual_clip: "), std::string::npos)
      << "a nested struct's leaf is named by its path";
  tc.loss.dual_clip = 0;
  // Enum keys are checked where the config is read: the key, file:line and the allowed names.
  auto load_error = [](const std::string& json) {
    return testing::error_of(
        [&] { config::from_document<TrainerConfig>(config::parse_document(json, "t.json")); });
  };
  EXPECT_NE(load_error(R"({"model": "m", "train_data": "d", "loss": {"aggregation": "mean"}})")
                .find("t.json:1: loss.aggregation: expected token-mean, "),
            std::string::npos);
  EXPECT_NE(load_error(R"({"model": "m", "train_data": "d", "rollout_precision": "fp16"})")
                .find("rollout_precision: expected auto, fp32, bf16 or int8, got \"fp16\""),
            std::string::npos);
  EXPECT_NE(load_error(R"({"model": "m", "train_data": "d", "update": {"old_logprobs": "cached"}})")
                .find("update.old_logprobs: expected auto or recompute, got \"cached\""),
            std::string::npos);
  EXPECT_NE(load_error(R"({"model": "m", "train_data": "d", "update": {"ppo_epochs": 0}})")
                .find("t.json:1: update.ppo_epochs: expected >= 1, got 0"),
            std::string::npos)
      << "validate() names the leaf, the loader adds the path";
  auto names = [&](const std::string& key) {
    try {
      tc.validate();
      return std::string("no error");
    } catch (const Error& e) {
      return std::string(e.what()).find(key) != std::string::npos ? key : std::string(e.what());
    }
  };
  tc.rollout_threads = -1;
  EXPECT_EQ(names("rollout_threads"), "rollout_threads");
  tc.rollout_threads = 1;
  tc.rollout_precision = RolloutPrecision::kFp32;
  tc.precision = Precision::kBf16Master;
  EXPECT_EQ(names("rollout_precision"), "rollout_precision") << "fp32 rollouts need fp32 weights";
  tc.precision = Precision::kFp32;
  tc.update.old_logprobs = OldLogprobs::kRecompute;
  EXPECT_NO_THROW(tc.validate());
}

// rollout_precision fp32 and bf16 both train; with bf16 the sampler's log-probs differ from the
// fp32 policy's by bf16 rounding, which rollout/logp_mismatch shows (and fp32 rollouts do not).
TEST(Trainer, RolloutPrecisionIsLoggedAndOverridable) {
  TrainWorld s;
  std::map<std::string, double> mismatch;
  for (const char* rp : {"fp32", "bf16"}) {
    auto c = s.config(std::string("rp_") + rp, 1);
    c.update.skip_zero_advantage = false;
    c.rollout_precision = *config::parse_enum<RolloutPrecision>(rp);
    c.rollout_threads = 0;  // as threads
    train_grpo(c);
    std::ifstream in(s.dir.file(std::string("rp_") + rp + "/metrics.jsonl"));
    std::string line;
    ASSERT_TRUE(static_cast<bool>(std::getline(in, line))) << rp;
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["rollout/bf16"].get<double>(), std::string(rp) == "bf16" ? 1.0 : 0.0) << rp;
    mismatch[rp] = j["rollout/logp_mismatch"].get<double>();
  }
  EXPECT_LT(mismatch["fp32"], 1e-4) << "the sampler is the policy: only KV-cache vs full-forward rounding";
  EXPECT_GT(mismatch["bf16"], 10 * mismatch["fp32"]) << "a bf16 sampler is measurably off the fp32 policy";
}

// rollout_precision int8: the rollouts sample from an int8 copy re-quantised after every update,
// and the update corrects the mismatch with TIS, logging its ratio; the run trains (the weights
// move). That the refreshed copy equals a fresh quantisation is Int8Model.RefreshEquals... in
// tests/agent/int8_linear_test.cpp (the trainer refreshes through Model::refresh_from).
TEST(Trainer, Int8RolloutsTrainWithTis) {
  TrainWorld s;
  auto c = with_entropy(s, "int8", 2);
  c.rollout_precision = RolloutPrecision::kInt8;
  c.rollout_threads = 0;
  train_grpo(c);
  std::ifstream in(s.dir.file("int8/metrics.jsonl"));
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    ++rows;
    EXPECT_EQ(j["rollout/int8"].get<double>(), 1.0);
    EXPECT_EQ(j["rollout/bf16"].get<double>(), 1.0) << "int8 weights, bf16 activations";
    ASSERT_TRUE(j.contains("rollout/tis_ratio_mean")) << line;
    const double mean = j["rollout/tis_ratio_mean"].get<double>(), mx = j["rollout/tis_ratio_max"].get<double>();
    EXPECT_GT(mean, 0.8);
    EXPECT_LT(mean, 1.2) << "the int8 sampler is close to the policy";
    EXPECT_GE(mx, mean);
    EXPECT_NE(mean, 1.0) << "int8 log-probs differ from the fp32 policy's";
    const double capped = j["rollout/tis_capped_frac"].get<double>();
    EXPECT_GE(capped, 0.0);
    EXPECT_LE(capped, 1.0);
    EXPECT_GT(j["rollout/logp_mismatch"].get<double>(), 0.0);
  }
  EXPECT_EQ(rows, 2);
  EXPECT_TRUE(testing::read_file(s.dir.file("int8/final/model.safetensors")) !=
              testing::read_file(s.dir.file("tiny/model.safetensors")))
      << "training changed nothing";
  // TIS off: no TIS keys.
  auto off = with_entropy(s, "int8_off", 1);
  off.rollout_precision = RolloutPrecision::kInt8;
  off.loss.tis_cap = 0;
  train_grpo(off);
  std::ifstream in2(s.dir.file("int8_off/metrics.jsonl"));
  ASSERT_TRUE(static_cast<bool>(std::getline(in2, line)));
  EXPECT_FALSE(nlohmann::json::parse(line).contains("rollout/tis_ratio_mean")) << line;
}

// ---- learning-rate schedule ---------------------------------------------------------------

TEST(TrainerSchedule, WarmupThenConstant) {
  TrainerConfig c;
  c.lr = 1e-3;
  c.steps = 10;
  c.warmup_steps = 4;
  const double want[] = {2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3};
  for (int s = 1; s <= 10; ++s) EXPECT_DOUBLE_EQ(lr_at_step(c, s), want[s - 1]) << "step " << s;
  c.warmup_steps = 0;
  for (int s = 1; s <= 10; ++s) EXPECT_DOUBLE_EQ(lr_at_step(c, s), 1e-3);
}

TEST(TrainerSchedule, CosineAfterWarmup) {
  TrainerConfig c;
  c.lr = 1.0;
  c.steps = 12;
  c.warmup_steps = 2;
  c.lr_schedule = LrSchedule::kCosine;
  EXPECT_DOUBLE_EQ(lr_at_step(c, 1), 0.5);
  EXPECT_DOUBLE_EQ(lr_at_step(c, 2), 1.0);
  // 0-based s >= W: 0.5 * (1 + cos(pi * (s - 2) / 10)), as transformers' cosine schedule.
  EXPECT_DOUBLE_EQ(lr_at_step(c, 3), 1.0);
  EXPECT_NEAR(lr_at_step(c, 8), 0.5, 1e-12);  // s = 7: halfway
  EXPECT_NEAR(lr_at_step(c, 12), 0.5 * (1 + std::cos(M_PI * 0.9)), 1e-12);
  for (int s = 3; s < 12; ++s) EXPECT_GT(lr_at_step(c, s), lr_at_step(c, s + 1)) << s;
  c.min_lr_ratio = 0.1;
  EXPECT_NEAR(lr_at_step(c, 8), 0.1 + 0.9 * 0.5, 1e-12);
  EXPECT_NEAR(lr_at_step(c, 12), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.9)), 1e-12);
  EXPECT_GT(lr_at_step(c, 12), 0.1);
}

TEST(TrainerSchedule, WarmupRatioAsVerl) {
  TrainerConfig c;
  c.lr = 1e-6;
  c.steps = 1000;
  c.warmup_ratio = 0.285;  // Search-R1
  EXPECT_EQ(warmup_steps_of(c), 285);  // int(0.285 * 1000)
  EXPECT_DOUBLE_EQ(lr_at_step(c, 1), 1e-6 / 285);
  EXPECT_DOUBLE_EQ(lr_at_step(c, 285), 1e-6);
  EXPECT_DOUBLE_EQ(lr_at_step(c, 1000), 1e-6);
  c.steps = 10;
  EXPECT_EQ(warmup_steps_of(c), 2);
}

TEST(TrainerSchedule, BadScheduleKeysAreNamed) {
  TrainerConfig c;
  c.model = "m";
  c.train_data = "d";
  EXPECT_NE(testing::error_of([] {
              config::from_document<TrainerConfig>(config::parse_document(R"({"lr_schedule": "linear"})", "t.json"));
            }).find("lr_schedule: expected constant or cosine, got \"linear\""),
            std::string::npos);
  c.lr_schedule = LrSchedule::kCosine;
  c.warmup_ratio = 0.2;
  c.warmup_steps = 3;
  EXPECT_NE(testing::error_of([&] { c.validate(); }).find("not both"), std::string::npos);
  c.warmup_steps = 0;
  c.validate();
  c.warmup_ratio = 1.0;
  EXPECT_NE(testing::error_of([&] { c.validate(); }).find("warmup_ratio"), std::string::npos);
  c.warmup_ratio = 0;
  c.device = "gpu";
  EXPECT_NE(testing::error_of([&] { c.validate(); }).find("device: expected cpu, cuda or cuda:N"), std::string::npos);
  for (const char* d : {"cpu", "cuda", "cuda:0", "cuda:7"}) {
    c.device = d;
    c.validate();
  }
  EXPECT_NE(testing::error_of([] {
              config::from_document<TrainerConfig>(config::parse_document(R"({"precision": "fp16"})", "t.json"));
            }).find("precision: expected fp32, bf16 or bf16_master"),
            std::string::npos);
}

// A resume that changes `steps` is refused when the LR schedule depends on it.
TEST(Trainer, ResumeRefusesChangedStepsUnderCosine) {
  TrainWorld s;
  auto c = s.config("cos", 1);
  c.lr_schedule = LrSchedule::kCosine;
  train_grpo(c);
  c.steps = 3;
  const auto e = testing::error_of([&] { train_grpo(c, true); });
  EXPECT_NE(e.find("in: steps (the LR schedule depends on it: 1 -> 3)"), std::string::npos) << e;
  // A nested key is named by its path.
  c.steps = 1;
  c.update.mini_batch = 3;
  const auto e2 = testing::error_of([&] { train_grpo(c, true); });
  EXPECT_NE(e2.find("in: update.mini_batch"), std::string::npos) << e2;
}

// ---- every config file in configs/ --------------------------------------------------------


// sft_train refuses a bad config before any work, naming the key.
TEST(SftTrainProgram, BadConfigIsNamedBeforeAnyWork) {
  if (!std::filesystem::exists(testing::bin("sft_train"))) GTEST_SKIP() << "sft_train is not built";
  const std::string base =
      testing::bin("sft_train") + " --config " + std::string(STRATA_SOURCE_DIR) + "/configs/demo_sft.json";
  auto r = testing::run_command(base + " --set source=books");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("source: expected world, jsonl or corpus, got \"books\""), std::string::npos) << r.output;
  r = testing::run_command(base + " --set source=jsonl");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("trajectories: required when source = jsonl"), std::string::npos) << r.output;
  r = testing::run_command(base + " --set source=corpus");
  EXPECT_NE(r.output.find("corpus: required when source = corpus"), std::string::npos) << r.output;
  r = testing::run_command(base + " --set sft.epochs=0");
  EXPECT_EQ(r.rc, 2);
  // Named once, by its path, with where the value came from (issue 15: it read "sft: sft.epochs").
  EXPECT_NE(r.output.find("--set sft.epochs=0: sft.epochs: expected >= 1, got 0"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("sft: sft."), std::string::npos) << r.output;
  // The device is checked with the other options, before the tokenizer or weights load.
  r = testing::run_command(base + " --set device=gpu");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("device: expected cpu, cuda or cuda:N, got \"gpu\""), std::string::npos) << r.output;
  r = testing::run_command(base + " --set model=/nonexistent/strata");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("model: /nonexistent/strata/config.json not found"), std::string::npos) << r.output;
}

// configs/ holds the configs of several programs; the file name says which (configs/README.md):
// *sft* -> sft_train, *eval* -> evaluate, the rest -> grpo_train. grpo_train's are loaded here;
// the others through their program's --print-config (the next test).
TEST(TrainerConfigs, EveryFileInConfigsLoadsAndValidates) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(STRATA_SOURCE_DIR) + "/configs")) {
    if (e.path().extension() != ".json") continue;
    const std::string name = e.path().filename().string();
    SCOPED_TRACE(e.path().string());
    const std::string program = name.find("sft") != std::string::npos    ? "sft_train"
                                : name.find("eval") != std::string::npos ? "evaluate"
                                                                         : "grpo_train";
    if (program != "grpo_train") continue;  // TrainerConfigs.OtherProgramsPrintTheirFiles
    ++n;
    TrainerConfig c;
    EXPECT_NO_THROW(c = config::load<TrainerConfig>(e.path().string(), {})) << testing::error_of([&] {
      config::load<TrainerConfig>(e.path().string(), {});
    });
    EXPECT_NO_THROW(c.validate());
    if (name.rfind("qwen2.5-3b_nq_hotpotqa_", 0) == 0) {
      // The Search-R1 recipe.
      EXPECT_EQ(c.prompts_per_step, 512);
      EXPECT_EQ(c.rollout.samples_per_prompt, 5);
      EXPECT_DOUBLE_EQ(c.lr, 1e-6);
      EXPECT_DOUBLE_EQ(c.warmup_ratio, 0.285);
      EXPECT_DOUBLE_EQ(c.loss.clip_low, 0.2);
      EXPECT_DOUBLE_EQ(c.loss.clip_high, 0.2);
      EXPECT_EQ(c.loss.kl_estimator, KlEstimator::kK3);
      EXPECT_DOUBLE_EQ(c.loss.kl_coef, 0.001);
      EXPECT_EQ(c.rollout.env.max_turns, 4);
      EXPECT_EQ(c.rollout.env.topk, 3);
      EXPECT_EQ(c.rollout.env.max_turn_tokens, 500);
      EXPECT_EQ(c.rollout.env.max_obs_tokens, 500);
      EXPECT_EQ(c.rollout.chat, "chatml");
      EXPECT_EQ(c.device, "cuda");
      EXPECT_EQ(c.precision, Precision::kBf16);
      EXPECT_EQ(c.advantage.estimator,
                name.find("stratified") != std::string::npos ? Estimator::kStratified : Estimator::kGrpo);
    }
  }
  EXPECT_GE(n, 6);
}

// The configs of sft_train and evaluate load in their programs (skipped where one is not built).
TEST(TrainerConfigs, OtherProgramsPrintTheirFiles) {
  for (const char* program : {"sft_train", "evaluate"})
    if (!std::filesystem::exists(testing::bin(program)))
      GTEST_SKIP() << program << " is not built: its configs cannot be checked";
  for (const auto& e : std::filesystem::directory_iterator(std::string(STRATA_SOURCE_DIR) + "/configs")) {
    if (e.path().extension() != ".json") continue;
    const std::string name = e.path().filename().string();
    SCOPED_TRACE(e.path().string());
    const std::string program = name.find("sft") != std::string::npos    ? "sft_train"
                                : name.find("eval") != std::string::npos ? "evaluate"
                                                                         : "grpo_train";
    if (program == "grpo_train") continue;
    const auto r = testing::run_command(testing::bin(program) + " --config " + e.path().string() + " --print-config");
    EXPECT_EQ(r.rc, 0) << r.output;
  }
}

// ---- errors before any work --------------------------------------------------------------

// A free loopback port that nothing listens on.
int dead_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(Trainer, DaemonDownIsReportedBeforeAnyWork) {
  TrainWorld s;
  auto c = s.config("down", 1);
  const std::string base = "http://127.0.0.1:" + std::to_string(dead_port());
  c.retriever = base + "/retrieve";
  const auto t0 = std::chrono::steady_clock::now();
  const auto e = testing::error_of([&] { train_grpo(c); });
  EXPECT_NE(e.find("retriever: cannot reach the retrieval daemon at " + base + "/health"), std::string::npos) << e;
  EXPECT_NE(e.find("retrieval_server"), std::string::npos) << "says how to start one: " << e;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_FALSE(std::filesystem::exists(c.out_dir)) << "nothing was started";
}

TEST(Trainer, MissingModelOrTokenizerIsReportedFirst) {
  testing::TempDir dir;
  TrainerConfig c;
  c.model = dir.file("nope");
  c.train_data = dir.file("train.jsonl");
  c.retriever = "http://127.0.0.1:" + std::to_string(dead_port()) + "/retrieve";
  c.out_dir = dir.file("out");
  EXPECT_NE(testing::error_of([&] { train_grpo(c); }).find("model: model directory '" + c.model + "' does not exist"),
            std::string::npos);
  // Weights but no tokenizer.json.
  auto mc = agent::make_tiny_config(64);
  mc.hidden_size = 16;
  mc.intermediate_size = 32;
  mc.num_hidden_layers = 1;
  mc.head_dim = 4;
  agent::save_model(agent::init_random_model(mc, 1), dir.file("m"));
  c.model = dir.file("m");
  EXPECT_NE(testing::error_of([&] { train_grpo(c); }).find("has no tokenizer.json"), std::string::npos);
  // A device that is not there.
  c.device = "cuda:9";
  const auto e = testing::error_of([&] { train_grpo(c); });
  EXPECT_NE(e.find("device: "), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(c.out_dir));
}

// ---- kill -9 while a checkpoint is being written ------------------------------------------


TEST(Trainer, KilledMidCheckpointKeepsThePreviousOneAndResumes) {
  TrainWorld s;
  auto cfg = with_entropy(s, "killed", 3);
  cfg.save_every = 1;
  const std::string cfg_file = s.dir.file("killed.json");
  testing::write_file(cfg_file, config::to_json(cfg).dump(2));
  const std::string ckpts = cfg.out_dir + "/checkpoints";
  const std::string marker = ckpts + "/.tmp_step_000002.paused";
  {
    testing::ChildProcess run({testing::bin("grpo_train"), "--config", cfg_file}, s.dir.file("killed.log"),
                              {"STRATA_TEST_PAUSE_IN_CHECKPOINT=2"});
    ASSERT_GT(run.pid(), 0) << "cannot start " << testing::bin("grpo_train");
    const auto t0 = std::chrono::steady_clock::now();
    while (!std::filesystem::exists(marker)) {
      const int rc = run.poll();
      ASSERT_EQ(rc, -1) << "grpo_train ended (" << rc << ") before the pause:\n" << testing::read_file(s.dir.file("killed.log"));
      ASSERT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 50.0)
          << testing::read_file(s.dir.file("killed.log"));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(kill(run.pid(), SIGKILL), 0);
    EXPECT_EQ(run.wait(), 128 + SIGKILL);
  }
  // The previous checkpoint is whole; the one being written is only a temporary folder.
  EXPECT_FALSE(std::filesystem::exists(ckpts + "/step_000002"));
  EXPECT_TRUE(std::filesystem::exists(ckpts + "/.tmp_step_000002/model/model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(ckpts + "/.tmp_step_000002/state.json"));
  const auto state = nlohmann::json::parse(testing::read_file(ckpts + "/step_000001/state.json"));
  EXPECT_EQ(state["step"], 1);
  EXPECT_TRUE(std::filesystem::exists(ckpts + "/step_000001/optimizer.pt"));
  EXPECT_EQ(agent::load_model(ckpts + "/step_000001/model").config().hidden_size, 32);

  // --resume continues from step 1, removes the leftover, and ends where 3 straight steps end.
  {
    testing::ChildProcess resume({testing::bin("grpo_train"), "--config", cfg_file, "--resume"},
                                 s.dir.file("resume.log"));
    ASSERT_EQ(resume.wait(), 0) << testing::read_file(s.dir.file("resume.log"));
  }
  const std::string log = testing::read_file(s.dir.file("resume.log"));
  EXPECT_NE(log.find("resuming from " + ckpts + "/step_000001 (step 1)"), std::string::npos) << log;
  for (const auto& e : std::filesystem::directory_iterator(ckpts))
    EXPECT_NE(e.path().filename().string().rfind(".tmp_", 0), 0u) << "leftover " << e.path();
  EXPECT_TRUE(std::filesystem::exists(ckpts + "/step_000003/state.json"));
  std::ifstream in(cfg.out_dir + "/metrics.jsonl");
  std::string line;
  std::vector<int> steps;
  while (std::getline(in, line)) steps.push_back(nlohmann::json::parse(line)["step"].get<int>());
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3})) << "each step logged once";
  train_grpo(with_entropy(s, "straight", 3));
  EXPECT_TRUE(testing::read_file(s.dir.file("straight/final/model.safetensors")) ==
              testing::read_file(cfg.out_dir + "/final/model.safetensors"))
      << "killed + resumed must end with the weights of 3 straight steps";
}

// ---- TensorBoard's own reader --------------------------------------------------------------

std::string python() {
  const char* env = std::getenv("STRATA_PYTHON");
  return env != nullptr ? env : "python3";
}

TEST(Trainer, TensorBoardEventsLoadInEventAccumulator) {
  if (testing::run_command(python() + " -c 'import tensorboard'").rc != 0)
    GTEST_SKIP() << "Python package tensorboard is missing (" << python()
                 << "); scripts/setup.sh installs it, or: python3 -m pip install tensorboard==2.21.0";
  TrainWorld s;
  train_grpo(s.config("tb", 2));
  const std::string script = s.dir.file("read_tb.py");
  testing::write_file(script, R"(import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
ea.Reload()
print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))
)");
  const auto r = testing::run_command(python() + " " + script + " " + s.dir.file("tb/tb"));
  ASSERT_EQ(r.rc, 0) << r.output;
  const std::string& out = r.output;
  const auto tags = nlohmann::json::parse(out.substr(out.find('{')));
  std::ifstream in(s.dir.file("tb/metrics.jsonl"));
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const int step = j["step"];
    ++lines;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "step") continue;
      ASSERT_TRUE(tags.contains(it.key())) << "tag " << it.key() << " missing from TensorBoard's view";
      bool found = false;
      for (const auto& sv : tags[it.key()]) {
        if (sv[0] != step) continue;
        found = true;
        const double want = it.value().get<double>();
        EXPECT_NEAR(sv[1].get<double>(), want, 1e-6 * std::max(1.0, std::abs(want))) << it.key();
      }
      EXPECT_TRUE(found) << it.key() << " at step " << step;
    }
  }
  EXPECT_EQ(lines, 2);
  for (const char* k : {"reward/mean", "lr", "time/rollout_s", "time/update_s", "update/skipped_zero_adv"})
    EXPECT_EQ(tags[k].size(), 2u) << k;
}

// ---- precision ---------------------------------------------------------------------------

// bf16 autocast and bf16_master run end to end here on the CPU (slow there; meant for CUDA).
TEST(Trainer, Bf16PrecisionsTrainOnCpu) {
  TrainWorld s;
  const auto init = testing::read_file(s.dir.file("tiny/model.safetensors"));
  for (const char* prec : {"bf16", "bf16_master"}) {
    auto c = with_entropy(s, std::string("p_") + prec, 2);
    c.precision = *config::parse_enum<Precision>(prec);
    const auto sum = train_grpo(c);
    EXPECT_EQ(sum.steps, 2) << prec;
    const auto out = agent::load_model(s.dir.file(std::string("p_") + prec + "/final"));
    EXPECT_EQ(out.dtype(), torch::kFloat32) << "the final model is written in fp32";
    for (const auto& p : out.parameters()) ASSERT_TRUE(torch::isfinite(p).all().item<bool>()) << prec;
    EXPECT_TRUE(testing::read_file(s.dir.file(std::string("p_") + prec + "/final/model.safetensors")) != init) << prec;
  }
}

// grpo_train on CUDA in each precision (skipped without a GPU).
TEST(TrainerCuda, ThreeStepsInEachPrecision) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible";
  TrainWorld s;
  for (const char* prec : {"fp32", "bf16", "bf16_master"}) {
    auto c = with_entropy(s, std::string("cuda_") + prec, 3);
    c.device = "cuda";
    c.precision = *config::parse_enum<Precision>(prec);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(train_grpo(c).steps, 3) << prec;
    std::printf("[cuda] %s: 3 steps in %.1f s\n", prec,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    const auto out = agent::load_model(s.dir.file(std::string("cuda_") + prec + "/final"));
    for (const auto& p : out.parameters()) ASSERT_TRUE(torch::isfinite(p).all().item<bool>()) << prec;
  }
}

}  // namespace
}  // namespace strata::rl
