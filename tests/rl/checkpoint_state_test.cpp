// Checkpoint state on disk (rl/checkpoint_state.h): write, find, trim, read back, resume diff.
#include "rl/checkpoint_state.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/checkpoint.h"
#include "agent/model.h"
#include "core/config.h"
#include "core/rng.h"
#include "tests/test_util.h"

namespace strata::rl {
namespace {

namespace fs = std::filesystem;

TEST(CheckpointState, WriteFindTrimAndReadBack) {
  testing::TempDir dir;
  auto mc = agent::make_tiny_config(64);
  mc.hidden_size = 16;
  mc.intermediate_size = 32;
  mc.num_hidden_layers = 1;
  mc.head_dim = 4;
  auto model = agent::init_random_model(mc, 1);
  model.set_requires_grad(true);
  torch::optim::AdamW optim(model.parameters(), torch::optim::AdamWOptions(1e-3));
  TrainerConfig cfg;
  cfg.model = dir.file("m");
  cfg.train_data = dir.file("train.jsonl");
  cfg.keep_checkpoints = 2;
  const std::string root = dir.file("checkpoints");
  EXPECT_EQ(newest_checkpoint(root), "") << "no folder yet";
  CheckpointState st;
  st.order = {3, 1, 2, 0};
  st.rng = Rng(5).state();  // read_checkpoint_state checks that it is one
  for (int step = 1; step <= 3; ++step) {
    st.step = step;
    st.cursor = static_cast<size_t>(step);
    write_checkpoint(root, cfg, model, optim, st);
  }
  const std::string newest = newest_checkpoint(root);
  EXPECT_EQ(fs::path(newest).filename(), "step_000003");
  EXPECT_FALSE(fs::exists(root + "/step_000001")) << "only the newest keep_checkpoints stay";
  EXPECT_TRUE(fs::exists(root + "/step_000002"));
  for (const char* f : {"model/config.json", "model/model.safetensors", "optimizer.pt", "state.json", "config.json"})
    EXPECT_TRUE(fs::exists(newest + "/" + f)) << f;
  const CheckpointState back = read_checkpoint_state(newest, st.order.size());
  EXPECT_EQ(back.step, 3);
  EXPECT_EQ(back.cursor, 3u);
  EXPECT_EQ(back.order, st.order);
  EXPECT_EQ(back.rng, st.rng);
  // The config written beside it reads back into the same config.
  const auto saved = config::from_document<TrainerConfig>(config::load_document(newest + "/config.json"));
  EXPECT_EQ(config::to_json(saved), config::to_json(cfg));

  // A folder left by a run killed mid-write is neither found nor kept.
  fs::create_directories(root + "/.tmp_step_000004/model");
  EXPECT_EQ(newest_checkpoint(root), newest);
  remove_unfinished_checkpoints(root);
  EXPECT_FALSE(fs::exists(root + "/.tmp_step_000004"));
}

TEST(CheckpointState, ResumeDiffNamesKeysAndSteps) {
  TrainerConfig saved;
  TrainerConfig now = saved;
  now.steps = 20;
  now.out_dir = "elsewhere";
  now.device = "cuda";
  EXPECT_TRUE(resume_config_diff(saved, now).empty()) << "resumable keys";
  now.update.mini_batch = 3;
  now.advantage.estimator = Estimator::kGrpo;
  EXPECT_EQ(resume_config_diff(saved, now), (std::vector<std::string>{"advantage.estimator", "update.mini_batch"}));
  now = saved;
  now.lr_schedule = LrSchedule::kCosine;
  saved.lr_schedule = LrSchedule::kCosine;
  now.steps = saved.steps + 2;
  EXPECT_EQ(resume_config_diff(saved, now),
            (std::vector<std::string>{"steps (the LR schedule depends on it: 10 -> 12)"}));
}

TEST(CheckpointState, TrimMetricsDropsLaterSteps) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  std::ofstream(path) << "{\"step\": 1}\n{\"step\": 2}\n{\"step\": 3}\n{\"step\": 4, \"cut";
  trim_metrics(path, 2);
  EXPECT_EQ(testing::read_file(path), "{\"step\": 1}\n{\"step\": 2}\n");
  trim_metrics(dir.file("absent.jsonl"), 1);
  EXPECT_FALSE(fs::exists(dir.file("absent.jsonl")));
}

}  // namespace
}  // namespace strata::rl
