// rollout_bench: wall time of a rollout phase, async engine vs a Search-R1-style synchronous
// baseline, with 0 ms and with added retrieval latency. Everything is built here: the built-in
// world, its BM25 index, two in-process daemons (one with --delay-ms), a world tokenizer, and the
// tiny policy given the protocol by a short warm start. Driven by scripts/bench/rollout.sh.
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "agent/tokenizer/bpe_trainer.h"
#include "agent/model.h"
#include "core/cli.h"
#include "data/qa.h"
#include "env/world/world.h"
#include "retrieval/bm25_builder.h"
#include "retrieval/bm25_index.h"
#include "retrieval/server.h"
#include "rl/rollout.h"
#include "rl/warm_start.h"

using namespace strata;

int main(int argc, char** argv) {
  CLI::App app{"Rollout phase wall time: async engine vs synchronous baseline, 0 ms vs added "
               "retrieval latency.", "rollout_bench"};
  cli::CommonOptions common;
  cli::add_common(app, common);
  std::string work = "/tmp/strata-rollout-bench";
  int prompts = 32, samples = 5, delay_ms = 50, threads = 1, demos = 96, epochs = 3;
  app.add_option("--work", work, "scratch directory")->capture_default_str();
  app.add_option("--prompts", prompts, "prompts per phase")->capture_default_str();
  app.add_option("--samples", samples, "samples per prompt")->capture_default_str();
  app.add_option("--delay-ms", delay_ms, "added retrieval latency")->capture_default_str();
  app.add_option("--threads", threads, "torch intra-op threads")->capture_default_str();
  app.add_option("--demos", demos, "warm-start demonstrations")->capture_default_str();
  app.add_option("--epochs", epochs, "warm-start epochs")->capture_default_str();
  return cli::run_main(app, argc, argv, [&] {
    cli::apply_common(common);
    at::set_num_threads(threads);
    namespace fs = std::filesystem;
    fs::create_directories(work);
    env::WorldOptions w;
    if (!fs::exists(work + "/world/test.jsonl")) env::write_world(w, work + "/world");
    if (!fs::exists(work + "/index")) retrieval::build_index(work + "/world/corpus.jsonl", work + "/index", {});
    retrieval::Bm25Index index(work + "/index");
    auto start = [&](int delay) {
      retrieval::ServerOptions so;
      so.port = 0;
      so.delay_ms = delay;
      auto s = std::make_unique<retrieval::RetrievalServer>(index, so);
      s->start();
      return s;
    };
    auto fast = start(0);
    auto slow = start(delay_ms);
    auto client_for = [](const retrieval::RetrievalServer& s) {
      retrieval::ClientOptions co;
      co.url = "http://127.0.0.1:" + std::to_string(s.port()) + "/retrieve";
      return std::make_unique<retrieval::RetrievalClient>(co);
    };
    auto fast_client = client_for(*fast);
    auto slow_client = client_for(*slow);

    agent::BpeTrainerOptions to;
    to.vocab_size = 4096;
    agent::BpeTrainer trainer(to);
    trainer.add_file(work + "/world/corpus.jsonl");
    trainer.add_file(work + "/world/train.jsonl");
    const auto tok = agent::Tokenizer::from_json(agent::tokenizer_json(trainer.train(), to), "world");
    auto cfg = agent::make_tiny_config(tok.vocab_size());
    cfg.eos_token_ids = {*tok.eos_id()};
    auto model = agent::init_random_model(cfg, 1);

    rl::RolloutOptions ro;
    ro.samples_per_prompt = samples;
    ro.max_batch = 64;
    ro.max_seq_len = 1536;
    ro.env.max_turn_tokens = 64;
    ro.env.max_obs_tokens = 200;
    ro.env.max_response_tokens = 1200;
    const auto train = data::read_qa_file(work + "/world/train.jsonl");
    std::vector<data::QaRecord> demo_q;
    for (const auto& q : train)
      if (q.metadata.value("hops", 0) <= 2 && static_cast<int>(demo_q.size()) < demos) demo_q.push_back(q);
    const auto ds = rl::make_demonstrations(demo_q, tok, *fast_client, ro.env, {});
    std::vector<rl::SftExample> ex;
    for (const auto& d : ds) ex.push_back(d.example);
    rl::SftOptions so;
    so.epochs = epochs;
    so.lr = 2e-3;
    const auto rep = rl::sft_train(model, ex, so);
    std::fprintf(stderr, "warm start: %d steps, loss %.3f -> %.3f\n", rep.steps, rep.first_loss, rep.last_loss);

    const auto test = data::read_qa_file(work + "/world/test.jsonl");
    const std::vector<data::QaRecord> qs(test.begin(), test.begin() + std::min<size_t>(prompts, test.size()));
    struct Row {
      const char* name;
      bool sync;
      retrieval::RetrievalClient* client;
      rl::RolloutMetrics m;
      double searches = 0;
    };
    std::vector<Row> rows = {{"async, 0 ms", false, fast_client.get(), {}},
                             {"async, +delay", false, slow_client.get(), {}},
                             {"sync, 0 ms", true, fast_client.get(), {}},
                             {"sync, +delay", true, slow_client.get(), {}}};
    for (auto& r : rows) {
      ro.sync_search = r.sync;
      ro.seed = 7;
      const auto b = rl::run_rollouts(model, tok, *r.client, qs, ro);
      r.m = b.metrics;
      for (const auto& t : b.trajectories) r.searches += t.num_searches();
      r.searches /= static_cast<double>(b.trajectories.size());
      std::printf("%-14s %8.2f s  gen %7.2f s  wait %6.2f s  %7.1f tok/s  occupancy %.2f  "
                  "searches/traj %.2f  retrieval p50 %.1f ms p99 %.1f ms\n",
                  r.name, r.m.seconds, r.m.generate_seconds, r.m.wait_seconds, r.m.tokens_per_s,
                  r.m.mean_occupancy, r.searches, r.m.retrieval_p50_ms, r.m.retrieval_p99_ms);
      std::fflush(stdout);
    }
    std::printf("rollout: latency_hiding=%.2f async_vs_sync=%.2f tokens_per_s=%.0f\n",
                rows[1].m.seconds / rows[0].m.seconds, rows[3].m.seconds / rows[1].m.seconds,
                rows[0].m.tokens_per_s);
    fast->stop();
    slow->stop();
    return 0;
  });
}
