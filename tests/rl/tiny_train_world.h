// The training fixture the trainer and data-parallel tests share: a small world (seeded), its
// BM25 index, a BPE tokenizer trained on its corpus and a one-layer random policy, written under
// `dir` (world/, index/, tiny/). Each test binary builds it once through tests/shared_fixture.h;
// TinyTrainWorld gives each test its own copy of the world and policy and serves the index.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "agent/checkpoint.h"
#include "agent/model.h"
#include "agent/tokenizer/bpe_trainer.h"
#include "env/world/world.h"
#include "rl/trainer_config.h"
#include "tests/loopback_daemon.h"
#include "tests/shared_fixture.h"
#include "tests/test_util.h"

namespace strata::testing {

inline void build_tiny_train_world(const std::string& dir, uint64_t world_seed) {
  env::WorldOptions w;
  w.seed = world_seed;
  w.entities = 300;
  w.train = 40;
  w.dev = 10;
  w.test = 10;
  env::write_world(w, dir + "/world");
  LoopbackDaemon::build_index(dir + "/world/corpus.jsonl", dir + "/index");
  agent::BpeTrainerOptions to;
  to.vocab_size = 600;
  to.show_progress = false;
  agent::BpeTrainer bpe(to);
  bpe.add_file(dir + "/world/corpus.jsonl");
  agent::write_tokenizer_files(bpe.train(), to, dir + "/tiny/tokenizer.json");
  const auto tok = agent::Tokenizer::from_file(dir + "/tiny/tokenizer.json");
  auto cfg = agent::make_tiny_config(tok.vocab_size());
  cfg.hidden_size = 32;
  cfg.intermediate_size = 64;
  cfg.num_hidden_layers = 1;
  cfg.head_dim = 8;
  cfg.eos_token_ids = {*tok.eos_id()};
  agent::save_model(agent::init_random_model(cfg, 1), dir + "/tiny", dir + "/tiny");
}

// The fixture named `fixture` (built once per binary from world seed `world_seed`), its world/
// and tiny/ copied into this test's folder (where its runs write), its index served on loopback.
struct TinyTrainWorld {
  TempDir dir;
  std::unique_ptr<LoopbackDaemon> daemon;
  TinyTrainWorld(const std::string& fixture, uint64_t world_seed) {
    setenv("STRATA_NO_PROGRESS", "1", 1);
    const std::string shared = shared_fixture_dir(
        fixture, [world_seed](const std::string& d) { build_tiny_train_world(d, world_seed); });
    copy_tree(shared + "/world", dir.file("world"));
    copy_tree(shared + "/tiny", dir.file("tiny"));
    daemon = std::make_unique<LoopbackDaemon>(shared + "/index");
  }
  // What every trainer test on this world sets: the policy, data, daemon and output folder, one
  // thread, lr 1e-3, and short turns; the batch shape is each test's own.
  rl::TrainerConfig base_config(const std::string& out, int steps) const {
    rl::TrainerConfig tc;
    tc.model = dir.file("tiny");
    tc.train_data = dir.file("world/train.jsonl");
    tc.retriever = daemon->url();
    tc.out_dir = dir.file(out);
    tc.steps = steps;
    tc.threads = 1;
    tc.lr = 1e-3;
    tc.rollout.max_seq_len = 1024;
    tc.rollout.env.max_turn_tokens = 24;
    tc.rollout.env.max_obs_tokens = 80;
    return tc;
  }
};

}  // namespace strata::testing
