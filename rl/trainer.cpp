#include "rl/trainer.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "agent/checkpoint.h"
#include "agent/model_config.h"
#include "agent/runtime.h"
#include "agent/tokenizer/tokenizer.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/tensorboard.h"
#include "data/qa.h"
#include "env/rollout_file.h"

namespace strata::rl {

namespace {
namespace fs = std::filesystem;

// "cpu", "cuda" or "cuda:N" -> device (format only; availability is checked by resolve_device).
bool parse_device(const std::string& s, torch::Device& out) {
  if (s == "cpu") {
    out = torch::Device(torch::kCPU);
    return true;
  }
  if (s == "cuda") {
    out = torch::Device(torch::kCUDA);
    return true;
  }
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 7 &&
      std::all_of(s.begin() + 5, s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    out = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(std::stoi(s.substr(5))));
    return true;
  }
  return false;
}
}  // namespace

void TrainerConfig::validate() const {
  STRATA_CHECK(!model.empty(), "model: a model directory is required");
  STRATA_CHECK(!train_data.empty(), "train_data: a QA file is required");
  STRATA_CHECK(!retriever.empty(), "retriever: a /retrieve URL is required");
  STRATA_CHECK(steps >= 1, "steps: expected >= 1, got " << steps);
  STRATA_CHECK(prompts_per_step >= 1, "prompts_per_step: expected >= 1, got " << prompts_per_step);
  STRATA_CHECK(lr > 0, "lr: expected > 0, got " << lr);
  STRATA_CHECK(lr_schedule == "constant" || lr_schedule == "cosine",
               "lr_schedule: expected constant or cosine, got \"" << lr_schedule << "\"");
  STRATA_CHECK(warmup_steps >= 0, "warmup_steps: expected >= 0, got " << warmup_steps);
  STRATA_CHECK(warmup_ratio >= 0 && warmup_ratio < 1, "warmup_ratio: expected 0 <= r < 1, got " << warmup_ratio);
  STRATA_CHECK(!(warmup_ratio > 0 && warmup_steps > 0),
               "warmup_ratio: set either warmup_steps (" << warmup_steps << ") or warmup_ratio (" << warmup_ratio
                                                         << "), not both");
  STRATA_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "min_lr_ratio: expected 0..1, got " << min_lr_ratio);
  torch::Device d(torch::kCPU);
  STRATA_CHECK(parse_device(device, d), "device: expected cpu, cuda or cuda:N, got \"" << device << "\"");
  STRATA_CHECK(precision == "fp32" || precision == "bf16" || precision == "bf16_master",
               "precision: expected fp32, bf16 or bf16_master, got \"" << precision << "\"");
  STRATA_CHECK(rollout_precision == "auto" || rollout_precision == "fp32" || rollout_precision == "bf16",
               "rollout_precision: expected auto, fp32 or bf16, got \"" << rollout_precision << "\"");
  STRATA_CHECK(!(precision == "bf16_master" && rollout_precision == "fp32"),
               "rollout_precision: fp32 rollouts need fp32 weights, but precision is bf16_master");
  STRATA_CHECK(rollout_threads >= 0, "rollout_threads: expected >= 0, got " << rollout_threads);
  STRATA_CHECK(save_every >= 0, "save_every: expected >= 0, got " << save_every);
  STRATA_CHECK(keep_checkpoints >= 1, "keep_checkpoints: expected >= 1, got " << keep_checkpoints);
  rollout.validate();
  advantage.validate();
  loss.validate();
  update.validate();
}

namespace {
// The CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16), which oneDNN uses for bf16
// matrix products.
bool cpu_has_bf16_dot() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return false;
#endif
}

bool bf16_rollouts(const TrainerConfig& cfg, bool cpu_bf16) {
  if (cfg.rollout_precision != "auto") return cfg.rollout_precision == "bf16";
  if (cfg.precision != "fp32") return true;
  return cfg.device == "cpu" && cpu_bf16;
}
}  // namespace

int warmup_steps_of(const TrainerConfig& cfg) {
  if (cfg.warmup_ratio > 0) return static_cast<int>(cfg.warmup_ratio * cfg.steps);  // veRL: int(ratio * total)
  return cfg.warmup_steps;
}

