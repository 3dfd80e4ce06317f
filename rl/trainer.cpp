#include "rl/trainer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

#include <algorithm>

#include "agent/checkpoint.h"
#include "agent/tokenizer.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/tensorboard.h"
#include "data/qa.h"
#include "env/rollout_file.h"

namespace strata::rl {

void TrainerConfig::validate() const {
  STRATA_CHECK(!model.empty(), "model: a model directory is required");
  STRATA_CHECK(!train_data.empty(), "train_data: a QA file is required");
  STRATA_CHECK(steps >= 1, "steps: expected >= 1, got " << steps);
  STRATA_CHECK(prompts_per_step >= 1, "prompts_per_step: expected >= 1, got " << prompts_per_step);
  STRATA_CHECK(lr > 0, "lr: expected > 0, got " << lr);
  STRATA_CHECK(warmup_steps >= 0, "warmup_steps: expected >= 0, got " << warmup_steps);
  STRATA_CHECK(save_every >= 0, "save_every: expected >= 0, got " << save_every);
  STRATA_CHECK(keep_checkpoints >= 1, "keep_checkpoints: expected >= 1, got " << keep_checkpoints);
  rollout.validate();
  advantage.validate();
  loss.validate();
  update.validate();
}

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

namespace fs = std::filesystem;

// Keys whose change does not alter the run itself, so a resume may change them.
bool resumable_key(const std::string& k) {
  return k == "steps" || k == "out_dir" || k == "threads" || k == "save_every" || k == "keep_checkpoints";
}

std::string newest_checkpoint(const std::string& root) {
  std::string best;
  if (!fs::is_directory(root)) return best;
  for (const auto& e : fs::directory_iterator(root)) {
    const auto name = e.path().filename().string();
    if (name.rfind("step_", 0) == 0 && e.is_directory() && name > fs::path(best).filename().string())
      best = e.path().string();
  }
  return best;
}

struct LoopState {
  int step = 0;                 // steps completed
  size_t cursor = 0;            // position in `order`
  std::vector<size_t> order;    // question order of the current pass
  std::string rng;              // data RNG state
};

void write_checkpoint(const std::string& root, const TrainerConfig& cfg, const agent::Model& policy,
                      torch::optim::Optimizer& optim, const LoopState& st) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%06d", st.step);
  const std::string final_dir = root + "/" + name;
  const std::string tmp = root + "/.tmp_" + name;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  agent::save_model(policy, tmp + "/model", cfg.model);
  torch::save(optim, tmp + "/optimizer.pt");
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
}  // namespace

