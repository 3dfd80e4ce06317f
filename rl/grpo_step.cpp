#include "rl/grpo_step.h"

#include <algorithm>
#include <cmath>

#include "agent/logprobs.h"
#include "core/error.h"
#include "core/rng.h"

namespace strata::rl {

void UpdateOptions::validate() const {
  STRATA_CHECK(ppo_epochs >= 1, "update.ppo_epochs: expected >= 1, got " << ppo_epochs);
  STRATA_CHECK(mini_batch >= 1, "update.mini_batch: expected >= 1, got " << mini_batch);
  STRATA_CHECK(micro_batch >= 1 && micro_batch <= mini_batch,
               "update.micro_batch: expected 1..mini_batch (" << mini_batch << "), got " << micro_batch);
  STRATA_CHECK(grad_clip >= 0, "update.grad_clip: expected >= 0, got " << grad_clip);
  STRATA_CHECK(temperature > 0, "update.temperature: expected > 0, got " << temperature);
}

namespace {
bool failed(const env::pb::Trajectory& t) { return t.end_reason() == "retrieval_failed"; }

// Padded tensors for trajectories `idx`: ids [N, T] (prompt + response), attention [N, T],
// targets [N, T] (ids shifted left), loss mask over targets [N, T] (response policy tokens only).
struct Packed {
  torch::Tensor ids, attn, targets, mask;
};
Packed pack(const std::vector<env::pb::Trajectory>& batch, const std::vector<size_t>& idx) {
  int64_t T = 0;
  for (size_t i : idx) T = std::max<int64_t>(T, batch[i].prompt_ids_size() + batch[i].response_ids_size());
  const int64_t N = static_cast<int64_t>(idx.size());
  Packed p{torch::zeros({N, T}, torch::kLong), torch::zeros({N, T}, torch::kLong),
           torch::zeros({N, T}, torch::kLong), torch::zeros({N, T}, torch::kFloat)};
  auto ids = p.ids.accessor<int64_t, 2>();
  auto attn = p.attn.accessor<int64_t, 2>();
  auto tgt = p.targets.accessor<int64_t, 2>();
  auto m = p.mask.accessor<float, 2>();
  for (int64_t r = 0; r < N; ++r) {
    const auto& t = batch[idx[r]];
    const int64_t P = t.prompt_ids_size();
    const int64_t L = P + t.response_ids_size();
    for (int64_t k = 0; k < L; ++k) {
      ids[r][k] = k < P ? t.prompt_ids(k) : t.response_ids(k - P);
      attn[r][k] = 1;
    }
    // Position k scores token k+1; response token j sits at P+j and is scored at P+j-1.
    for (int64_t k = 0; k + 1 < L; ++k) tgt[r][k] = ids[r][k + 1];
    for (int j = 0; j < t.response_ids_size(); ++j)
      if (t.loss_mask(j) != 0 && P + j - 1 >= 0) m[r][P + j - 1] = 1.0f;
  }
  return p;
}
}  // namespace

std::vector<double> batch_advantages(const std::vector<env::pb::Trajectory>& batch,
                                     const AdvantageOptions& opts) {
  std::vector<TrajectoryScore> scores;
  std::vector<size_t> where;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (failed(batch[i])) continue;
    scores.push_back({batch[i].group(), batch[i].reward(), batch[i].stratum()});
    where.push_back(i);
  }
  std::vector<double> out(batch.size(), 0.0);
  if (scores.empty()) return out;
  const auto a = compute_advantages(scores, opts);
  for (size_t k = 0; k < where.size(); ++k) out[where[k]] = a[k];
  return out;
}