double lr_at_step(const TrainerConfig& cfg, int step) {
  const int W = warmup_steps_of(cfg);
  const int s = step - 1;  // 0-based
  if (s < W) return cfg.lr * (s + 1) / static_cast<double>(W);
  if (cfg.lr_schedule == "constant") return cfg.lr;
  const double progress = static_cast<double>(s - W) / std::max(1, cfg.steps - W);
  const double m = cfg.min_lr_ratio;
  return cfg.lr * (m + (1 - m) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, progress))));
}

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Keys whose change does not alter the run itself, so a resume may change them (`device` moves
// it, like `threads`, without changing what it computes beyond rounding).
bool resumable_key(const std::string& k) {
  return k == "steps" || k == "out_dir" || k == "threads" || k == "rollout_threads" || k == "device" ||
         k == "save_every" || k == "keep_checkpoints";
}

// Dotted paths where two configs (as JSON) differ.
void diff_json(const nlohmann::json& a, const nlohmann::json& b, const std::string& path,
               std::vector<std::string>& out) {
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
    for (const auto& k : keys) {
      const std::string p = path.empty() ? k : path + "." + k;
      if (!a.contains(k) || !b.contains(k)) out.push_back(p);
      else diff_json(a[k], b[k], p, out);
    }
  } else if (a != b) {
    out.push_back(path);
  }
}

std::string newest_checkpoint(const std::string& root) {
  std::string best;
  if (!fs::is_directory(root)) return best;
  for (const auto& e : fs::directory_iterator(root)) {
    const auto name = e.path().filename().string();
    if (name.rfind("step_", 0) == 0 && e.is_directory() && fs::exists(e.path() / "state.json") &&
        name > fs::path(best).filename().string())
      best = e.path().string();
  }
  return best;
}

// Removes what a run killed while writing a checkpoint left behind (.tmp_step_N folders).
void remove_unfinished_checkpoints(const std::string& root) {
  if (!fs::is_directory(root)) return;
  std::vector<fs::path> leftovers;
  for (const auto& e : fs::directory_iterator(root))
    if (e.path().filename().string().rfind(".tmp_", 0) == 0) leftovers.push_back(e.path());
  for (const auto& p : leftovers) {
    STRATA_LOG_WARN("removing {}: an unfinished checkpoint (a run stopped while writing it)", p.string());
    fs::remove_all(p);
  }
}

// ---- checks before any expensive work --------------------------------------------------------

void sync_device(const torch::Device& dev) {
#if STRATA_HAVE_CUDA
  if (dev.is_cuda()) torch::cuda::synchronize(dev.has_index() ? dev.index() : -1);
#else
  (void)dev;
#endif
}

torch::Device resolve_device(const std::string& name) {
  torch::Device dev(torch::kCPU);
  STRATA_CHECK(parse_device(name, dev), "device: expected cpu, cuda or cuda:N, got \"" << name << "\"");
  if (dev.is_cpu()) return dev;
  try {
    agent::pick_device("cuda");  // built with CUDA, and a device visible
  } catch (const Error& e) {
    STRATA_FAIL("device: " << e.what());
  }
  const auto n = static_cast<int64_t>(torch::cuda::device_count());
  STRATA_CHECK(!dev.has_index() || dev.index() < n,
               "device: \"" << name << "\" requested but only " << n << " CUDA device(s) are visible");
  return dev;
}

size_t discard_body(char*, size_t size, size_t n, void*) { return size * n; }

// One HTTP request; the status (0 when nothing came back) and curl's message in `err`.
long http_status(const std::string& url, const std::string* post_json, std::string& err) {
  CURL* h = curl_easy_init();
  STRATA_CHECK(h != nullptr, "curl_easy_init failed");
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &discard_body);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_slist* headers = nullptr;
  if (post_json != nullptr) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_json->c_str());
  }
  const CURLcode rc = curl_easy_perform(h);
  long status = 0;
  if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  else err = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return status;
}

// The daemon answers GET /health (strata's retrieval_server), or at least a one-query POST to
// the /retrieve URL (Search-R1's own server has no /health).
void check_retriever(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const std::string health = (path == std::string::npos ? url : url.substr(0, url.rfind('/'))) + "/health";
  std::string err;
  const long st = http_status(health, nullptr, err);
  STRATA_CHECK(st != 0, "retriever: cannot reach the retrieval daemon at "
                            << health << " (" << err << "). Start it first, e.g. build/bin/retrieval_server --index "
                            << "INDEX --port PORT, or set retriever to the /retrieve URL of a running one");
  if (st == 200) return;
  const std::string probe = R"({"queries": ["health check"], "topk": 1})";
  const long ps = http_status(url, &probe, err);
  STRATA_CHECK(ps == 200, "retriever: the retrieval daemon does not work: GET "
                              << health << " answered HTTP " << st << " and POST " << url << " answered "
                              << (ps == 0 ? err : "HTTP " + std::to_string(ps)));
}

