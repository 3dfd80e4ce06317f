// evaluate: EM / F1 / cover-EM of a search agent on QA sets, per data file, per hops and type,
// and overall. Three modes:
//   evaluate --model DIR --data FILE [--data FILE...] --retriever URL --out DIR     local policy
//   evaluate --endpoint URL --endpoint-model NAME --data FILE... --retriever URL --out DIR
//   evaluate --predictions FILE --data FILE... --out DIR                           scoring only
// Any mode takes --shard I/N (under torchrun: RANK/WORLD_SIZE) and writes OUT/shard-I-of-N/;
//   evaluate --merge OUT                                                            joins shards
// Writes OUT/predictions.jsonl (scoring mode: OUT/scored.jsonl), OUT/summary.json, OUT/summary.md
// and OUT/run.json, and prints the summary table. Manual: docs/EVALUATE.md.
#include "rl/evaluate.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "agent/checkpoint.h"
#include "agent/runtime.h"
#include "agent/tokenizer/tokenizer.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/error.h"
#include "core/progress.h"
#include "eval/chat_client.h"
#include "eval/datasets.h"
#include "eval/endpoint_agent.h"
#include "eval/metrics.h"
#include "eval/predictions_file.h"
#include "eval/report.h"
#include "eval/shard.h"
#include "retrieval/client.h"
#include "rl/rollout.h"

namespace {

namespace fs = std::filesystem;
using namespace strata;

const char* kFooter = R"(Modes (give exactly one of --model, --endpoint, --predictions):
  local policy    evaluate --model runs/grpo/final --data test.jsonl --retriever URL --out DIR
  endpoint        evaluate --endpoint http://127.0.0.1:8001 --endpoint-model NAME
                           --data test.jsonl --retriever URL --out DIR
  scoring only    evaluate --predictions preds.jsonl --data test.jsonl --out DIR
  merge shards    evaluate --merge DIR [DIR...] [--out DIR]

Sharding: --shard I/N (any mode) takes question k of each data file (after --limit) when
k mod N = I and writes to OUT/shard-I-of-N/; under torchrun (RANK, WORLD_SIZE set) each rank
takes its shard without --shard. --merge then joins the N shard folders (or the OUT folder that
holds them) into OUT: the predictions and summary of one unsharded run. --retriever takes a
comma-separated list of daemons (one per node), spread over by one client.

The agent modes run the Search-R1 protocol of training (env.* keys: prompt, turns, limits, topk)
with one trajectory per question, greedy unless --temperature > 0. The rollout options come
from --config FILE (the keys of grpo_train's "rollout" section; a whole grpo_train config works
and only its "rollout" section is read), then --set KEY=VALUE (e.g. --set env.max_obs_tokens=400),
then the flags above. --print-config shows the result.

Data files: FlashRAG/Search-R1 JSONL, R1-Searcher JSONL, NQ-open JSONL or HotpotQA JSON; each is
a dataset named by its file stem. Predictions files (scoring mode): one JSON object per line with
"id" and "prediction" (string or null), optionally "dataset", "searches", "queries"; gold
questions without a line count as wrong and are listed.

Outputs in --out: predictions.jsonl (scoring mode: scored.jsonl), one line per question;
summary.json ({"overall": {...}, "datasets": {NAME: {..., "by_hops", "by_type"}}}); summary.md
(printed too); run.json (the mode, inputs and resolved options). EM, F1, cover-EM and the answer
rate are percentages, searches a mean count.

Exit codes: 0 success, 2 bad usage, config or input file (the message names it), 3 the
retrieval daemon does not answer (start it, or fix --retriever), 1 other failures (endpoint
unreachable, ...). Manual: docs/EVALUATE.md.)";

struct Args {
  std::string model, endpoint, predictions;  // the mode: exactly one is set
  std::vector<std::string> data;
  std::string out;
  std::string format = "auto";
  int64_t limit = 0;
  std::string retriever = "http://127.0.0.1:8000/retrieve";
  std::string shard;               // "I/N"; empty: RANK/WORLD_SIZE, or the whole data
  std::vector<std::string> merge;  // shard folders to join
  // Flags that override the rollout config when given.
  double temperature = 0, top_p = 1;
  uint64_t seed = 1;
  int max_turns = 4, topk = 3, max_turn_tokens = 500, max_obs_tokens = 500, max_batch = 64;
  std::string chat = "plain";
  // Local policy.
  std::string tokenizer, device = "auto", dtype = "auto";
  int threads = 0;
  // Endpoint.
  std::string endpoint_model, api_key_env;
  int parallel = 4;
  double endpoint_timeout_s = 300;
  int endpoint_attempts = 4;
  // Scoring.
  bool extract_answer = false;
};

