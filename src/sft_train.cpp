// sft_train: the warm start. Supervised fine-tuning of a policy on search-agent trajectories,
// with the loss on the agent's own tokens only (never the prompt or retrieved text).
//
//   sft_train --config configs/demo_sft.json --set retriever=http://127.0.0.1:8000/retrieve
//       source = "world": demonstrations made from the built-in world's ground truth through the
//       real retrieval daemon, with the imperfections of `demonstrator` (rl/warm_start.h).
//   sft_train --config my_sft.json --set source=jsonl --set trajectories=traj.jsonl
//       fine-tunes any Hugging Face checkpoint on user trajectories (format: rl/warm_start.h).
//
// Writes OUT/model (Hugging Face layout, loadable by grpo_train, evaluate and transformers),
// OUT/demonstrations.jsonl (world source; the same format source=jsonl reads), OUT/sft_log.jsonl
// (loss per step), OUT/config.json, and OUT/DONE last, so a finished warm start can be reused.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "agent/checkpoint.h"
#include "agent/tokenizer/tokenizer.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "data/corpus.h"
#include "data/qa.h"
#include "retrieval/client.h"
#include "rl/warm_start.h"

namespace {

struct SftTrainConfig {
  std::string model;                 // initial policy (Hugging Face directory)
  std::string out_dir = "runs/sft";  // OUT/model and the logs
  std::string source = "world";      // world (demonstrator) or jsonl (user trajectories)
  std::string train_data;            // QA file with the world's `entities` (source = world)
  std::string trajectories;          // JSONL trajectories (source = jsonl)
  std::string corpus;                // passages (source = corpus: language modelling on them)
  int chunk_tokens = 128;            // source = corpus: passages are cut into pieces this long
  std::string retriever = "http://127.0.0.1:8000/retrieve";
  int max_examples = 0;              // use at most this many questions or trajectories (0 = all)
  int first_turn_examples = 0;       // extra short examples: questions cut after their first turn
  int threads = 0;                   // torch intra-op threads (0 = LibTorch's default)
  std::string device = "cpu";        // cpu, cuda or cuda:N
  int save_every = 0;                // also save OUT/step_NNNNNN/ every this many steps (0 = off)
  strata::env::SearchEnvOptions env;
  strata::rl::DemonstratorOptions demonstrator;
  strata::rl::SftOptions sft;