void check_model_dir(const std::string& key, const std::string& dir) {
  STRATA_CHECK(fs::is_directory(dir), key << ": model directory '" << dir << "' does not exist");
  STRATA_CHECK(fs::exists(fs::path(dir) / "config.json"), key << ": '" << dir << "' has no config.json");
  STRATA_CHECK(fs::exists(fs::path(dir) / "model.safetensors") ||
                   fs::exists(fs::path(dir) / "model.safetensors.index.json"),
               key << ": '" << dir << "' has neither model.safetensors nor model.safetensors.index.json");
}

// ---- checkpoints -----------------------------------------------------------------------------

struct LoopState {
  int step = 0;                 // steps completed
  size_t cursor = 0;            // position in `order`
  std::vector<size_t> order;    // question order of the current pass
  std::string rng;              // data RNG state
};

// STRATA_TEST_PAUSE_IN_CHECKPOINT=N: see train_grpo's comment in trainer.h.
void maybe_pause_for_test(const std::string& tmp, int step) {
  const char* env = std::getenv("STRATA_TEST_PAUSE_IN_CHECKPOINT");
  if (env == nullptr || std::atoi(env) != step) return;
  std::ofstream(tmp + ".paused") << "paused\n";
  STRATA_LOG_WARN("STRATA_TEST_PAUSE_IN_CHECKPOINT: paused while writing {}", tmp);
  for (int i = 0; i < 6000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

void write_checkpoint(const std::string& root, const TrainerConfig& cfg, const agent::Model& weights,
                      torch::optim::Optimizer& optim, const LoopState& st) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%06d", st.step);
  const std::string final_dir = root + "/" + name;
  const std::string tmp = root + "/.tmp_" + name;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  agent::save_model(weights, tmp + "/model", cfg.model);
  torch::save(optim, tmp + "/optimizer.pt");
  maybe_pause_for_test(tmp, st.step);
  nlohmann::json j;
  j["step"] = st.step;
  j["cursor"] = st.cursor;
  j["order"] = st.order;
  j["rng"] = st.rng;
  {
    std::ofstream out(tmp + "/state.json");
    out << j.dump() << "\n";
    std::ofstream c(tmp + "/config.json");
    c << config::to_json(cfg).dump(2) << "\n";
    STRATA_CHECK(out.good() && c.good(), "error while writing checkpoint " << tmp);
  }
  ::sync();  // the files are on disk before the rename makes the checkpoint visible
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  std::vector<std::string> all;
  for (const auto& e : fs::directory_iterator(root)) {
    const auto n = e.path().filename().string();
    if (n.rfind("step_", 0) == 0) all.push_back(e.path().string());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + cfg.keep_checkpoints < all.size(); ++i) fs::remove_all(all[i]);
  STRATA_LOG_INFO("checkpoint {}", final_dir);
}

// Drops metrics lines of steps after `step` (a run killed after logging a step whose checkpoint
// never finished logs that step again after the resume).
void trim_metrics(const std::string& path, int step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("step", 0) > step) continue;
    } catch (const std::exception&) {
      continue;  // a line cut by the kill
    }
    kept += line + "\n";
  }
  in.close();
  std::ofstream(path + ".tmp", std::ios::trunc) << kept;
  fs::rename(path + ".tmp", path);
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
}  // namespace