// Sets a dotted key of the config document from a command-line flag, remembering the flag as the
// value's origin for error messages.
void set_from_flag(config::Document& doc, const std::string& path, const nlohmann::json& value,
                   const std::string& flag) {
  config::set_value(doc, path, value, flag + " " + (value.is_string() ? value.get<std::string>() : value.dump()));
}

// Rollout options: evaluate's defaults (temperature 0), the config file, --set, then the flags;
// validated once, after all of them.
rl::RolloutOptions rollout_options(const CLI::App& app, const Args& a,
                                   const cli::ConfigOptions& cfg) {
  config::Document doc = cfg.config_file.empty() ? config::parse_document("{}", "(defaults)")
                                                 : config::load_document(cfg.config_file);
  if (doc.json.contains("rollout") && doc.json["rollout"].is_object()) {
    nlohmann::json section = doc.json["rollout"];  // a grpo_train config: its rollout section
    doc.json = section;
  }
  if (!doc.json.contains("temperature")) doc.json["temperature"] = 0.0;
  doc.json["samples_per_prompt"] = 1;
  config::apply_overrides(doc, cfg.sets);
  if (app.count("--temperature")) set_from_flag(doc, "temperature", a.temperature, "--temperature");
  if (app.count("--top-p")) set_from_flag(doc, "top_p", a.top_p, "--top-p");
  if (app.count("--seed")) set_from_flag(doc, "seed", a.seed, "--seed");
  if (app.count("--max-turns")) set_from_flag(doc, "env.max_turns", a.max_turns, "--max-turns");
  if (app.count("--topk")) set_from_flag(doc, "env.topk", a.topk, "--topk");
  if (app.count("--max-turn-tokens"))
    set_from_flag(doc, "env.max_turn_tokens", a.max_turn_tokens, "--max-turn-tokens");
  if (app.count("--max-obs-tokens"))
    set_from_flag(doc, "env.max_obs_tokens", a.max_obs_tokens, "--max-obs-tokens");
  if (app.count("--max-batch")) set_from_flag(doc, "max_batch", a.max_batch, "--max-batch");
  if (app.count("--chat")) set_from_flag(doc, "chat", a.chat, "--chat");
  auto o = config::from_document<rl::RolloutOptions>(doc);
  STRATA_CHECK(o.samples_per_prompt == 1,
               "samples_per_prompt: evaluate runs one trajectory per question, got "
                   << o.samples_per_prompt);
  return o;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  STRATA_CHECK(out.good(), "cannot write " << path);
  out << j.dump(2) << "\n";
}

// A retrieval client whose daemon answers (RetrievalClient::health()), so that a wrong URL fails
// before any work, with exit code 3.
std::unique_ptr<retrieval::RetrievalClient> connect_retriever(const std::string& url,
                                                              uint64_t seed) {
  retrieval::ClientOptions co;
  co.url = url;
  co.seed = seed;
  auto client = std::make_unique<retrieval::RetrievalClient>(co);
  retrieval::require_healthy(client->health(), "--retriever");
  return client;
}

void report_failures(const std::vector<eval::Prediction>& preds) {
  size_t failed = 0;
  std::string first;
  for (const auto& p : preds)
    if (!p.error.empty()) {
      if (failed++ == 0) first = p.dataset + "/" + p.id + ": " + p.error;
    }
  if (failed > 0)
    std::fprintf(stderr,
                 "evaluate: warning: %zu trajectories ended on a failed search and count as wrong "
                 "(first: %s)\n",
                 failed, first.c_str());
}

// --merge: the shards' predictions, summary and run.json joined into one run's.
int run_merge(const Args& a) {
  STRATA_CHECK(a.model.empty() && a.endpoint.empty() && a.predictions.empty() && a.data.empty(),
               "--merge joins finished shards: give it without --model, --endpoint, --predictions and --data");
  STRATA_CHECK(!a.out.empty() || a.merge.size() == 1,
               "--merge with several folders needs --out DIR (one folder: the merged run is written into it)");
  const std::string out = a.out.empty() ? a.merge.front() : a.out;
  const auto merged = eval::merge_shards(a.merge);
  std::error_code ec;
  fs::create_directories(out, ec);
  STRATA_CHECK(!ec, "--out " << out << ": cannot create the folder: " << ec.message());
  {
    eval::PredictionWriter w(out + "/" + merged.predictions_file);
    for (const auto& p : merged.predictions) w.write(p);
  }
  const auto summary = eval::summarize(merged.predictions, merged.dataset_order);
  eval::write_summary(out, summary);
  write_json(out + "/run.json", merged.run_info);
  std::printf("%s", eval::summary_markdown(summary).c_str());
  std::fprintf(stderr, "evaluate: merged %zu shard(s) into %s/{%s,summary.json,summary.md,run.json}\n",
               merged.run_info["merged_from"].size(), out.c_str(), merged.predictions_file.c_str());
  return 0;
}

