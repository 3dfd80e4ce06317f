// The training fixture the trainer and data-parallel tests share: a small world (seeded), its
// BM25 index, a BPE tokenizer trained on its corpus and a one-layer random policy, written under
// `dir` (world/, index/, tiny/). Each test binary builds it once through tests/shared_fixture.h.
#pragma once

#include <cstdint>
#include <string>

#include "agent/checkpoint.h"
#include "agent/model.h"
#include "agent/tokenizer/bpe_trainer.h"
#include "env/world/world.h"
#include "tests/loopback_daemon.h"

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

}  // namespace strata::testing