void add_batch_metrics(const std::vector<env::pb::Trajectory>& batch, const std::vector<double>& adv,
                       std::map<std::string, double>& m) {
  STRATA_CHECK(adv.size() == batch.size(), adv.size() << " advantages for " << batch.size() << " trajectories");
  const double n = static_cast<double>(std::max<size_t>(1, batch.size()));
  double reward = 0, em = 0, searches = 0, turns = 0, answered = 0;
  double prompt_tokens = 0, policy_tokens = 0, obs_tokens = 0;
  std::map<std::string, int> ends;
  struct Stratum {
    int count = 0;
    double reward = 0;
    std::vector<double> adv;  // of the trajectories in the loss (failed ones are not)
  };
  std::map<int64_t, Stratum> strata;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& t = batch[i];
    reward += t.reward();
    em += t.em();
    searches += t.num_searches();
    turns += t.turns_size();
    answered += t.end_reason() == "answered" ? 1 : 0;
    ends[t.end_reason()]++;
    prompt_tokens += t.prompt_ids_size();
    for (int k = 0; k < t.loss_mask_size(); ++k) (t.loss_mask(k) != 0 ? policy_tokens : obs_tokens) += 1;
    auto& s = strata[t.stratum()];
    s.count++;
    s.reward += t.reward();
    if (t.end_reason() != "retrieval_failed") s.adv.push_back(adv.at(i));
  }
  m["rollout/trajectories"] = static_cast<double>(batch.size());
  m["reward/mean"] = reward / n;
  m["reward/em"] = em / n;
  m["rollout/answer_rate"] = answered / n;
  m["rollout/searches_per_traj"] = searches / n;
  m["rollout/turns_per_traj"] = turns / n;
  m["rollout/response_len"] = policy_tokens / n;  // policy tokens per trajectory
  m["tokens/prompt"] = prompt_tokens;
  m["tokens/policy"] = policy_tokens;
  m["tokens/observation"] = obs_tokens;
  m["tokens/total"] = prompt_tokens + policy_tokens + obs_tokens;
  for (const auto& [reason, c] : ends) m["rollout/end/" + reason] = c / n;
  for (const auto& [k, s] : strata) {
    const std::string p = "stratum/" + std::to_string(k) + "/";
    m[p + "count"] = s.count;
    m[p + "reward"] = s.reward / s.count;
    m[p + "bias"] = s.reward / s.count - reward / n;  // the paper's cross-stratum bias, batch level
    if (s.adv.empty()) continue;
    double sum = 0, sq = 0;
    for (double a : s.adv) sum += a;
    const double mean = sum / static_cast<double>(s.adv.size());
    for (double a : s.adv) sq += (a - mean) * (a - mean);
    m[p + "adv"] = mean;
    m[p + "adv_std"] = std::sqrt(sq / static_cast<double>(s.adv.size()));  // population std
  }
}

TrainSummary summarize_metrics_file(const std::string& path) {
  std::map<int, nlohmann::json> rows;  // step -> its line (the last one wins)
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      auto j = nlohmann::json::parse(line);
      const int step = j.value("step", 0);
      rows[step] = std::move(j);
    } catch (const std::exception&) {
      continue;  // a line cut by a kill
    }
  }
  TrainSummary s;
  std::vector<double> rewards;
  for (const auto& [step, j] : rows) {
    s.steps = std::max(s.steps, step);
    rewards.push_back(j.value("reward/mean", 0.0));
    s.skipped_zero_advantage += j.value("update/skipped_zero_adv", 0.0) > 0 ? 1 : 0;
    s.trajectories += static_cast<int64_t>(j.value("rollout/trajectories", 0.0));
    s.failed += static_cast<int64_t>(j.value("rollout/failed", 0.0));
  }
  if (rewards.empty()) return s;
  const size_t w = std::min<size_t>(5, std::max<size_t>(1, rewards.size() / 2));
  s.window = static_cast<int>(w);
  for (size_t i = 0; i < w; ++i) {
    s.first_reward += rewards[i] / static_cast<double>(w);
    s.last_reward += rewards[rewards.size() - w + i] / static_cast<double>(w);
  }
  return s;
}

std::string format_summary(const TrainSummary& s) {
  auto range = [](int a, int b) { return a == b ? "step " + std::to_string(a) : "steps " + std::to_string(a) + "-" + std::to_string(b); };
  const int n = s.steps, w = std::max(1, s.window);
  return fmt::format("trained {} steps: mean reward {:.3f} ({}) -> {:.3f} ({}); {} of {} steps skipped (every "
                     "advantage 0); {} of {} trajectories failed (retrieval)",
                     n, s.first_reward, range(1, w), s.last_reward, range(n - w + 1, n), s.skipped_zero_advantage, n,
                     s.failed, s.trajectories);
}

