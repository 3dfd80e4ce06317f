#include "rl/warm_start_run.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "agent/checkpoint.h"
#include "agent/runtime.h"
#include "core/error.h"
#include "core/log.h"
#include "data/corpus.h"
#include "data/qa.h"
#include "retrieval/client.h"
#include "rl/distributed.h"

namespace strata::rl {

void WarmStartConfig::validate() const {
  STRATA_CHECK(!model.empty(), "model: a model directory is required");
  if (source == SftSource::kCorpus) STRATA_CHECK(!corpus.empty(), "corpus: required when source = corpus");
  STRATA_CHECK(chunk_tokens >= 8, "chunk_tokens: expected >= 8, got " << chunk_tokens);
  if (source == SftSource::kWorld) STRATA_CHECK(!train_data.empty(), "train_data: required when source = world");
  if (source == SftSource::kJsonl) STRATA_CHECK(!trajectories.empty(), "trajectories: required when source = jsonl");
  STRATA_CHECK(agent::is_device_name(device), "device: expected cpu, cuda or cuda:N, got \"" << device << "\"");
  STRATA_CHECK(save_every >= 0, "save_every: expected >= 0, got " << save_every);
  STRATA_CHECK(max_examples >= 0, "max_examples: expected >= 0, got " << max_examples);
  STRATA_CHECK(first_turn_examples >= 0, "first_turn_examples: expected >= 0, got " << first_turn_examples);
  config::validate_nested("env", env);
  config::validate_nested("demonstrator", demonstrator);
  config::validate_nested("sft", sft);
}

std::vector<SftExample> build_sft_examples(const WarmStartConfig& cfg, const agent::Tokenizer& tok,
                                           const std::string& demonstrations_path) {
std::vector<SftExample> examples;
if (cfg.source == SftSource::kWorld) {
    const auto all = data::read_qa_file(cfg.train_data);
    const size_t n = cfg.max_examples > 0 ? std::min(all.size(), static_cast<size_t>(cfg.max_examples)) : all.size();
    const std::vector<data::QaRecord> questions(all.begin(), all.begin() + n);
    retrieval::ClientOptions co;
    co.url = cfg.retriever;
    retrieval::RetrievalClient client(co);
    const auto demos = make_demonstrations(questions, tok, client, cfg.env, cfg.demonstrator);
    std::ofstream out(demonstrations_path);
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
        const auto more = make_demonstrations(extra, tok, client, cfg.env, cfg.demonstrator);
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
  } else if (cfg.source == SftSource::kCorpus) {
    // Pretraining-style language modelling on the passages: every token is a target. Passages
    // repeat their names, which is practice at copying from context.
    data::CorpusReader reader(cfg.corpus);
    data::Passage p;
    while (reader.next(p)) {
      const auto ids = tok.encode(p.contents, false);
      for (size_t i = 0; i + 1 < ids.size(); i += cfg.chunk_tokens) {
        SftExample ex;
        ex.ids.assign(ids.begin() + i, ids.begin() + std::min(ids.size(), i + cfg.chunk_tokens));
        ex.trained.assign(ex.ids.size(), 1);
        ex.trained[0] = 0;
        if (ex.ids.size() >= 2) examples.push_back(std::move(ex));
      }
      if (cfg.max_examples > 0 && examples.size() >= static_cast<size_t>(cfg.max_examples)) break;
    }
  } else {
    examples = read_sft_jsonl(cfg.trajectories, tok, cfg.demonstrator.chat, cfg.env);
    if (cfg.max_examples > 0 && examples.size() > static_cast<size_t>(cfg.max_examples))
      examples.resize(cfg.max_examples);
  }
  return examples;
}

namespace {
// Examples as bytes (rank 0 builds them, the other ranks receive them): per example its length,
// the ids and the trained flags.
std::string pack_examples(const std::vector<SftExample>& examples) {
  std::string out;
  for (const auto& e : examples) {
    const uint64_t n = e.ids.size();
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out.append(reinterpret_cast<const char*>(e.ids.data()), n * sizeof(int32_t));
    out.append(reinterpret_cast<const char*>(e.trained.data()), n);
  }
  return out;
}
std::vector<SftExample> unpack_examples(const std::string& s) {
  std::vector<SftExample> out;
  size_t at = 0;
  while (at < s.size()) {
    uint64_t n = 0;
    STRATA_CHECK(at + sizeof n <= s.size(), "sft_train: rank 0's examples are cut short");
    std::memcpy(&n, s.data() + at, sizeof n);
    at += sizeof n;
    STRATA_CHECK(n * (sizeof(int32_t) + 1) <= s.size() - at, "sft_train: rank 0's examples are cut short");
    SftExample e;
    e.ids.resize(n);
    e.trained.resize(n);
    std::memcpy(e.ids.data(), s.data() + at, n * sizeof(int32_t));
    at += n * sizeof(int32_t);
    std::memcpy(e.trained.data(), s.data() + at, n);
    at += n;
    out.push_back(std::move(e));
  }
  return out;
}
}  // namespace

SftReport run_warm_start(const WarmStartConfig& cfg) {
  namespace fs = std::filesystem;
  cfg.validate();
  // Every cheap check before the tokenizer and the weights load.
  // Data parallel under torchrun (rl/distributed.h): rank 0 builds the examples and writes OUT.
  const DistEnv denv = read_dist_env();
  const bool root = denv.rank == 0;
  const std::string device = agent::pick_device(device_for_rank(cfg.device, denv));
  STRATA_CHECK(fs::exists(cfg.model + "/config.json"), "model: " << cfg.model << "/config.json not found");
  if (cfg.source == SftSource::kWorld) {
    retrieval::ClientOptions co;
    co.url = cfg.retriever;
    retrieval::require_healthy(retrieval::RetrievalClient(co).health(), "retriever");
  }
  if (cfg.threads > 0) at::set_num_threads(cfg.threads);
  if (root) {
    fs::create_directories(cfg.out_dir);
    fs::remove(cfg.out_dir + "/DONE");
  }
  const Distributed dist(denv, torch::Device(device));
  dist.require_same("the config (--config and --set)", std::to_string(std::hash<std::string>{}(config::to_json(cfg).dump())));
  const auto tok = agent::Tokenizer::from_file(cfg.model + "/tokenizer.json");
  agent::LoadOptions lo;
  lo.dtype = "float32";  // trained in fp32 whatever the checkpoint's storage type
  lo.device = device;
  auto model = agent::load_model(cfg.model, lo);
  std::vector<SftExample> examples;
  if (root) examples = build_sft_examples(cfg, tok, cfg.out_dir + "/demonstrations.jsonl");
  if (dist.active()) {
    examples = unpack_examples(dist.all_gather_bytes(root ? pack_examples(examples) : std::string())[0]);
    dist.broadcast(model.parameters());
  }
  int64_t trained = 0, total = 0;
  for (const auto& e : examples) {
    total += static_cast<int64_t>(e.ids.size());
    for (auto t : e.trained) trained += t;
  }
  STRATA_LOG_INFO("{} examples, {} tokens, {} of them trained", examples.size(), total, trained);

  std::ofstream log;
  if (root) log.open(cfg.out_dir + "/sft_log.jsonl");
  const auto report = sft_train(model, examples, cfg.sft, [&](int step, double loss, int64_t tokens) {
    if (!root) return;
    log << nlohmann::json{{"step", step}, {"loss", loss}, {"tokens", tokens}}.dump() << std::endl;
    if (cfg.save_every > 0 && step % cfg.save_every == 0) {
      char name[32];
      std::snprintf(name, sizeof name, "/step_%06d", step);
      torch::NoGradGuard ng;
      agent::save_model(model, cfg.out_dir + name, cfg.model);
    }
  }, &dist);
  dist.barrier();  // no rank leaves (rank 0 hosts the store) before every rank is done
  if (!root) return report;
  {
    std::ofstream c(cfg.out_dir + "/config.json");
    c << config::to_json(cfg).dump(2) << "\n";
  }
  agent::save_model(model, cfg.out_dir + "/model", cfg.model);
  std::ofstream(cfg.out_dir + "/DONE") << report.steps << "\n";
  return report;
}

}  // namespace strata::rl