  template <class V>
  void visit(V& v) {
    v("model", model, "initial policy: Hugging Face model directory");
    v("out_dir", out_dir, "output directory (OUT/model is the warm-started policy)");
    v("source", source, "world (demonstrations through the daemon) or jsonl (user trajectories)");
    v("train_data", train_data, "questions for the demonstrator (source = world)");
    v("trajectories", trajectories, "JSONL trajectories (source = jsonl)");
    v("corpus", corpus, "corpus.jsonl for source = corpus (next-token loss on every passage token)");
    v("chunk_tokens", chunk_tokens, "source = corpus: tokens per training piece");
    v("retriever", retriever, "retrieval endpoint (source = world)");
    v("max_examples", max_examples, "use at most this many questions/trajectories (0 = all)");
    v("first_turn_examples", first_turn_examples,
      "extra examples made of a question and its first turn only (cheap practice at copying the "
      "entity into the query; source = world)");
    v("threads", threads, "torch threads (0 = default)");
    v("device", device, "cpu, cuda or cuda:N");
    v("save_every", save_every, "also save the policy every N steps to OUT/step_NNNNNN (0 = off)");
    v("env", env, "search environment (prompt, limits) of the demonstrations");
    v("demonstrator", demonstrator, "demonstrator imperfections (source = world)");
    v("sft", sft, "supervised training");
  }
  void validate() const {
    STRATA_CHECK(!model.empty(), "model: a model directory is required");
    STRATA_CHECK(source == "world" || source == "jsonl" || source == "corpus",
                 "source: expected world, jsonl or corpus, got '" << source << "'");
    if (source == "corpus") STRATA_CHECK(!corpus.empty(), "corpus: required when source = corpus");
    STRATA_CHECK(chunk_tokens >= 8, "chunk_tokens: expected >= 8, got " << chunk_tokens);
    if (source == "world") STRATA_CHECK(!train_data.empty(), "train_data: required when source = world");
    if (source == "jsonl") STRATA_CHECK(!trajectories.empty(), "trajectories: required when source = jsonl");
    STRATA_CHECK(save_every >= 0, "save_every: expected >= 0, got " << save_every);
    STRATA_CHECK(max_examples >= 0, "max_examples: expected >= 0, got " << max_examples);
    STRATA_CHECK(first_turn_examples >= 0, "first_turn_examples: expected >= 0, got " << first_turn_examples);
    env.validate();
    demonstrator.validate();
    sft.validate();
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Warm start: supervised fine-tuning of a search-agent policy on demonstrations "
               "(built-in world) or user trajectories (JSONL), loss on agent tokens only.",
               "sft_train"};
  strata::cli::CommonOptions common;
  strata::cli::ConfigOptions cfg_opts;
  strata::cli::add_common(app, common);
  strata::cli::add_config(app, cfg_opts);
  bool list_keys = false;
  app.add_flag("--list-keys", list_keys, "list every config key with its default and exit");
  return strata::cli::run_main(app, argc, argv, [&] {
    namespace fs = std::filesystem;
    using namespace strata;
    cli::apply_common(common);
    if (list_keys) {
      std::printf("%s", config::describe_fields(SftTrainConfig{}).c_str());
      return 0;
    }
    const auto cfg = config::load<SftTrainConfig>(cfg_opts.config_file, cfg_opts.sets);
    if (cfg_opts.print_config) {
      std::printf("%s\n", config::to_json(cfg).dump(2).c_str());
      return 0;
    }
    if (cfg.threads > 0) at::set_num_threads(cfg.threads);
    STRATA_CHECK(fs::exists(cfg.model + "/config.json"),
                 "model: " << cfg.model << "/config.json not found");
    fs::create_directories(cfg.out_dir);
    fs::remove(cfg.out_dir + "/DONE");
    const auto tok = agent::Tokenizer::from_file(cfg.model + "/tokenizer.json");
    agent::LoadOptions lo;
    lo.dtype = "float32";  // trained in fp32 whatever the checkpoint's storage type
    lo.device = cfg.device;
    auto model = agent::load_model(cfg.model, lo);

    std::vector<rl::SftExample> examples;
    if (cfg.source == "world") {
      const auto all = data::read_qa_file(cfg.train_data);
      const size_t n = cfg.max_examples > 0 ? std::min(all.size(), static_cast<size_t>(cfg.max_examples)) : all.size();
      const std::vector<data::QaRecord> questions(all.begin(), all.begin() + n);
      retrieval::ClientOptions co;
      co.url = cfg.retriever;
      retrieval::RetrievalClient client(co);
      const auto demos = rl::make_demonstrations(questions, tok, client, cfg.env, cfg.demonstrator);
      std::ofstream out(cfg.out_dir + "/demonstrations.jsonl");
      std::map<int, std::pair<int, int>> by_searches;  // searches -> (count, correct)
      for (size_t i = 0; i < demos.size(); ++i) {
        const auto& d = demos[i];
        examples.push_back(d.example);
        nlohmann::json j;
        j["id"] = questions[i].id;
        j["question"] = questions[i].question;
        j["response"] = d.text;
        j["searches"] = d.searches;
        j["correct"] = d.correct;
        out << j.dump() << "\n";
        by_searches[d.searches].first++;
        by_searches[d.searches].second += d.correct;
      }
      // First turns of further questions: the prompt and the agent's first turn (up to the end of
      // its first trained run), without the retrieval that follows.
      if (cfg.first_turn_examples > 0) {
        std::vector<data::QaRecord> extra(all.begin() + n, all.end());
        if (extra.size() > static_cast<size_t>(cfg.first_turn_examples)) extra.resize(cfg.first_turn_examples);
        if (!extra.empty()) {
          const auto more = rl::make_demonstrations(extra, tok, client, cfg.env, cfg.demonstrator);
          for (const auto& d : more) {
            auto ex = d.example;
            size_t cut = 0;
            while (cut < ex.trained.size() && !ex.trained[cut]) ++cut;
            while (cut < ex.trained.size() && ex.trained[cut]) ++cut;
            ex.ids.resize(cut);
            ex.trained.resize(cut);
            examples.push_back(std::move(ex));
          }
          STRATA_LOG_INFO("{} first-turn examples from further questions", more.size());
        }
      }
      for (const auto& [s, cc] : by_searches)
        STRATA_LOG_INFO("demonstrations with {} searches: {} ({} with the gold answer)", s,
                        cc.first, cc.second);
    } else if (cfg.source == "corpus") {
      // Pretraining-style language modelling on the passages: every token is a target. Passages
      // repeat their names, which is practice at copying from context.
      data::CorpusReader reader(cfg.corpus);
      data::Passage p;
      while (reader.next(p)) {
        const auto ids = tok.encode(p.contents, false);
        for (size_t i = 0; i + 1 < ids.size(); i += cfg.chunk_tokens) {
          rl::SftExample ex;
          ex.ids.assign(ids.begin() + i, ids.begin() + std::min(ids.size(), i + cfg.chunk_tokens));
          ex.trained.assign(ex.ids.size(), 1);
          ex.trained[0] = 0;
          if (ex.ids.size() >= 2) examples.push_back(std::move(ex));
        }
        if (cfg.max_examples > 0 && examples.size() >= static_cast<size_t>(cfg.max_examples)) break;
      }
    } else {
      examples = rl::read_sft_jsonl(cfg.trajectories, tok, cfg.demonstrator.chat, cfg.env);
      if (cfg.max_examples > 0 && examples.size() > static_cast<size_t>(cfg.max_examples))
        examples.resize(cfg.max_examples);
    }
    int64_t trained = 0, total = 0;
    for (const auto& e : examples) {
      total += static_cast<int64_t>(e.ids.size());
      for (auto t : e.trained) trained += t;
    }
    STRATA_LOG_INFO("{} examples, {} tokens, {} of them trained", examples.size(), total, trained);

    std::ofstream log(cfg.out_dir + "/sft_log.jsonl");
    const auto report = rl::sft_train(model, examples, cfg.sft, [&](int step, double loss, int64_t tokens) {
      log << nlohmann::json{{"step", step}, {"loss", loss}, {"tokens", tokens}}.dump() << std::endl;
      if (cfg.save_every > 0 && step % cfg.save_every == 0) {
        char name[32];
        std::snprintf(name, sizeof name, "/step_%06d", step);
        torch::NoGradGuard ng;
        agent::save_model(model, cfg.out_dir + name, cfg.model);
      }
    });
    {
      std::ofstream c(cfg.out_dir + "/config.json");
      c << config::to_json(cfg).dump(2) << "\n";
    }
    agent::save_model(model, cfg.out_dir + "/model", cfg.model);
    std::ofstream(cfg.out_dir + "/DONE") << report.steps << "\n";
    std::printf("sft: %d steps, loss %.3f -> %.3f; policy in %s/model\n", report.steps,
                report.first_loss, report.last_loss, cfg.out_dir.c_str());
    return 0;
  });
}