UpdateStats ppo_update(agent::Model& policy, const agent::Model* reference,
                       torch::optim::Optimizer& optim,
                       const std::vector<env::pb::Trajectory>& batch,
                       const std::vector<double>& advantages, const LossOptions& loss,
                       const UpdateOptions& opts, uint64_t seed) {
  opts.validate();
  loss.validate();
  std::vector<size_t> usable;
  for (size_t i = 0; i < batch.size(); ++i)
    if (!failed(batch[i])) usable.push_back(i);
  UpdateStats st;
  if (usable.empty()) return st;
  const auto dev = policy.device();
  agent::LogprobOptions lo;
  lo.temperature = opts.temperature;

  // Old (proximal) and reference log-probs for every usable trajectory, without gradients.
  std::map<size_t, torch::Tensor> old_lp, ref_lp;
  {
    torch::NoGradGuard ng;
    for (size_t s = 0; s < usable.size(); s += opts.micro_batch) {
      std::vector<size_t> idx(usable.begin() + s, usable.begin() + std::min(usable.size(), s + opts.micro_batch));
      const Packed p = pack(batch, idx);
      const auto lp = agent::token_logprobs(policy, p.ids.to(dev), p.attn.to(dev), p.targets.to(dev), p.mask.to(dev), lo).logprobs;
      torch::Tensor rl;
      if (reference != nullptr)
        rl = agent::token_logprobs(*reference, p.ids.to(dev), p.attn.to(dev), p.targets.to(dev), p.mask.to(dev), lo).logprobs;
      for (size_t r = 0; r < idx.size(); ++r) {
        old_lp[idx[r]] = lp[static_cast<int64_t>(r)].cpu();
        if (rl.defined()) ref_lp[idx[r]] = rl[static_cast<int64_t>(r)].cpu();
      }
    }
  }

  Rng rng = Rng(seed).fork("ppo");
  double sum_pg = 0, sum_kl = 0, sum_ent = 0, sum_clip = 0, sum_norm = 0;
  int micro_count = 0;
  const bool want_entropy = loss.entropy_coef != 0;
  for (int epoch = 0; epoch < opts.ppo_epochs; ++epoch) {
    std::vector<size_t> order = usable;
    rng.shuffle(order);
    for (size_t m0 = 0; m0 < order.size(); m0 += opts.mini_batch) {
      const size_t m1 = std::min(order.size(), m0 + opts.mini_batch);
      optim.zero_grad();
      bool finite = true;
      for (size_t s = m0; s < m1; s += opts.micro_batch) {
        std::vector<size_t> idx(order.begin() + s, order.begin() + std::min(m1, s + opts.micro_batch));
        const Packed p = pack(batch, idx);
        auto lo_g = lo;
        lo_g.with_entropy = want_entropy;
        const auto cur = agent::token_logprobs(policy, p.ids.to(dev), p.attn.to(dev), p.targets.to(dev), p.mask.to(dev), lo_g);
        const int64_t T = p.ids.size(1);
        std::vector<torch::Tensor> olds, refs;
        std::vector<float> adv;
        for (size_t i : idx) {
          olds.push_back(torch::constant_pad_nd(old_lp.at(i), {0, T - old_lp.at(i).size(0)}));
          if (reference != nullptr) refs.push_back(torch::constant_pad_nd(ref_lp.at(i), {0, T - ref_lp.at(i).size(0)}));
          adv.push_back(static_cast<float>(advantages[i]));
        }
        LossInputs in;
        in.logprobs = cur.logprobs;                     // [n, T]
        in.old_logprobs = torch::stack(olds).to(dev);   // [n, T]
        if (reference != nullptr) in.ref_logprobs = torch::stack(refs).to(dev);
        in.advantages = torch::tensor(adv).to(dev);     // [n]
        in.mask = p.mask.to(dev);                       // [n, T]
        if (want_entropy) in.entropy = cur.entropy;
        auto lopts = loss;
        if (reference == nullptr) lopts.kl_estimator = "off";
        const auto out = policy_loss(in, lopts);
        const double frac = static_cast<double>(idx.size()) / static_cast<double>(m1 - m0);
        const auto scaled = out.loss * frac;
        if (!std::isfinite(scaled.item<double>())) {
          finite = false;
          break;
        }
        scaled.backward();
        sum_pg += out.pg_loss;
        sum_kl += out.kl;
        sum_ent += out.entropy;
        sum_clip += out.clip_frac;
        ++micro_count;
      }
      auto params = policy.parameters();
      double norm = 0;
      if (finite) {
        norm = opts.grad_clip > 0 ? torch::nn::utils::clip_grad_norm_(params, opts.grad_clip)
                                  : torch::nn::utils::clip_grad_norm_(params, 1e30);
        finite = std::isfinite(norm);
      }
      if (!finite) {
        ++st.skipped_steps;  // never applied: the step's gradients are dropped
        optim.zero_grad();
        continue;
      }
      optim.step();
      sum_norm += norm;
      ++st.optimizer_steps;
    }
  }
  const double mc = std::max(1, micro_count);
  st.scalars["loss/pg"] = sum_pg / mc;
  st.scalars["loss/kl"] = sum_kl / mc;
  st.scalars["entropy"] = sum_ent / mc;
  st.scalars["clip_frac"] = sum_clip / mc;
  st.scalars["grad_norm"] = st.optimizer_steps ? sum_norm / st.optimizer_steps : 0.0;
  st.scalars["skipped_steps"] = st.skipped_steps;
  return st;
}

}  // namespace strata::rl
