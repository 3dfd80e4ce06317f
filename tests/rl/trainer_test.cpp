// grpo_train's loop end to end on a tiny random policy, a small world and a real daemon.
#include "rl/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <fstream>
#include <set>

#include "agent/bpe_trainer.h"
#include "agent/checkpoint.h"
#include "agent/model.h"
#include "core/error.h"
#include "env/rollout_file.h"
#include "env/world.h"
#include "retrieval/bm25_builder.h"
#include "retrieval/bm25_index.h"
#include "retrieval/server.h"
#include "tests/test_util.h"

namespace strata::rl {
namespace {

// A small world, its index served on loopback, a world tokenizer and a tiny random policy.
struct TrainWorld {
  testing::TempDir dir;
  std::unique_ptr<retrieval::Bm25Index> index;
  std::unique_ptr<retrieval::RetrievalServer> server;
  TrainWorld() {
    setenv("STRATA_NO_PROGRESS", "1", 1);
    env::WorldOptions w;
    w.seed = 2;
    w.entities = 300;
    w.train = 40;
    w.dev = 10;
    w.test = 10;
    env::write_world(w, dir.file("world"));
    retrieval::BuildOptions bo;
    bo.threads = 1;
    retrieval::build_index(dir.file("world/corpus.jsonl"), dir.file("index"), bo);
    index = std::make_unique<retrieval::Bm25Index>(dir.file("index"));
    retrieval::ServerOptions so;
    so.port = 0;
    so.io_threads = 1;
    so.search_threads = 1;
    server = std::make_unique<retrieval::RetrievalServer>(*index, so);
    server->start();
    agent::BpeTrainerOptions to;
    to.vocab_size = 600;
    to.show_progress = false;
    agent::BpeTrainer bpe(to);
    bpe.add_file(dir.file("world/corpus.jsonl"));
    agent::write_tokenizer_files(bpe.train(), to, dir.file("tiny/tokenizer.json"));
    const auto tok = agent::Tokenizer::from_file(dir.file("tiny/tokenizer.json"));
    auto cfg = agent::make_tiny_config(tok.vocab_size());
    cfg.hidden_size = 32;
    cfg.intermediate_size = 64;
    cfg.num_hidden_layers = 1;
    cfg.head_dim = 8;
    cfg.eos_token_ids = {*tok.eos_id()};
    agent::save_model(agent::init_random_model(cfg, 1), dir.file("tiny"), dir.file("tiny"));
  }
  ~TrainWorld() { server->stop(); }
  TrainerConfig config(const std::string& out, int steps) const {
    TrainerConfig tc;
    tc.model = dir.file("tiny");
    tc.train_data = dir.file("world/train.jsonl");
    tc.retriever = "http://127.0.0.1:" + std::to_string(server->port()) + "/retrieve";
    tc.out_dir = dir.file(out);
    tc.steps = steps;
    tc.prompts_per_step = 3;
    tc.threads = 1;
    tc.lr = 1e-3;
    tc.rollout.samples_per_prompt = 2;
    tc.rollout.max_batch = 6;
    tc.rollout.max_seq_len = 1024;
    tc.rollout.env.max_turn_tokens = 24;
    tc.rollout.env.max_obs_tokens = 80;
    tc.rollout.env.max_response_tokens = 400;
    tc.update.mini_batch = 6;
    tc.update.micro_batch = 3;
    return tc;
  }
};

TEST(Trainer, ResumeIsExact) {
  TrainWorld s;
  // An entropy bonus gives a gradient even when every reward of the untrained policy is 0.
  auto with_entropy = [&](const std::string& out, int steps) {
    auto c = s.config(out, steps);
    c.loss.entropy_coef = 0.05;
    return c;
  };
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
    for (const char* k : {"reward/mean", "loss/pg", "loss/kl", "grad_norm", "rollout/tokens_per_s",
                          "time/rollout_s", "time/update_s"})
      EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(lines, 2);
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
  tc.loss.aggregation = "mean";
  EXPECT_THROW(tc.validate(), Error);
}

}  // namespace
}  // namespace strata::rl