int run(const CLI::App& app, const Args& a, const cli::ConfigOptions& cfg) {
  if (!a.merge.empty()) return run_merge(a);
  const int modes = !a.model.empty() + !a.endpoint.empty() + !a.predictions.empty();
  STRATA_CHECK(modes == 1,
               "give exactly one of --model DIR, --endpoint URL or --predictions FILE "
               "(see --help)");
  const bool agent_mode = a.predictions.empty();
  const auto ro =
      agent_mode || cfg.print_config ? rollout_options(app, a, cfg) : rl::RolloutOptions{};
  if (cfg.print_config) {
    std::printf("%s\n", config::to_json(ro).dump(2).c_str());
    return 0;
  }
  STRATA_CHECK(!a.data.empty(), "give at least one --data FILE");
  STRATA_CHECK(!a.out.empty(), "give --out DIR");
  if (!a.endpoint.empty())
    STRATA_CHECK(!a.endpoint_model.empty(), "--endpoint needs --endpoint-model NAME");
  std::string api_key;
  if (!a.api_key_env.empty()) {
    const char* v = std::getenv(a.api_key_env.c_str());
    STRATA_CHECK(v != nullptr && *v != 0,
                 "--api-key-env " << a.api_key_env << ": that environment variable is not set");
    api_key = v;
  }
  eval::ChatClientOptions chat_opts;
  eval::EndpointAgentOptions ep_opts;
  if (!a.endpoint.empty()) {
    chat_opts.url = a.endpoint;
    chat_opts.model = a.endpoint_model;
    chat_opts.api_key = api_key;
    chat_opts.timeout_ms = static_cast<int>(a.endpoint_timeout_s * 1000);
    chat_opts.max_attempts = a.endpoint_attempts;
    chat_opts.validate();
    ep_opts.env = ro.env;
    ep_opts.temperature = ro.temperature;
    ep_opts.top_p = ro.top_p;
    ep_opts.seed = ro.seed;
    ep_opts.parallel = a.parallel;
    ep_opts.validate();
  }

  const eval::Shard shard = !a.shard.empty() ? eval::parse_shard(a.shard)
                                             : eval::shard_from_env().value_or(eval::Shard{});
  // The device is checked with the other options, before any data or weights load. Under
  // torchrun, "cuda" means this rank's GPU (LOCAL_RANK).
  std::string device = agent_mode && !a.model.empty() ? agent::pick_device(a.device) : "cpu";
  if (device == "cuda" && a.shard.empty() && shard.sharded() && std::getenv("LOCAL_RANK") != nullptr)
    device = agent::pick_device(std::string("cuda:") + std::getenv("LOCAL_RANK"));
  auto datasets = eval::load_datasets(a.data, a.limit, data::parse_qa_format(a.format));
  std::vector<size_t> totals;
  for (const auto& d : datasets) totals.push_back(d.records.size());
  eval::take_shard(datasets, shard);
  const std::string out_dir = shard.sharded() ? a.out + "/" + shard.folder() : a.out;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  STRATA_CHECK(!ec, "--out " << out_dir << ": cannot create the folder: " << ec.message());
  std::vector<std::string> names;
  nlohmann::json run_info;
  run_info["mode"] = !a.model.empty() ? "model" : !a.endpoint.empty() ? "endpoint" : "predictions";
  run_info["data"] = nlohmann::json::array();
  for (size_t i = 0; i < datasets.size(); ++i) {
    const auto& d = datasets[i];
    names.push_back(d.name);
    run_info["data"].push_back(
        {{"name", d.name}, {"path", d.path}, {"questions", d.records.size()}});
    if (shard.sharded()) run_info["data"].back()["total_questions"] = totals[i];
  }
  run_info["limit"] = a.limit;
  if (shard.sharded()) run_info["shard"] = {{"index", shard.index}, {"count", shard.count}};

  std::vector<eval::Prediction> preds;
  if (!agent_mode) {
    run_info["predictions"] = a.predictions;
    const std::string out_path = out_dir + "/scored.jsonl";
    STRATA_CHECK(!fs::exists(a.predictions) || !fs::exists(out_path) ||
                     !fs::equivalent(a.predictions, out_path),
                 "--predictions " << a.predictions << " is the file scoring would write ("
                                  << out_path << "): choose another --out");
    eval::PredictionsFileOptions po;
    po.extract_answer = a.extract_answer;
    auto scored = eval::score_predictions_file(a.predictions, datasets, po);
    preds = std::move(scored.predictions);
    if (!scored.missing.empty()) {
      std::string list;
      for (size_t i = 0; i < scored.missing.size() && i < 10; ++i) list += " " + scored.missing[i];
      std::fprintf(stderr,
                   "evaluate: %zu gold question(s) have no prediction and count as wrong:%s%s\n",
                   scored.missing.size(), list.c_str(), scored.missing.size() > 10 ? " ..." : "");
    }
    if (scored.beyond_limit > 0)
      std::fprintf(stderr,
                   "evaluate: skipped %zu prediction line(s) for questions beyond --limit\n",
                   scored.beyond_limit);
    eval::PredictionWriter w(out_path);
    for (const auto& p : preds) w.write(p);
  } else {
    run_info["retriever"] = a.retriever;
    run_info["rollout"] = config::to_json(ro);
    auto client = connect_retriever(a.retriever, ro.seed);
    eval::PredictionWriter w(out_dir + "/predictions.jsonl");
    if (!a.model.empty()) {
      run_info["model"] = a.model;
      if (a.threads > 0) at::set_num_threads(a.threads);
      const std::string tok_path = a.tokenizer.empty() ? a.model + "/tokenizer.json" : a.tokenizer;
      const auto tok = agent::Tokenizer::from_file(
          fs::is_directory(tok_path) ? tok_path + "/tokenizer.json" : tok_path);
      agent::LoadOptions lo;
      lo.device = device;
      lo.dtype = a.dtype;
      if (a.dtype == "auto") {
        lo.dtype = agent::auto_inference_dtype(device);
        std::fprintf(stderr, "evaluate: --dtype auto: %s on %s (set --dtype float32 to override)\n", lo.dtype.c_str(),
                     device.c_str());
      }
      const auto model = agent::load_model(a.model, lo);
      for (const auto& d : datasets) {
        Progress bar("evaluate " + d.name, d.records.size(), "questions");
        auto got = rl::evaluate_policy(model, tok, *client, d.records, d.name, ro,
                                       [&](const eval::Prediction& p) {
                                         w.write(p);
                                         bar.add(1);
                                       });
        bar.finish();
        preds.insert(preds.end(), got.begin(), got.end());
      }
    } else {
      run_info["endpoint"] = eval::chat_completions_url(a.endpoint);
      run_info["endpoint_model"] = a.endpoint_model;
      run_info["parallel"] = a.parallel;
      eval::ChatClient chat(chat_opts);
      for (const auto& d : datasets) {
        Progress bar("evaluate " + d.name, d.records.size(), "questions");
        auto got = eval::run_endpoint_agent(chat, *client, d.records, d.name, ep_opts,
                                            [&](const eval::Prediction& p) {
                                              w.write(p);
                                              bar.add(1);
                                            });
        bar.finish();
        preds.insert(preds.end(), got.begin(), got.end());
      }
    }
    report_failures(preds);
  }

  const auto summary = eval::summarize(preds, names);
  eval::write_summary(out_dir, summary);
  write_json(out_dir + "/run.json", run_info);
  std::printf("%s", eval::summary_markdown(summary).c_str());
  if (shard.sharded())
    std::fprintf(stderr, "evaluate: shard %d of %d; join the shards with: evaluate --merge %s\n", shard.index,
                 shard.count, a.out.c_str());
  std::fprintf(stderr, "evaluate: wrote %s/{%s,summary.json,summary.md,run.json}\n", out_dir.c_str(),
               agent_mode ? "predictions.jsonl" : "scored.jsonl");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Evaluate a search agent (a local policy or an OpenAI-compatible endpoint) on QA "
      "sets with EM, F1 and cover-EM, or score a predictions file.",
      "evaluate"};
  app.footer(kFooter);
  cli::CommonOptions common;
  cli::ConfigOptions cfg;
  Args a;
  cli::add_common(app, common);

  auto* g_mode = app.add_option_group("mode", "what to evaluate (exactly one)");
  g_mode->add_option("--model", a.model,
                     "local policy: Hugging Face model folder (config.json, "
                     "safetensors, tokenizer.json)");
  g_mode->add_option("--endpoint", a.endpoint,
                     "OpenAI-compatible server base URL; requests go to URL/v1/chat/completions");
  g_mode
      ->add_option("--predictions", a.predictions,
                   "scoring only: a JSONL file of {\"id\", \"prediction\"} lines")
      ->check(CLI::ExistingFile);

  app.add_option("--data", a.data, "QA file (repeatable); its stem names the dataset")
      ->check(CLI::ExistingFile)
      ->expected(1)
      ->take_all();
  app.add_option("--out", a.out, "output folder (created); a shard writes OUT/shard-I-of-N/");
  app.add_option("--shard", a.shard,
                 "evaluate shard I of N (I/N, from 0): question k of each data file when k mod N = I "
                 "(default under torchrun: RANK/WORLD_SIZE)");
  app.add_option("--merge", a.merge,
                 "join finished shards: their folders, or the --out folder holding shard-I-of-N folders")
      ->expected(1)
      ->take_all();
  app.add_option("--format", a.format,
                 "format of the data files: auto, flashrag, r1searcher, "
                 "nq_open or hotpotqa")
      ->capture_default_str();
  app.add_option("--limit", a.limit, "evaluate only the first N questions of each file (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  auto* g_agent = app.add_option_group("agent", "agent modes (--model, --endpoint)");
  g_agent
      ->add_option("--retriever", a.retriever,
                   "Search-R1 /retrieve endpoint of the retrieval daemon, or a comma-separated list "
                   "of them (one daemon each; queries are spread over those that answer)")
      ->capture_default_str();
  g_agent->add_option("--temperature", a.temperature, "sampling temperature (default 0: greedy)")
      ->check(CLI::NonNegativeNumber);
  g_agent->add_option("--top-p", a.top_p, "nucleus sampling (1 = off)");
  g_agent->add_option("--seed", a.seed, "sampling seed");
  g_agent->add_option("--max-turns", a.max_turns,
                      "generation turns per question (env.max_turns, default 4)");
  g_agent->add_option("--topk", a.topk, "documents per search (env.topk, default 3)");
  g_agent->add_option("--max-turn-tokens", a.max_turn_tokens,
                      "new tokens per turn (env.max_turn_tokens, default 500)");
  g_agent->add_option("--max-obs-tokens", a.max_obs_tokens,
                      "retrieved tokens kept per search (env.max_obs_tokens, default 500; words "
                      "with --endpoint)");
  cli::add_config(app, cfg);

  auto* g_local = app.add_option_group("local policy", "--model only");
  g_local->add_option("--tokenizer", a.tokenizer,
                      "tokenizer.json or its folder (default: MODEL/tokenizer.json)");
  g_local->add_option("--chat", a.chat,
                      "prompt formatting: plain, chatml or llama3 (default plain)");
  g_local->add_option("--max-batch", a.max_batch, "sequences generating at once (default 64)");
  g_local->add_option("--device", a.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  g_local->add_option("--dtype", a.dtype, "auto (bfloat16 on CUDA and on CPUs with AVX512-BF16/AMX, else float32), float32, bfloat16, "
                  "float16 or int8 (weight-only int8 matrices, bf16 activations)")
      ->capture_default_str();
  g_local->add_option("--threads", a.threads, "LibTorch intra-op threads (0 = LibTorch's default)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  auto* g_ep = app.add_option_group("endpoint", "--endpoint only");
  g_ep->add_option("--endpoint-model", a.endpoint_model, "the \"model\" of each request");
  g_ep->add_option("--api-key-env", a.api_key_env,
                   "environment variable holding the API key (sent as a Bearer token)");
  g_ep->add_option("--parallel", a.parallel, "questions in flight at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  g_ep->add_option("--endpoint-timeout", a.endpoint_timeout_s, "seconds per request attempt")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  g_ep->add_option("--endpoint-attempts", a.endpoint_attempts,
                   "attempts per request (retries on connection errors, timeouts, 408, 429, 5xx)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

  auto* g_score = app.add_option_group("scoring", "--predictions only");
  g_score->add_flag("--extract-answer", a.extract_answer,
                    "score the last <answer>...</answer> of each prediction when it has one");

  return cli::run_main(app, argc, argv, [&] {
    cli::apply_common(common);
    return run(app, a, cfg);
  });
}
