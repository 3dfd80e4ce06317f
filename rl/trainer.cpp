// GrpoTrainer (rl/trainer.h): set-up with every check before work, one RL step, finish. Over 450
// lines on purpose: the step is one sequence (prompts, this rank's rollouts, the gather, advantages,
// update, logs, checkpoint) that reads best in one place; its parts live in their own files.
#include "rl/trainer.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/checkpoint.h"
#include "agent/model_config.h"
#include "agent/runtime.h"
#include "agent/tokenizer/chat_template.h"
#include "agent/tokenizer/tokenizer.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/tensorboard.h"
#include "data/qa.h"
#include "env/rollout_file.h"
#include "retrieval/client.h"
#include "rl/batch_advantages.h"
#include "rl/checkpoint_state.h"
#include "rl/distributed.h"

namespace strata::rl {

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void sync_device(const torch::Device& dev) {
#if STRATA_HAVE_CUDA
  if (dev.is_cuda()) torch::cuda::synchronize(dev.has_index() ? dev.index() : -1);
#else
  (void)dev;
#endif
}

void check_model_dir(const std::string& key, const std::string& dir) {
  STRATA_CHECK(fs::is_directory(dir), key << ": model directory '" << dir << "' does not exist");
  STRATA_CHECK(fs::exists(fs::path(dir) / "config.json"), key << ": '" << dir << "' has no config.json");
  STRATA_CHECK(fs::exists(fs::path(dir) / "model.safetensors") ||
                   fs::exists(fs::path(dir) / "model.safetensors.index.json"),
               key << ": '" << dir << "' has neither model.safetensors nor model.safetensors.index.json");
}

// While a rollout phase runs: a warning when searches wait and none has come back for
// retrieval.warn_after_s (and again every warn_after_s), so that a hung daemon is never silent.
class RetrievalWatch {
 public:
  RetrievalWatch(const retrieval::RetrievalClient& client, const TrainerConfig& cfg)
      : client_(client), cfg_(cfg), thread_([this] { run(); }) {}
  ~RetrievalWatch() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  RetrievalWatch(const RetrievalWatch&) = delete;
  RetrievalWatch& operator=(const RetrievalWatch&) = delete;

 private:
  void run() {
    const auto period = std::chrono::milliseconds(200);
    int64_t last_completed = client_.completed();
    auto quiet_since = Clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, period, [this] { return done_; })) {
      const int64_t completed = client_.completed();
      const int waiting = client_.in_flight();
      if (completed != last_completed || waiting == 0) {
        last_completed = completed;
        quiet_since = Clock::now();
        continue;
      }
      const double quiet = since(quiet_since);
      if (quiet < cfg_.retrieval.warn_after_s) continue;
      STRATA_LOG_WARN(
          "waiting for the retrieval daemon at {}: {} searches without an answer for {:.0f} s (each attempt times "
          "out after {} ms, {} attempts per search: retrieval.timeout_ms, retrieval.max_attempts)",
          cfg_.retriever, waiting, quiet, cfg_.retrieval.timeout_ms, cfg_.retrieval.max_attempts);
      quiet_since = Clock::now();
    }
  }
  const retrieval::RetrievalClient& client_;
  const TrainerConfig& cfg_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// STRATA_TEST_PAUSE_IN_STEP=N: a testing hook. In step N, after the rollouts (and their file),
