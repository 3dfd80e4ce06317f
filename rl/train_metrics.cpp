#include "rl/train_metrics.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "env/rollout_file.h"

namespace strata::rl {

BatchStats batch_stats(const std::vector<env::pb::Trajectory>& batch, const std::vector<double>& adv) {
  STRATA_CHECK(adv.size() == batch.size(), adv.size() << " advantages for " << batch.size() << " trajectories");
  BatchStats s;
  s.trajectories = static_cast<int64_t>(batch.size());
  const double n = static_cast<double>(std::max<size_t>(1, batch.size()));
  double reward = 0, em = 0, searches = 0, turns = 0, answered = 0;
  std::map<env::EndReason, int> ends;
  std::map<int64_t, std::vector<double>> advs;  // of the trajectories in the loss (failed ones are not)
  std::map<int64_t, double> sums;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& t = batch[i];
    const env::EndReason end = env::end_reason_of(t);
    reward += t.reward();
    em += t.em();
    searches += t.num_searches();
    turns += t.turns_size();
    answered += end == env::EndReason::kAnswered ? 1 : 0;
    ends[end]++;
    s.prompt_tokens += t.prompt_ids_size();
    for (int k = 0; k < t.loss_mask_size(); ++k) (t.loss_mask(k) != 0 ? s.policy_tokens : s.observation_tokens) += 1;
    s.strata[t.stratum()].count++;
    sums[t.stratum()] += t.reward();
    if (end != env::EndReason::kRetrievalFailed) advs[t.stratum()].push_back(adv.at(i));
  }
  s.reward = reward / n;
  s.em = em / n;
  s.answer_rate = answered / n;
  s.searches = searches / n;
  s.turns = turns / n;
  s.response_len = s.policy_tokens / n;
  for (const auto& [reason, c] : ends) s.end_share[reason] = c / n;
  for (auto& [k, st] : s.strata) {
    st.reward = sums[k] / st.count;
    st.bias = st.reward - reward / n;
    const auto& a = advs[k];
    if (a.empty()) continue;
    double sum = 0, sq = 0;
    for (double x : a) sum += x;
    const double mean = sum / static_cast<double>(a.size());
    for (double x : a) sq += (x - mean) * (x - mean);
    st.has_adv = true;
    st.adv = mean;
    st.adv_std = std::sqrt(sq / static_cast<double>(a.size()));  // population std
  }
  return s;
}

void write_batch_metrics(const BatchStats& s, std::map<std::string, double>& m) {
  m["rollout/trajectories"] = static_cast<double>(s.trajectories);
  m["reward/mean"] = s.reward;
  m["reward/em"] = s.em;
  m["rollout/answer_rate"] = s.answer_rate;
  m["rollout/searches_per_traj"] = s.searches;
  m["rollout/turns_per_traj"] = s.turns;
  m["rollout/response_len"] = s.response_len;  // policy tokens per trajectory
  m["tokens/prompt"] = s.prompt_tokens;
  m["tokens/policy"] = s.policy_tokens;
  m["tokens/observation"] = s.observation_tokens;
  m["tokens/total"] = s.prompt_tokens + s.policy_tokens + s.observation_tokens;
  for (const auto& [reason, share] : s.end_share) m[std::string("rollout/end/") + env::end_reason_name(reason)] = share;
  for (const auto& [k, st] : s.strata) {
    const std::string p = "stratum/" + std::to_string(k) + "/";
    m[p + "count"] = st.count;
    m[p + "reward"] = st.reward;
    m[p + "bias"] = st.bias;
    if (!st.has_adv) continue;
    m[p + "adv"] = st.adv;
    m[p + "adv_std"] = st.adv_std;
  }
}

void add_batch_metrics(const std::vector<env::pb::Trajectory>& batch, const std::vector<double>& advantages,
                       std::map<std::string, double>& m) {
  write_batch_metrics(batch_stats(batch, advantages), m);
}