TrainSummary train_grpo(const TrainerConfig& cfg, bool resume) {
  cfg.validate();
  if (cfg.threads > 0) at::set_num_threads(cfg.threads);
  const std::string ckpt_root = cfg.out_dir + "/checkpoints";
  fs::create_directories(cfg.out_dir + "/rollouts");
  const auto tok = agent::Tokenizer::from_file(cfg.model + "/tokenizer.json");
  const auto questions = data::read_qa_file(cfg.train_data);
  STRATA_CHECK(!questions.empty(), cfg.train_data << ": no questions");

  LoopState st;
  std::string from;
  if (resume) {
    from = newest_checkpoint(ckpt_root);
    STRATA_CHECK(!from.empty(), "--resume: no checkpoint in " << ckpt_root);
    const auto saved = config::load_document(from + "/config.json").json;
    const auto now = config::to_json(cfg);
    std::string diff;
    for (auto it = now.begin(); it != now.end(); ++it)
      if (!resumable_key(it.key()) && (!saved.contains(it.key()) || saved[it.key()] != it.value()))
        diff += (diff.empty() ? "" : ", ") + it.key();
    STRATA_CHECK(diff.empty(), "--resume: the config differs from the checkpoint's (" << from
                                   << "/config.json) in: " << diff);
    std::ifstream in(from + "/state.json");
    const auto j = nlohmann::json::parse(in);
    st.step = j["step"].get<int>();
    st.cursor = j["cursor"].get<size_t>();
    st.order = j["order"].get<std::vector<size_t>>();
    st.rng = j["rng"].get<std::string>();
    STRATA_LOG_INFO("resuming from {} (step {})", from, st.step);
  }
  {
    std::ofstream c(cfg.out_dir + "/config.json");
    c << config::to_json(cfg).dump(2) << "\n";
  }
  auto policy = agent::load_model(resume ? from + "/model" : cfg.model);
  const bool kl_on = cfg.loss.kl_estimator != "off" && cfg.loss.kl_coef > 0;
  agent::Model reference;
  if (kl_on) reference = agent::load_model(cfg.model);
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
  torch::optim::AdamW optim(policy.parameters(),
                            torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
  if (resume) torch::load(optim, from + "/optimizer.pt");
  TensorBoardWriter tb(cfg.out_dir + "/tb");
  std::ofstream jsonl(cfg.out_dir + "/metrics.jsonl", std::ios::app);
  TrainSummary summary;
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
    const double lr = cfg.warmup_steps > 0 ? cfg.lr * std::min(1.0, step / static_cast<double>(cfg.warmup_steps)) : cfg.lr;
    for (auto& g : optim.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);

    const auto t0 = Clock::now();
    auto rollout = cfg.rollout;
    rollout.seed = mix64(cfg.seed + static_cast<uint64_t>(step));
    policy.set_requires_grad(false);
    const auto batch = run_rollouts(policy, tok, client, prompts, rollout, step,
                                    static_cast<int64_t>(step) * cfg.prompts_per_step);
    policy.set_requires_grad(true);
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
                                cfg.loss, uo, cfg.seed + step);
    const double t_update = since(t1);

    std::map<std::string, double> m = upd.scalars;
    double reward = 0, em = 0, searches = 0;
    std::map<int64_t, std::pair<int, double>> strata;  // stratum -> (count, reward sum)
    for (const auto& t : batch.trajectories) {
      reward += t.reward();
      em += t.em();
      searches += t.num_searches();
      strata[t.stratum()].first++;
      strata[t.stratum()].second += t.reward();
    }
    const double n = static_cast<double>(batch.trajectories.size());
    m["reward/mean"] = reward / n;
    m["reward/em"] = em / n;
    m["rollout/searches_per_traj"] = searches / n;
    m["rollout/tokens_per_s"] = batch.metrics.tokens_per_s;
    m["rollout/occupancy"] = batch.metrics.mean_occupancy;
    m["rollout/failed"] = static_cast<double>(batch.metrics.failed);
    m["rollout/retrieval_p99_ms"] = batch.metrics.retrieval_p99_ms;
    m["time/rollout_s"] = t_rollout;
    m["time/update_s"] = t_update;
    m["lr"] = lr;
    std::string strata_text;
    for (const auto& [k, cr] : strata) {
      m["stratum/" + std::to_string(k) + "/count"] = cr.first;
      m["stratum/" + std::to_string(k) + "/reward"] = cr.second / cr.first;
      // The paper's cross-stratum bias (mean_k - mean) at batch level.
      m["stratum/" + std::to_string(k) + "/bias"] = cr.second / cr.first - reward / n;
      strata_text += " s" + std::to_string(k) + ":" + std::to_string(cr.first) + "@" +
                     fmt::format("{:.2f}", cr.second / cr.first);
    }
    tb.scalars(step, m);
    tb.flush();
    nlohmann::json j(m);
    j["step"] = step;
    jsonl << j.dump() << "\n";
    jsonl.flush();
    const double elapsed = since(t_start);
    STRATA_LOG_INFO("step {}/{} reward {:.3f} em {:.3f} searches {:.2f} strata[{} ] kl {:.4f} "
                    "ent {:.3f} clip {:.3f} gnorm {:.3f} {:.0f} tok/s rollout {:.1f}s update {:.1f}s ETA {}",
                    step, cfg.steps, m["reward/mean"], m["reward/em"], m["rollout/searches_per_traj"],
                    strata_text, m["loss/kl"], m["entropy"], m["clip_frac"], m["grad_norm"],
                    batch.metrics.tokens_per_s, t_rollout, t_update,
                    Progress::format_duration(elapsed / (step - first_step + 1) * (cfg.steps - step)));
    if (step == first_step) summary.first_reward = m["reward/mean"];
    summary.last_reward = m["reward/mean"];
    summary.steps = step;
    st.step = step;
    st.rng = rng.state();
    if (step == cfg.steps || (cfg.save_every > 0 && step % cfg.save_every == 0))
      write_checkpoint(ckpt_root, cfg, policy, optim, st);
  }
  policy.set_requires_grad(false);
  agent::save_model(policy, cfg.out_dir + "/final", cfg.model);
  STRATA_LOG_INFO("saved the policy to {}/final", cfg.out_dir);
  return summary;
}

}  // namespace strata::rl