// before the update, writes OUT/.test_paused_in_step_N and sleeps (up to 10 minutes), so that a
// test can kill the run in the middle of a step.
void maybe_pause_in_step_for_test(const std::string& out_dir, int step) {
  const char* env = std::getenv("STRATA_TEST_PAUSE_IN_STEP");
  if (env == nullptr || std::atoi(env) != step) return;
  std::ofstream(out_dir + "/.test_paused_in_step_" + std::to_string(step)) << "paused\n";
  STRATA_LOG_WARN("STRATA_TEST_PAUSE_IN_STEP: paused in step {}", step);
  for (int i = 0; i < 6000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// The weights the optimiser holds, as an fp32 model (the policy itself, or one built on the
// bf16_master masters).
agent::Model fp32_weights(const agent::Model& policy, const std::vector<torch::Tensor>& master) {
  if (master.empty()) return policy;
  std::map<std::string, torch::Tensor> named;
  size_t i = 0;
  for (const auto& kv : policy.named_parameters()) named[kv.first] = master.at(i++);  // same (map) order
  return agent::Model(policy.config(), named);
}

// The fp32 masters of every weight, for rank 0 to save. Under ZeRO-1 each rank holds its share
// only: every master comes from its owner, one tensor at a time and copied to the host, so that no
// rank ever holds them all on the device. Every rank calls it (a collective); the ranks other
// than 0 get an empty list. Without ZeRO-1 (or without masters): `master` as it is.
std::vector<torch::Tensor> all_masters(const Distributed& dist, const std::vector<torch::Tensor>& master,
                                       const std::vector<int>& owner, const agent::Model& policy) {
  if (master.empty() || owner.empty()) return master;
  const auto params = policy.parameters();
  std::vector<torch::Tensor> out;
  for (size_t k = 0; k < master.size(); ++k) {
    torch::Tensor t = master[k].defined() ? master[k]
                                          : torch::empty(params[k].sizes(), params[k].options().dtype(torch::kFloat32));
    dist.broadcast_from({t}, {owner[k]});
    if (dist.is_root()) out.push_back(t.to(torch::kCPU));
  }
  return out;
}

// The optimiser state this rank holds, in bytes: AdamW's moments and the fp32 masters it keeps
// (bf16_master), and the weight elements the optimiser updates.
struct OptimizerFootprint {
  int64_t bytes = 0, elements = 0;
};
OptimizerFootprint optimizer_footprint(torch::optim::AdamW& optim, const std::vector<torch::Tensor>& master) {
  OptimizerFootprint f;
  for (const auto& g : optim.param_groups())
    for (const auto& p : g.params()) f.elements += p.numel();
  for (const auto& kv : optim.state()) {
    const auto& st = static_cast<const torch::optim::AdamWParamState&>(*kv.second);
    for (const auto& t : {st.exp_avg(), st.exp_avg_sq(), st.max_exp_avg_sq()})
      if (t.defined()) f.bytes += static_cast<int64_t>(t.nbytes());
  }
  for (const auto& m : master)
    if (m.defined()) f.bytes += static_cast<int64_t>(m.nbytes());
  return f;
}

// The rollout metrics of every rank as one phase's: counts add up, times are the slowest rank's.
RolloutMetrics merge_rollout_metrics(const Distributed& dist, const RolloutMetrics& mine) {
  if (!dist.active()) return mine;
  nlohmann::json j = {{"seconds", mine.seconds},
                      {"generate_seconds", mine.generate_seconds},
                      {"wait_seconds", mine.wait_seconds},
                      {"prefill_seconds", mine.prefill_seconds},
                      {"decode_seconds", mine.decode_seconds},
                      {"sample_seconds", mine.sample_seconds},
                      {"prefill_tokens", mine.prefill_tokens},
                      {"decode_tokens", mine.decode_tokens},
                      {"generated_tokens", mine.generated_tokens},
                      {"mean_occupancy", mine.mean_occupancy},
                      {"p50", mine.retrieval_p50_ms},
                      {"p99", mine.retrieval_p99_ms},
                      {"calls", mine.retrieval_calls},
                      {"failed", mine.failed},
                      {"end_reasons", mine.end_reasons},
                      {"searches", nlohmann::json::array()}};
  for (const auto& [k, v] : mine.searches) j["searches"].push_back({k, v});
  RolloutMetrics m;
  const auto all = dist.all_gather_bytes(j.dump());
  for (const auto& text : all) {
    const auto r = nlohmann::json::parse(text);
    m.seconds = std::max(m.seconds, r["seconds"].get<double>());
    m.generate_seconds = std::max(m.generate_seconds, r["generate_seconds"].get<double>());
    m.wait_seconds = std::max(m.wait_seconds, r["wait_seconds"].get<double>());
    m.prefill_seconds = std::max(m.prefill_seconds, r["prefill_seconds"].get<double>());
    m.decode_seconds = std::max(m.decode_seconds, r["decode_seconds"].get<double>());
    m.sample_seconds = std::max(m.sample_seconds, r["sample_seconds"].get<double>());
    m.prefill_tokens += r["prefill_tokens"].get<int64_t>();
    m.decode_tokens += r["decode_tokens"].get<int64_t>();
    m.generated_tokens += r["generated_tokens"].get<int64_t>();
    m.mean_occupancy += r["mean_occupancy"].get<double>() / static_cast<double>(all.size());
    m.retrieval_p50_ms += r["p50"].get<double>() / static_cast<double>(all.size());  // the ranks' mean
    m.retrieval_p99_ms = std::max(m.retrieval_p99_ms, r["p99"].get<double>());      // the worst rank's
    m.retrieval_calls += r["calls"].get<int64_t>();
    m.failed += r["failed"].get<int64_t>();
    for (const auto& [k, v] : r["end_reasons"].items()) m.end_reasons[k] += v.get<int>();
    for (const auto& kv : r["searches"]) m.searches[kv[0].get<int>()] += kv[1].get<int>();
  }
  m.tokens_per_s = m.seconds > 0 ? static_cast<double>(m.generated_tokens) / m.seconds : 0.0;
  return m;
}
}  // namespace

struct GrpoTrainer::State {
  TrainerConfig cfg;
  torch::Device dev{torch::kCPU};
  std::optional<agent::Tokenizer> tok;
  std::vector<data::QaRecord> questions;
  std::unique_ptr<retrieval::RetrievalClient> client;
  std::string ckpt_root;
  CheckpointState st;
  agent::Model policy, reference, rollout_model;
  MixedPrecision mp;
  bool kl_on = false, rollout_bf16 = false, rollout_int8 = false, rollout_copy = false;
  int update_threads = 0, rollout_threads = 0;
  Rng rng{0};
  std::unique_ptr<torch::optim::AdamW> optim;
  std::unique_ptr<TensorBoardWriter> tb;
  std::ofstream jsonl;
  Clock::time_point t_start;
  int first_step = 1;
  int failed_steps_in_a_row = 0;  // steps not used for too many retrieval failures, consecutive
  // Data parallel (rl/distributed.h): this rank's place; rank 0 alone writes into out_dir.
  DistEnv denv;
  std::unique_ptr<Distributed> dist;
  bool root = true;
  // ZeRO-1 (update.zero_stage 1): the rank that owns each of policy.parameters(); empty otherwise.
  std::vector<int> zero_owner;
};

GrpoTrainer::GrpoTrainer(const TrainerConfig& config, bool resume) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.cfg = config;
  const TrainerConfig& cfg = s.cfg;
  // ---- every check that is cheap, before any expensive work ----
  cfg.validate();
  s.denv = read_dist_env();
  s.root = s.denv.rank == 0;
  STRATA_CHECK(cfg.prompts_per_step >= s.denv.world,
               "prompts_per_step: " << cfg.prompts_per_step << " prompts cannot be shared by WORLD_SIZE=" << s.denv.world
                                    << " ranks (each rank rolls out whole prompt groups): use at least "
                                    << s.denv.world);
  s.dev = torch::Device(agent::pick_device(device_for_rank(cfg.device, s.denv)));
  check_model_dir("model", cfg.model);
  const auto mcfg = agent::load_model_config(cfg.model);
  const std::string tok_path = cfg.model + "/tokenizer.json";
  STRATA_CHECK(fs::exists(tok_path), "model: '" << cfg.model << "' has no tokenizer.json");
  s.tok = agent::Tokenizer::from_file(tok_path);
  const agent::Tokenizer& tok = *s.tok;
  STRATA_CHECK(tok.vocab_size() <= mcfg.vocab_size, "model: " << tok_path << " has " << tok.vocab_size()
                                                               << " tokens but the model's vocab_size is "
                                                               << mcfg.vocab_size);
  if (agent::parse_chat_style(cfg.rollout.chat) == agent::ChatStyle::kChatml)
    STRATA_CHECK(tok.token_to_id("<|im_start|>") >= 0 && tok.token_to_id("<|im_end|>") >= 0,
                 "rollout.chat: chatml needs the special tokens <|im_start|> and <|im_end|>, which "
                     << tok_path << " lacks");
  (void)encode_prompt(tok, "check", cfg.rollout.chat);
  check_sizes(cfg, mcfg.num_hidden_layers, mcfg.num_key_value_heads, mcfg.head_dim, mcfg.max_position_embeddings,
              cfg.model + "/config.json", cfg.bf16_rollouts(cpu_has_bf16_dot()));
  STRATA_CHECK(fs::exists(cfg.train_data), "train_data: '" << cfg.train_data << "' does not exist");
  s.questions = data::read_qa_file(cfg.train_data);
  STRATA_CHECK(!s.questions.empty(), "train_data: " << cfg.train_data << ": no questions");
  retrieval::ClientOptions co;
  co.url = cfg.retriever;
  co.seed = cfg.seed;
  co.timeout_ms = cfg.retrieval.timeout_ms;
  co.connect_timeout_ms = std::min(co.connect_timeout_ms, cfg.retrieval.timeout_ms);
  co.max_attempts = cfg.retrieval.max_attempts;
  co.backoff_initial_ms = cfg.retrieval.backoff_initial_ms;
  co.backoff_max_ms = cfg.retrieval.backoff_max_ms;
  s.client = std::make_unique<retrieval::RetrievalClient>(co);
  retrieval::require_healthy(s.client->health(), "retriever");
  s.ckpt_root = cfg.out_dir + "/checkpoints";
  if (s.root) try {
      fs::create_directories(cfg.out_dir + "/rollouts");
    } catch (const fs::filesystem_error& e) {
      STRATA_FAIL("out_dir: cannot create '" << cfg.out_dir << "': " << e.code().message());
    }
  // Every rank has checked the same things; now they meet (rl/distributed.h) and agree on the
  // config before anything is loaded.
  s.dist = std::make_unique<Distributed>(s.denv, s.dev);
  s.dist->require_same("the config (--config and --set)",
                       std::to_string(std::hash<std::string>{}(config::to_json(cfg).dump())));

  // On --resume everything is validated (config, state.json, optimizer.pt, then the weights and the
  // optimiser state load) before anything in out_dir is written or removed.
  std::string from;
  if (resume) {
    from = newest_checkpoint(s.ckpt_root);
    STRATA_CHECK(!from.empty(), "--resume: no checkpoint in " << s.ckpt_root);
    // The saved config through today's reader, so keys added since then take their defaults.
    // Keys removed since (update.temperature) are dropped.
    auto saved_doc = config::load_document(from + "/config.json");
    if (saved_doc.json.contains("update") && saved_doc.json["update"].is_object())
      saved_doc.json["update"].erase("temperature");
    const auto saved = config::from_document<TrainerConfig>(saved_doc);
    std::string diff;
    for (const auto& d : resume_config_diff(saved, cfg)) diff += (diff.empty() ? "" : ", ") + d;
    STRATA_CHECK(diff.empty(), "--resume: the config differs from the checkpoint's (" << from
                                   << "/config.json) in: " << diff);
    check_model_dir("--resume", from + "/model");
    STRATA_CHECK(fs::exists(from + "/optimizer.pt") || fs::exists(from + "/" + optimizer_shard_file(0)),
                 "--resume: " << from << " has no optimizer.pt");
    verify_checksums(from);
    s.st = read_checkpoint_state(from, s.questions.size());
    STRATA_CHECK(s.st.world_size == s.dist->world(),
                 "--resume: " << from << " was written by a run of " << s.st.world_size << " rank"
                              << (s.st.world_size == 1 ? "" : "s") << " and this run has " << s.dist->world()
                              << " (WORLD_SIZE): resume with " << s.st.world_size
                              << " (each rank's data and RNG state is saved for that number)");
    STRATA_CHECK(s.st.zero_stage == cfg.update.zero_stage,
                 "--resume: " << from << " was written with update.zero_stage = " << s.st.zero_stage
                              << (s.st.zero_stage == 1
                                      ? " (each rank saved its own share of the optimiser state, optimizer.rankR.pt)"
                                      : " (one optimizer.pt with the whole optimiser state)")
                              << " and this run has update.zero_stage = " << cfg.update.zero_stage << ": resume with "
                              << s.st.zero_stage << " (the optimiser state cannot be re-partitioned on resume)");
    s.dist->require_same("the checkpoint to resume from (out_dir must be on a file system every node shares)",
                         from);
    const std::string optim_name = s.st.zero_stage == 1 ? optimizer_shard_file(s.dist->rank()) : "optimizer.pt";
    STRATA_CHECK(fs::exists(from + "/" + optim_name), "--resume: " << from << " has no " << optim_name);
    check_optimizer_file(from + "/" + optim_name);
    STRATA_LOG_INFO("resuming from {} (step {})", from, s.st.step);
  }

  // ---- expensive work from here on ----
  if (cfg.threads > 0) at::set_num_threads(cfg.threads);
  s.update_threads = at::get_num_threads();
  s.rollout_threads = cfg.rollout_threads > 0 ? cfg.rollout_threads : s.update_threads;
  agent::LoadOptions lo_cpu;
  lo_cpu.device = "cpu";
  lo_cpu.dtype = "float32";
  const bool master_mode = cfg.precision == Precision::kBf16Master;
  s.policy = agent::load_model(resume ? from + "/model" : cfg.model, lo_cpu);
  s.mp.autocast_bf16 = cfg.precision == Precision::kBf16;
  if (cfg.update.zero_stage == 1) {
    s.zero_owner = partition_by_size(s.policy.parameters(), s.dist->world());
    // Each rank's masters come from rank 0's fp32 weights (below, the bf16 ones are broadcast).
    if (master_mode) s.dist->broadcast(s.policy.parameters());
  }
  {
    torch::NoGradGuard ng;
    if (master_mode) {
      size_t k = 0;
      for (const auto& p : s.policy.parameters()) {
        const bool mine = s.zero_owner.empty() || s.zero_owner[k++] == s.dist->rank();
        s.mp.master.push_back(mine ? p.to(s.dev, torch::kFloat32, false, /*copy=*/true) : torch::Tensor());
      }
      s.policy.to(s.dev, torch::kBFloat16);
    } else {
      s.policy.to(s.dev, torch::kFloat32);
    }
  }
  s.kl_on = cfg.loss.kl_on();
  if (s.kl_on) {
    s.reference = agent::load_model(cfg.model, lo_cpu);
    torch::NoGradGuard ng;
    s.reference.to(s.dev, master_mode ? torch::kBFloat16 : torch::kFloat32);
  }
  // What generates: the policy itself, or a bf16 or int8 copy refreshed after every update.
  const RolloutPrecision rollout_weights = cfg.rollout_weights(cpu_has_bf16_dot());
  s.rollout_bf16 = rollout_weights != RolloutPrecision::kFp32;
  s.rollout_int8 = rollout_weights == RolloutPrecision::kInt8;
  s.rollout_copy = s.rollout_int8 || (s.rollout_bf16 && !master_mode);
  s.rollout_model = s.policy;
  if (s.rollout_copy) {
    torch::NoGradGuard ng;
    s.rollout_model.to(s.dev, torch::kBFloat16);
    if (s.rollout_int8) s.rollout_model.quantize_int8();
  }
  STRATA_LOG_INFO("rollouts in {}{}{} (rollout_precision={})", config::name_of(rollout_weights),
                  s.rollout_copy ? ", on a copy of the policy refreshed after each update" : "",
                  s.rollout_copy && cfg.loss.tis_cap > 0 ? fmt::format(", TIS capped at {}", cfg.loss.tis_cap)
                  : s.rollout_copy                       ? ", no TIS (loss.tis_cap 0)"
                                                         : "",
                  cfg.rollout_precision == RolloutPrecision::kAuto && cfg.precision == Precision::kFp32 &&
                          s.rollout_bf16
                      ? "auto: this CPU has AVX512-BF16 or AMX; set fp32 to sample from the fp32 policy"
                      : config::name_of(cfg.rollout_precision));
  STRATA_LOG_INFO("policy on {} ({}; {} parameters)", s.dev.str(), config::name_of(cfg.precision), [&] {
    int64_t n = 0;
    for (const auto& p : s.policy.parameters()) n += p.numel();
    return n;
  }());
  s.rng = Rng(cfg.seed).fork("data");
  if (resume) {
    s.rng.set_state(s.st.rank_rng.empty() ? s.st.rng : s.st.rank_rng.at(static_cast<size_t>(s.dist->rank())));
  } else {
    s.st.order.resize(s.questions.size());
    for (size_t i = 0; i < s.st.order.size(); ++i) s.st.order[i] = i;
    s.rng.shuffle(s.st.order);
  }
  // Every rank starts from rank 0's weights (and masters), as torch's DistributedDataParallel does.
  s.dist->broadcast(s.policy.parameters());
  if (master_mode && s.zero_owner.empty()) s.dist->broadcast(s.mp.master);
  if (s.rollout_copy) s.rollout_model.refresh_from(s.policy);
  // A collective may write into the weights' memory without a version bump: the bf16 decoding
  // kernel's packed copies (agent/bf16_packs.h) are dropped and rebuilt at the first rollout.
  s.policy.weights_changed();
  s.rollout_model.weights_changed();
  s.policy.set_requires_grad(true);
  // The weights the optimiser updates: all of them, or under ZeRO-1 this rank's share.
  std::vector<torch::Tensor> optimised;
  {
    const auto params = s.policy.parameters();
    for (size_t k = 0; k < params.size(); ++k)
      if (s.zero_owner.empty() || s.zero_owner[k] == s.dist->rank())
        optimised.push_back(master_mode ? s.mp.master[k] : params[k]);
  }
  if (!s.zero_owner.empty()) {
    int64_t mine = 0, all = 0;
    for (const auto& t : optimised) mine += t.numel();
    for (const auto& p : s.policy.parameters()) all += p.numel();
    STRATA_LOG_INFO("update.zero_stage 1: rank {} of {} keeps the AdamW state{} of {} of the {} weights ({} of {} "
                    "elements)",
                    s.dist->rank(), s.dist->world(), master_mode ? " and fp32 masters" : "", optimised.size(),
                    s.policy.parameters().size(), mine, all);
  }
  s.optim = std::make_unique<torch::optim::AdamW>(optimised,
                                                  torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
  if (resume) {
    const std::string optim_file =
        from + "/" + (s.st.zero_stage == 1 ? optimizer_shard_file(s.dist->rank()) : std::string("optimizer.pt"));
    try {
      torch::load(*s.optim, optim_file, s.dev);
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      STRATA_FAIL("--resume: " << optim_file << " does not hold this run's optimiser state ("
                               << what.substr(0, what.find('\n')) << "); the checkpoint is damaged: remove " << from
                               << " to resume from the one before");
    }
  }
  // ---- validated and loaded: from here on out_dir is written (by rank 0) ----
  s.t_start = Clock::now();
  s.first_step = s.st.step + 1;
  if (!s.root) return;
  remove_unfinished_checkpoints(s.ckpt_root);
  {
    std::ofstream c(cfg.out_dir + "/config.json");
    c << config::to_json(cfg).dump(2) << "\n";
  }
  if (resume) trim_metrics(cfg.out_dir + "/metrics.jsonl", s.st.step);
  s.tb = std::make_unique<TensorBoardWriter>(cfg.out_dir + "/tb");
  s.jsonl.open(cfg.out_dir + "/metrics.jsonl", std::ios::app);
}

GrpoTrainer::~GrpoTrainer() = default;

bool GrpoTrainer::done() const { return s_->st.step >= s_->cfg.steps; }

StepMetrics GrpoTrainer::step() {
  State& s = *s_;
  const TrainerConfig& cfg = s.cfg;
  STRATA_ASSERT(!done(), "step() after the last step");
  const int step = s.st.step + 1;
  std::vector<data::QaRecord> prompts;
  for (int i = 0; i < cfg.prompts_per_step; ++i) {
    if (s.st.cursor == s.st.order.size()) {
      s.st.cursor = 0;
      s.rng.shuffle(s.st.order);
    }
    prompts.push_back(s.questions[s.st.order[s.st.cursor++]]);
  }
  StepMetrics m;
  m.step = step;
  m.lr = lr_at_step(cfg, step);
  for (auto& g : s.optim->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(m.lr);

  const auto t0 = Clock::now();
  auto rollout = cfg.rollout;
  // Each step samples from its own stream; rollout.seed moves the sampling alone (1: no shift).
  rollout.seed = mix64(cfg.seed + static_cast<uint64_t>(step)) + (cfg.rollout.seed - 1);
  s.policy.set_requires_grad(false);
  if (s.rollout_threads != s.update_threads) at::set_num_threads(s.rollout_threads);
  // This rank's share of the prompts: [lo, hi) of the step's, whole groups (rl/distributed.h).
  const int world = s.dist->world(), rank = s.dist->rank();
  const int lo = cfg.prompts_per_step * rank / world, hi = cfg.prompts_per_step * (rank + 1) / world;
  const std::vector<data::QaRecord> mine(prompts.begin() + lo, prompts.begin() + hi);
  auto batch = [&] {
    RetrievalWatch watch(*s.client, cfg);
    return run_rollouts(s.rollout_model, *s.tok, *s.client, mine, rollout, step,
                        static_cast<int64_t>(step) * cfg.prompts_per_step + lo, lo);
  }();
  // Every rank holds the whole batch from here on: the estimators and the logs are global.
  batch.trajectories = gather_batch(*s.dist, std::move(batch.trajectories));
  batch.metrics = merge_rollout_metrics(*s.dist, batch.metrics);
  if (s.rollout_threads != s.update_threads) at::set_num_threads(s.update_threads);
  s.policy.set_requires_grad(true);
  sync_device(s.dev);
  m.rollout_seconds = since(t0);
  if (s.root) {
    char name[64];
    std::snprintf(name, sizeof name, "/rollouts/step_%06d.pb", step);
    env::RolloutWriter w(cfg.out_dir + name);
    for (const auto& t : batch.trajectories) w.write(t);
    w.flush();
  }
  maybe_pause_in_step_for_test(cfg.out_dir, step);
  const auto adv = batch_advantages(batch.trajectories, cfg.advantage);
  const auto t1 = Clock::now();
  // A step with too many failed searches is not used: its surviving trajectories are biased
  // towards those that did not search (retrieval.max_failed_fraction).
  const auto n_traj = static_cast<double>(batch.trajectories.size());
  m.skipped_failed =
      batch.metrics.failed > 0 && static_cast<double>(batch.metrics.failed) > cfg.retrieval.max_failed_fraction * n_traj;
  UpdateOptions uo = cfg.update;
  uo.temperature = cfg.rollout.temperature > 0 ? cfg.rollout.temperature : 1.0;  // the sampling temperature
  uo.rollout_copy = s.rollout_copy;  // TIS against the copy's log-probs
  if (!m.skipped_failed)
    m.update = ppo_update(s.policy, s.kl_on ? &s.reference : nullptr, *s.optim, batch.trajectories, adv, cfg.loss,
                          uo, cfg.seed + step, s.mp, s.dist.get(), s.zero_owner);
  if (s.rollout_copy && m.update.optimizer_steps > 0) s.rollout_model.refresh_from(s.policy);
  if (m.update.optimizer_steps > 0) s.rollout_model.weights_changed();  // the policy itself, or a refreshed copy
  sync_device(s.dev);
  m.update_seconds = since(t1);
  m.batch = batch_stats(batch.trajectories, adv);
  m.rollout = batch.metrics;
  m.bf16_rollouts = s.rollout_bf16;
  m.int8_rollouts = s.rollout_int8;
  m.step_seconds = since(t0);

  // The metric keys are made here, once, for TensorBoard and metrics.jsonl alike.
  const auto scalars = step_metric_map(m);
  if (s.root) {
    s.tb->scalars(step, scalars);
    s.tb->flush();
    nlohmann::json j(scalars);
    j["step"] = step;
    s.jsonl << j.dump() << "\n";
    s.jsonl.flush();
  }
  const double elapsed = since(s.t_start);
  if (s.root)
    STRATA_LOG_INFO("{}", format_step_line(m, cfg.steps,
                                         Progress::format_duration(elapsed / (step - s.first_step + 1) *
                                                                   (cfg.steps - step))));
  if (m.skipped_failed) {
    ++s.failed_steps_in_a_row;
    STRATA_LOG_WARN("step {}: {} of {} trajectories failed retrieval (more than retrieval.max_failed_fraction = {}): "
                    "the step is not used for the update ({} of retrieval.max_failed_steps = {} in a row)",
                    step, batch.metrics.failed, batch.trajectories.size(), cfg.retrieval.max_failed_fraction,
                    s.failed_steps_in_a_row, cfg.retrieval.max_failed_steps);
    if (s.failed_steps_in_a_row >= cfg.retrieval.max_failed_steps) {
      const auto h = retrieval::check_health(cfg.retriever, 2000);
      const std::string ckpt = newest_checkpoint(s.ckpt_root);
      throw UnreachableError(fmt::format(
          "retrieval: {} steps in a row had more than retrieval.max_failed_fraction = {} of their trajectories fail "
          "retrieval (step {}: {} of {}; each search is tried retrieval.max_attempts = {} times); stopping "
          "(retrieval.max_failed_steps = {}). The daemon at {} {} now. {}",
          s.failed_steps_in_a_row, cfg.retrieval.max_failed_fraction, step, batch.metrics.failed,
          batch.trajectories.size(), cfg.retrieval.max_attempts, cfg.retrieval.max_failed_steps, cfg.retriever,
          h.ok() ? "answers /health" : "does not answer /health",
          ckpt.empty() ? std::string("No checkpoint was written yet (save_every): start the run again once the "
                                     "daemon answers.")
                       : "Once it answers, continue from " + ckpt + " with --resume."));
    }
  } else {
    s.failed_steps_in_a_row = 0;
  }
  s.st.step = step;
  s.st.rng = s.rng.state();
  if (step == cfg.steps || (cfg.save_every > 0 && step % cfg.save_every == 0)) {
    // Every rank's RNG state goes into rank 0's checkpoint.
    s.st.world_size = s.dist->world();
    s.st.zero_stage = cfg.update.zero_stage;
    s.st.rank_rng = s.dist->all_gather_bytes(s.st.rng);
    const auto masters = all_masters(*s.dist, s.mp.master, s.zero_owner, s.policy);
    if (cfg.update.zero_stage == 1) {
      // Each rank writes its share of the optimiser state into the folder rank 0 made.
      if (s.root) begin_checkpoint(s.ckpt_root, step);
      s.dist->barrier();
      save_optimizer_shard(s.ckpt_root, step, s.dist->rank(), *s.optim);
      s.dist->barrier();
    }
    if (s.root) write_checkpoint(s.ckpt_root, cfg, fp32_weights(s.policy, masters), *s.optim, s.st);
  }
  return m;
}

TrainSummary GrpoTrainer::finish() {
  State& s = *s_;
  s.policy.set_requires_grad(false);
  TrainSummary summary;
  const auto masters = all_masters(*s.dist, s.mp.master, s.zero_owner, s.policy);
  const auto fp = optimizer_footprint(*s.optim, s.mp.master);
  int64_t all = 0;
  for (const auto& p : s.policy.parameters()) all += p.numel();
  STRATA_LOG_INFO("optimiser state: rank {} of {} holds {} bytes (AdamW moments{} of {} of the {} weight elements; "
                  "update.zero_stage {})",
                  s.dist->rank(), s.dist->world(), fp.bytes, s.mp.master.empty() ? "" : " and fp32 masters",
                  fp.elements, all, s.cfg.update.zero_stage);
  if (s.root) {
    agent::save_model(fp32_weights(s.policy, masters), s.cfg.out_dir + "/final", s.cfg.model);
    STRATA_LOG_INFO("saved the policy to {}/final", s.cfg.out_dir);
    s.jsonl.close();
    summary = summarize_metrics_file(s.cfg.out_dir + "/metrics.jsonl");
  }
  // No rank leaves (rank 0 hosts the store) before every rank is done.
  s.dist->barrier();
  if (s.dist->active()) {
    std::string kinds;
    for (const auto& [kind, secs] : s.dist->collective_seconds_by_kind())
      kinds += fmt::format("{}{} {:.2f} s", kinds.empty() ? "" : ", ", kind, secs);
    STRATA_LOG_INFO("distributed: rank {}: {} collectives, {:.2f} s in them ({}; waits for slower ranks included)",
                    s.dist->rank(), s.dist->collectives(), s.dist->collective_seconds(), kinds);
  }
  return summary;
}

TrainSummary train_grpo(const TrainerConfig& cfg, bool resume) {
  GrpoTrainer trainer(cfg, resume);
  while (!trainer.done()) trainer.step();
  return trainer.finish();
}

}  // namespace strata::rl