std::map<std::string, double> step_metric_map(const StepMetrics& s) {
  std::map<std::string, double> m;
  const UpdateStats& u = s.update;
  m["update/skipped_zero_adv"] = u.skipped_zero_advantage ? 1 : 0;
  m["update/skipped_failed"] = s.skipped_failed ? 1 : 0;
  if (u.passes_ran || u.skipped_zero_advantage) m["skipped_steps"] = u.skipped_steps;
  if (u.passes_ran) m["update/old_logp_reused"] = u.old_logprobs_reused ? 1 : 0;
  // Present only when computed: never a 0 that was not measured.
  if (u.pg_loss) m["loss/pg"] = *u.pg_loss;
  if (u.kl) m["loss/kl"] = *u.kl;
  if (u.entropy) m["entropy"] = *u.entropy;
  if (u.clip_frac) m["clip_frac"] = *u.clip_frac;
  if (u.grad_norm) m["grad_norm"] = *u.grad_norm;
  if (u.logp_mismatch) m["rollout/logp_mismatch"] = *u.logp_mismatch;
  if (u.tis_ratio_mean) m["rollout/tis_ratio_mean"] = *u.tis_ratio_mean;
  if (u.tis_ratio_max) m["rollout/tis_ratio_max"] = *u.tis_ratio_max;
  if (u.tis_capped_frac) m["rollout/tis_capped_frac"] = *u.tis_capped_frac;
  write_batch_metrics(s.batch, m);
  m["rollout/tokens_per_s"] = s.rollout.tokens_per_s;
  m["rollout/occupancy"] = s.rollout.mean_occupancy;
  m["rollout/failed"] = static_cast<double>(s.rollout.failed);
  m["rollout/retrieval_p99_ms"] = s.rollout.retrieval_p99_ms;
  m["rollout/bf16"] = s.bf16_rollouts ? 1 : 0;  // bf16 activations: bf16 or int8 weights
  m["rollout/int8"] = s.int8_rollouts ? 1 : 0;
  // The step's time split: rollout, the separate old and reference log-prob forwards, and the
  // training passes (forward, backward, optimiser); update_s is the last three together.
  m["time/rollout_s"] = s.rollout_seconds;
  // The rollout phase split: the engine's prefill and decoding forwards and its lm_head +
  // sampling, waits on retrieval with nothing to generate, and the rest (the env's text work,
  // scheduling). With several ranks each part is the slowest rank's, so they need not add up.
  m["time/rollout_prefill_s"] = s.rollout.prefill_seconds;
  m["time/rollout_decode_s"] = s.rollout.decode_seconds;
  m["time/rollout_sample_s"] = s.rollout.sample_seconds;
  m["time/rollout_wait_s"] = s.rollout.wait_seconds;
  m["time/rollout_other_s"] = std::max(0.0, s.rollout_seconds - s.rollout.generate_seconds - s.rollout.wait_seconds);
  m["rollout/prefill_tokens"] = static_cast<double>(s.rollout.prefill_tokens);
  m["rollout/decode_tokens"] = static_cast<double>(s.rollout.decode_tokens);
  m["time/update_s"] = s.update_seconds;
  m["time/old_logp_s"] = u.old_logp_seconds;
  m["time/ref_logp_s"] = u.ref_logp_seconds;
  m["time/train_s"] = std::max(0.0, s.update_seconds - u.old_logp_seconds - u.ref_logp_seconds);
  m["time/step_s"] = s.step_seconds;
  m["lr"] = s.lr;
  return m;
}

std::string format_step_line(const StepMetrics& s, int steps, const std::string& eta) {
  std::string strata_text;
  for (const auto& [k, st] : s.batch.strata)
    strata_text += " s" + std::to_string(k) + ":" + std::to_string(st.count) + "@" + fmt::format("{:.2f}", st.reward);
  auto val = [](const std::optional<double>& v, int decimals) {
    return v ? fmt::format("{:.{}f}", *v, decimals) : std::string("-");
  };
  const UpdateStats& u = s.update;
  return fmt::format(
      "step {}/{} reward {:.3f} em {:.3f} answered {:.2f} searches {:.2f} len {:.0f} strata[{} ] kl {} ent {} clip {} "
      "gnorm {} lr {:.3g} {:.0f} tok/s time rollout {:.1f}s old {:.1f}s ref {:.1f}s train {:.1f}s{}{} ETA {}",
      s.step, steps, s.batch.reward, s.batch.em, s.batch.answer_rate, s.batch.searches, s.batch.response_len,
      strata_text, val(u.kl, 4), val(u.entropy, 3), val(u.clip_frac, 3), val(u.grad_norm, 3), s.lr,
      s.rollout.tokens_per_s, s.rollout_seconds, u.old_logp_seconds, u.ref_logp_seconds,
      std::max(0.0, s.update_seconds - u.old_logp_seconds - u.ref_logp_seconds),
      s.rollout.failed > 0 ? fmt::format(" failed {}/{}", s.rollout.failed, s.batch.trajectories) : std::string(),
      s.skipped_failed               ? " [not used: too many retrieval failures]"
      : u.skipped_zero_advantage ? " [no update: every advantage is 0]"
                                 : "",
      eta);
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
    s.skipped_failed += j.value("update/skipped_failed", 0.0) > 0 ? 1 : 0;
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
  std::string out = fmt::format(
      "trained {} steps: mean reward {:.3f} ({}) -> {:.3f} ({}); {} of {} steps skipped (every advantage 0); {} of {} "
      "trajectories failed (retrieval)",
      n, s.first_reward, range(1, w), s.last_reward, range(n - w + 1, n), s.skipped_zero_advantage, n, s.failed,
      s.trajectories);
  if (s.skipped_failed > 0)
    out += fmt::format("; {} of {} steps not used (too many retrieval failures)", s.skipped_failed, n);
  return out;
}

}  // namespace strata::rl