TrainSummary train_grpo(const TrainerConfig& cfg, bool resume) {
  // ---- every check that is cheap, before any expensive work ----
  cfg.validate();
  const torch::Device dev = resolve_device(cfg.device);
  check_model_dir("model", cfg.model);
  const auto mcfg = agent::load_model_config(cfg.model);
  const std::string tok_path = cfg.model + "/tokenizer.json";
  STRATA_CHECK(fs::exists(tok_path), "model: '" << cfg.model << "' has no tokenizer.json");
  const auto tok = agent::Tokenizer::from_file(tok_path);
  STRATA_CHECK(tok.vocab_size() <= mcfg.vocab_size, "model: " << tok_path << " has " << tok.vocab_size()
                                                               << " tokens but the model's vocab_size is "
                                                               << mcfg.vocab_size);
  if (cfg.rollout.chat == "chatml")
    STRATA_CHECK(tok.token_to_id("<|im_start|>") >= 0 && tok.token_to_id("<|im_end|>") >= 0,
                 "rollout.chat: chatml needs the special tokens <|im_start|> and <|im_end|>, which "
                     << tok_path << " lacks");
  (void)encode_prompt(tok, "check", cfg.rollout.chat);
  STRATA_CHECK(fs::exists(cfg.train_data), "train_data: '" << cfg.train_data << "' does not exist");
  const auto questions = data::read_qa_file(cfg.train_data);
  STRATA_CHECK(!questions.empty(), "train_data: " << cfg.train_data << ": no questions");
  check_retriever(cfg.retriever);
  const std::string ckpt_root = cfg.out_dir + "/checkpoints";
  try {
    fs::create_directories(cfg.out_dir + "/rollouts");
  } catch (const fs::filesystem_error& e) {
    STRATA_FAIL("out_dir: cannot create '" << cfg.out_dir << "': " << e.code().message());
  }
  remove_unfinished_checkpoints(ckpt_root);

  LoopState st;
  std::string from;
  if (resume) {
    from = newest_checkpoint(ckpt_root);
    STRATA_CHECK(!from.empty(), "--resume: no checkpoint in " << ckpt_root);
    // The saved config through today's reader, so keys added since then take their defaults.
    const auto saved = config::to_json(config::from_document<TrainerConfig>(config::load_document(from + "/config.json")));
    const auto now = config::to_json(cfg);
    std::vector<std::string> diffs;
    for (auto it = now.begin(); it != now.end(); ++it)
      if (!resumable_key(it.key())) diff_json(saved.contains(it.key()) ? saved[it.key()] : nlohmann::json(),
                                              it.value(), it.key(), diffs);
    // The LR of the steps already taken depends on `steps` with cosine or a warm-up ratio.
    if ((cfg.lr_schedule == "cosine" || cfg.warmup_ratio > 0) && saved.value("steps", 0) != cfg.steps)
      diffs.push_back("steps (the LR schedule depends on it: " + std::to_string(saved.value("steps", 0)) + " -> " +
                      std::to_string(cfg.steps) + ")");
    std::string diff;
    for (const auto& d : diffs) diff += (diff.empty() ? "" : ", ") + d;
    STRATA_CHECK(diff.empty(), "--resume: the config differs from the checkpoint's (" << from
                                   << "/config.json) in: " << diff);
    check_model_dir("--resume", from + "/model");
    STRATA_CHECK(fs::exists(from + "/optimizer.pt"), "--resume: " << from << " has no optimizer.pt");
    std::ifstream in(from + "/state.json");
    const auto j = nlohmann::json::parse(in);
    st.step = j["step"].get<int>();
    st.cursor = j["cursor"].get<size_t>();
    st.order = j["order"].get<std::vector<size_t>>();
    st.rng = j["rng"].get<std::string>();
    STRATA_CHECK(st.order.size() == questions.size(), "--resume: the checkpoint's data order has "
                                                          << st.order.size() << " questions, " << cfg.train_data
                                                          << " has " << questions.size());
    STRATA_LOG_INFO("resuming from {} (step {})", from, st.step);
  }

  // ---- expensive work from here on ----
  if (cfg.threads > 0) at::set_num_threads(cfg.threads);
  const int update_threads = at::get_num_threads();
  const int rollout_threads = cfg.rollout_threads > 0 ? cfg.rollout_threads : update_threads;
  {
    std::ofstream c(cfg.out_dir + "/config.json");
    c << config::to_json(cfg).dump(2) << "\n";
  }
  if (resume) trim_metrics(cfg.out_dir + "/metrics.jsonl", st.step);
  agent::LoadOptions lo_cpu;
  lo_cpu.device = "cpu";
  lo_cpu.dtype = "float32";
  const bool master_mode = cfg.precision == "bf16_master";
  const bool autocast = cfg.precision == "bf16";
  agent::Model policy = agent::load_model(resume ? from + "/model" : cfg.model, lo_cpu);
  MixedPrecision mp;
  mp.autocast_bf16 = autocast;
  {
    torch::NoGradGuard ng;
    if (master_mode) {
      for (const auto& p : policy.parameters()) mp.master.push_back(p.to(dev, torch::kFloat32, false, /*copy=*/true));
      policy.to(dev, torch::kBFloat16);
    } else {
      policy.to(dev, torch::kFloat32);
    }
  }
  const bool kl_on = cfg.loss.kl_estimator != "off" && cfg.loss.kl_coef > 0;
  agent::Model reference;
  if (kl_on) {
    reference = agent::load_model(cfg.model, lo_cpu);
    torch::NoGradGuard ng;
    reference.to(dev, master_mode ? torch::kBFloat16 : torch::kFloat32);
  }
  // What generates: the policy itself, or a bf16 copy refreshed after every update.
  const bool rollout_bf16 = bf16_rollouts(cfg, cpu_has_bf16_dot());
  const bool rollout_copy = rollout_bf16 && !master_mode;
  agent::Model rollout_model = policy;
  if (rollout_copy) {
    torch::NoGradGuard ng;
    rollout_model.to(dev, torch::kBFloat16);
  }
  STRATA_LOG_INFO("rollouts in {}{} (rollout_precision={})", rollout_bf16 ? "bf16" : "fp32",
                  rollout_copy ? ", on a bf16 copy of the policy refreshed after each update" : "",
                  cfg.rollout_precision == "auto" && cfg.precision == "fp32" && rollout_bf16
                      ? "auto: this CPU has AVX512-BF16 or AMX; set fp32 to sample from the fp32 policy"
                      : cfg.rollout_precision);
  STRATA_LOG_INFO("policy on {} ({}; {} parameters)", dev.str(), cfg.precision,
                  [&] {
                    int64_t n = 0;
                    for (const auto& p : policy.parameters()) n += p.numel();
                    return n;
                  }());
  Rng rng = Rng(cfg.seed).fork("data");
  if (resume) {
    rng.set_state(st.rng);
  } else {
    st.order.resize(questions.size());
    for (size_t i = 0; i < st.order.size(); ++i) st.order[i] = i;
    rng.shuffle(st.order);
  }

  retrieval::ClientOptions co;
  co.url = cfg.retriever;
  co.seed = cfg.seed;
  retrieval::RetrievalClient client(co);
  policy.set_requires_grad(true);
  torch::optim::AdamW optim(master_mode ? mp.master : policy.parameters(),
                            torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
  if (resume) torch::load(optim, from + "/optimizer.pt", dev);
  TensorBoardWriter tb(cfg.out_dir + "/tb");
  std::ofstream jsonl(cfg.out_dir + "/metrics.jsonl", std::ios::app);
  const auto t_start = Clock::now();
  const int first_step = st.step + 1;

  for (int step = first_step; step <= cfg.steps; ++step) {
    std::vector<data::QaRecord> prompts;
    for (int i = 0; i < cfg.prompts_per_step; ++i) {
      if (st.cursor == st.order.size()) {
        st.cursor = 0;
        rng.shuffle(st.order);
      }
      prompts.push_back(questions[st.order[st.cursor++]]);
    }
    const double lr = lr_at_step(cfg, step);
    for (auto& g : optim.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);

    const auto t0 = Clock::now();
    auto rollout = cfg.rollout;
    rollout.seed = mix64(cfg.seed + static_cast<uint64_t>(step));
    policy.set_requires_grad(false);
    if (rollout_threads != update_threads) at::set_num_threads(rollout_threads);
    const auto batch = run_rollouts(rollout_model, tok, client, prompts, rollout, step,
                                    static_cast<int64_t>(step) * cfg.prompts_per_step);
    if (rollout_threads != update_threads) at::set_num_threads(update_threads);
    policy.set_requires_grad(true);
    sync_device(dev);
    const double t_rollout = since(t0);
    {
      char name[64];
      std::snprintf(name, sizeof name, "/rollouts/step_%06d.pb", step);
      env::RolloutWriter w(cfg.out_dir + name);
      for (const auto& t : batch.trajectories) w.write(t);
      w.flush();
    }
    const auto adv = batch_advantages(batch.trajectories, cfg.advantage);
    const auto t1 = Clock::now();
    UpdateOptions uo = cfg.update;
    uo.temperature = cfg.rollout.temperature > 0 ? cfg.rollout.temperature : 1.0;
    const auto upd = ppo_update(policy, kl_on ? &reference : nullptr, optim, batch.trajectories, adv,
                                cfg.loss, uo, cfg.seed + step, mp);
    if (rollout_copy && upd.optimizer_steps > 0) copy_master_to_model(policy.parameters(), rollout_model);
    sync_device(dev);
    const double t_update = since(t1);

    std::map<std::string, double> m = upd.scalars;
    add_batch_metrics(batch.trajectories, adv, m);
    m["rollout/tokens_per_s"] = batch.metrics.tokens_per_s;
    m["rollout/occupancy"] = batch.metrics.mean_occupancy;
    m["rollout/failed"] = static_cast<double>(batch.metrics.failed);
    m["rollout/retrieval_p99_ms"] = batch.metrics.retrieval_p99_ms;
    m["rollout/bf16"] = rollout_bf16 ? 1 : 0;
    // The step's time split: rollout, the separate old and reference log-prob forwards, and the
    // training passes (forward, backward, optimiser); update_s is the last three together.
    m["time/rollout_s"] = t_rollout;
    m["time/update_s"] = t_update;
    m["time/train_s"] = std::max(0.0, t_update - m["time/old_logp_s"] - m["time/ref_logp_s"]);
    m["time/step_s"] = since(t0);
    m["lr"] = lr;
    std::string strata_text;
    for (const auto& [key, v] : m) {
      const std::string pre = "stratum/", suf = "/count";
      if (key.rfind(pre, 0) != 0 || key.size() <= pre.size() + suf.size() ||
          key.compare(key.size() - suf.size(), suf.size(), suf) != 0)
        continue;
      const std::string k = key.substr(pre.size(), key.size() - pre.size() - suf.size());
      strata_text += " s" + k + ":" + std::to_string(static_cast<int>(v)) + "@" +
                     fmt::format("{:.2f}", m.at("stratum/" + k + "/reward"));
    }
    tb.scalars(step, m);
    tb.flush();
    nlohmann::json j(m);
    j["step"] = step;
    jsonl << j.dump() << "\n";
    jsonl.flush();
    const double elapsed = since(t_start);
    // Quantities the update did not compute (a skipped batch, KL off) print as "-", never as 0.
    auto val = [&m](const char* k, int decimals) {
      const auto it = m.find(k);
      return it == m.end() ? std::string("-") : fmt::format("{:.{}f}", it->second, decimals);
    };
    STRATA_LOG_INFO("step {}/{} reward {:.3f} em {:.3f} answered {:.2f} searches {:.2f} len {:.0f} strata[{} ] "
                    "kl {} ent {} clip {} gnorm {} lr {:.3g} {:.0f} tok/s time rollout {:.1f}s old {:.1f}s "
                    "ref {:.1f}s train {:.1f}s{} ETA {}",
                    step, cfg.steps, m["reward/mean"], m["reward/em"], m["rollout/answer_rate"],
                    m["rollout/searches_per_traj"], m["rollout/response_len"], strata_text, val("loss/kl", 4),
                    val("entropy", 3), val("clip_frac", 3), val("grad_norm", 3), lr, batch.metrics.tokens_per_s,
                    t_rollout, m["time/old_logp_s"], m["time/ref_logp_s"], m["time/train_s"],
                    upd.skipped_zero_advantage ? " [no update: every advantage is 0]" : "",
                    Progress::format_duration(elapsed / (step - first_step + 1) * (cfg.steps - step)));
    st.step = step;
    st.rng = rng.state();
    if (step == cfg.steps || (cfg.save_every > 0 && step % cfg.save_every == 0))
      write_checkpoint(ckpt_root, cfg, fp32_weights(policy, mp.master), optim, st);
  }
  policy.set_requires_grad(false);
  agent::save_model(fp32_weights(policy, mp.master), cfg.out_dir + "/final", cfg.model);
  STRATA_LOG_INFO("saved the policy to {}/final", cfg.out_dir);
  jsonl.close();
  return summarize_metrics_file(cfg.out_dir + "/metrics.jsonl");
}

}  // namespace strata::rl
