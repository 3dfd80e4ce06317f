#include "rl/ppo_update.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "agent/logprobs.h"
#include "core/error.h"
#include "core/rng.h"
#include "rl/batch_advantages.h"

namespace strata::rl {

void UpdateOptions::validate() const {
  STRATA_CHECK(ppo_epochs >= 1, "ppo_epochs: expected >= 1, got " << ppo_epochs);
  STRATA_CHECK(mini_batch >= 1, "mini_batch: expected >= 1, got " << mini_batch);
  STRATA_CHECK(micro_batch >= 1 && micro_batch <= mini_batch,
               "micro_batch: expected 1..mini_batch (" << mini_batch << "), got " << micro_batch);
  STRATA_CHECK(grad_clip >= 0, "grad_clip: expected >= 0, got " << grad_clip);
  STRATA_CHECK(temperature > 0, "temperature: expected > 0, got " << temperature);
}

namespace {
// Padded tensors for trajectories `idx`: ids [N, T] (prompt + response), attention [N, T],
// targets [N, T] (ids shifted left), loss mask over targets [N, T] (response policy tokens only),
// the sampler's log-probs of the targets [N, T] (0 where the mask is 0).
struct Packed {
  torch::Tensor ids, attn, targets, mask, behaviour;
};
Packed pack(const std::vector<env::pb::Trajectory>& batch, const std::vector<size_t>& idx) {
  int64_t T = 0;
  for (size_t i : idx) T = std::max<int64_t>(T, batch[i].prompt_ids_size() + batch[i].response_ids_size());
  const int64_t N = static_cast<int64_t>(idx.size());
  Packed p{torch::zeros({N, T}, torch::kLong), torch::zeros({N, T}, torch::kLong),
           torch::zeros({N, T}, torch::kLong), torch::zeros({N, T}, torch::kFloat),
           torch::zeros({N, T}, torch::kFloat)};
  auto ids = p.ids.accessor<int64_t, 2>();
  auto attn = p.attn.accessor<int64_t, 2>();
  auto tgt = p.targets.accessor<int64_t, 2>();
  auto m = p.mask.accessor<float, 2>();
  auto beh = p.behaviour.accessor<float, 2>();
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
      if (t.loss_mask(j) != 0 && P + j - 1 >= 0) {
        m[r][P + j - 1] = 1.0f;
        if (j < t.behaviour_logprobs_size()) beh[r][P + j - 1] = t.behaviour_logprobs(j);
      }
  }
  return p;
}
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Sum of |behaviour - logprobs| over the mask (no grad).
double mismatch_sum(const torch::Tensor& logprobs, const Packed& p) {
  torch::NoGradGuard ng;
  const auto lp = logprobs.detach().to(torch::kCPU, torch::kFloat32);
  return torch::where(p.mask > 0, (lp - p.behaviour).abs(), torch::zeros_like(lp)).sum().item<double>();
}
}  // namespace

UpdateStats ppo_update(agent::Model& policy, const agent::Model* reference,
                       torch::optim::Optimizer& optim,
                       const std::vector<env::pb::Trajectory>& batch,
                       const std::vector<double>& advantages, const LossOptions& loss,
                       const UpdateOptions& opts, uint64_t seed, const MixedPrecision& precision) {
  opts.validate();
  loss.validate();
  std::vector<size_t> usable;
  for (size_t i = 0; i < batch.size(); ++i)
    if (!failed_retrieval(batch[i])) usable.push_back(i);
  UpdateStats st;
  if (usable.empty()) return st;
  if (opts.skip_zero_advantage && all_advantages_zero(batch, advantages)) {
    // Nothing was computed: the loss quantities stay absent rather than reading as 0.
    st.skipped_zero_advantage = true;
    return st;
  }
  st.passes_ran = true;
  const auto dev = policy.device();
  const bool mixed = !precision.master.empty();
  const auto model_params = policy.parameters();
  STRATA_ASSERT(!mixed || precision.master.size() == model_params.size(),
                precision.master.size() << " master weights for " << model_params.size());
  agent::LogprobOptions lo;
  lo.temperature = opts.temperature;

  // The reference runs only when the KL term is in the loss.
  const bool use_ref = reference != nullptr && loss.kl_on();
  // One optimiser step on the batch as rolled out: the policy cannot move before the loss is
  // computed, so the old log-probs are the update's own forward (see UpdateOptions::old_logprobs).
  const bool single_on_policy_step =
      opts.ppo_epochs == 1 && usable.size() <= static_cast<size_t>(opts.mini_batch);
  const bool reuse_old = opts.old_logprobs == OldLogprobs::kAuto && single_on_policy_step;
  st.old_logprobs_reused = reuse_old;
  double mismatch = 0, mismatch_tokens = 0;

  // Old (proximal) and reference log-probs for every usable trajectory, without gradients.
  std::map<size_t, torch::Tensor> old_lp, ref_lp;
  double t_old = 0, t_ref = 0;
  if (!reuse_old || use_ref) {
    torch::NoGradGuard ng;
    AutocastBf16 ac(precision.autocast_bf16, dev);
    for (size_t s = 0; s < usable.size(); s += opts.micro_batch) {
      std::vector<size_t> idx(usable.begin() + s, usable.begin() + std::min(usable.size(), s + opts.micro_batch));
      const Packed p = pack(batch, idx);
      const auto ids = p.ids.to(dev), attn = p.attn.to(dev), tgt = p.targets.to(dev), msk = p.mask.to(dev);
      if (!reuse_old) {
        const auto t0 = Clock::now();
        const auto lp = agent::token_logprobs(policy, ids, attn, tgt, msk, lo).logprobs.cpu();
        t_old += since(t0);
        mismatch += mismatch_sum(lp, p);
        mismatch_tokens += p.mask.sum().item<double>();
        for (size_t r = 0; r < idx.size(); ++r) old_lp[idx[r]] = lp[static_cast<int64_t>(r)];
        st.old_logprob_rows += static_cast<int64_t>(idx.size());
      }
      if (use_ref) {
        const auto t0 = Clock::now();
        const auto rl = agent::token_logprobs(*reference, ids, attn, tgt, msk, lo).logprobs.cpu();
        t_ref += since(t0);
        for (size_t r = 0; r < idx.size(); ++r) ref_lp[idx[r]] = rl[static_cast<int64_t>(r)];
        st.ref_logprob_rows += static_cast<int64_t>(idx.size());
      }
    }
  }
  st.old_logp_seconds = t_old;
  st.ref_logp_seconds = t_ref;

  Rng rng = Rng(seed).fork("ppo");
  double sum_pg = 0, sum_kl = 0, sum_ent = 0, sum_clip = 0, sum_norm = 0;
  int micro_count = 0;
  const bool entropy_in_loss = loss.entropy_coef != 0;
  for (int epoch = 0; epoch < opts.ppo_epochs; ++epoch) {
    std::vector<size_t> order = usable;
    rng.shuffle(order);
    for (size_t m0 = 0; m0 < order.size(); m0 += opts.mini_batch) {
      const size_t m1 = std::min(order.size(), m0 + opts.mini_batch);
      optim.zero_grad();
      if (mixed)
        for (const auto& p : model_params) p.mutable_grad().reset();
      bool finite = true;
      for (size_t s = m0; s < m1; s += opts.micro_batch) {
        std::vector<size_t> idx(order.begin() + s, order.begin() + std::min(m1, s + opts.micro_batch));
        const Packed p = pack(batch, idx);
        auto lo_g = lo;
        // Entropy is always measured at the scored positions; it carries a gradient only when it
        // is part of the loss.
        lo_g.with_entropy = true;
        lo_g.entropy_grad = entropy_in_loss;
        lo_g.gradient_checkpointing = opts.gradient_checkpointing;
        std::optional<AutocastBf16> ac;
        ac.emplace(precision.autocast_bf16, dev);
        const auto cur = agent::token_logprobs(policy, p.ids.to(dev), p.attn.to(dev), p.targets.to(dev), p.mask.to(dev), lo_g);
        const int64_t T = p.ids.size(1);
        std::vector<torch::Tensor> olds, refs;
        std::vector<float> adv;
        for (size_t i : idx) {
          if (!reuse_old) olds.push_back(torch::constant_pad_nd(old_lp.at(i), {0, T - old_lp.at(i).size(0)}));
          if (use_ref) refs.push_back(torch::constant_pad_nd(ref_lp.at(i), {0, T - ref_lp.at(i).size(0)}));
          adv.push_back(static_cast<float>(advantages[i]));
        }
        LossInputs in;
        in.logprobs = cur.logprobs;  // [n, T]
        if (reuse_old) {
          in.old_logprobs = cur.logprobs.detach();
          mismatch += mismatch_sum(cur.logprobs, p);
          mismatch_tokens += p.mask.sum().item<double>();
        } else {
          in.old_logprobs = torch::stack(olds).to(dev);  // [n, T]
        }
        if (use_ref) in.ref_logprobs = torch::stack(refs).to(dev);
        in.advantages = torch::tensor(adv).to(dev);     // [n]
        in.mask = p.mask.to(dev);                       // [n, T]
        in.entropy = cur.entropy;
        auto lopts = loss;
        if (!use_ref) lopts.kl_estimator = KlEstimator::kOff;
        const auto out = policy_loss(in, lopts);
        // Backward runs outside the autocast region, as PyTorch recommends, except with gradient
        // checkpointing: its recompute of each layer happens inside backward and must see the
        // same autocast state as the forward did (torch.utils.checkpoint restores it; our
        // checkpointed layer does not), or it recomputes in fp32.
        if (!opts.gradient_checkpointing) ac.reset();
        const double frac = static_cast<double>(idx.size()) / static_cast<double>(m1 - m0);
        const auto scaled = out.loss * frac;
        if (!std::isfinite(scaled.item<double>())) {
          finite = false;
          break;
        }
        scaled.backward();
        ac.reset();
        if (mixed) {
          // fp32 accumulation across micro-batches; the bf16 grads are freed at once.
          torch::NoGradGuard ng;
          for (size_t k = 0; k < model_params.size(); ++k) {
            auto& g = model_params[k].mutable_grad();
            if (!g.defined()) continue;
            auto& mg = precision.master[k].mutable_grad();
            if (mg.defined()) mg.add_(g.to(torch::kFloat32));
            else mg = g.to(torch::kFloat32);
            g.reset();
          }
        }
        sum_pg += out.pg_loss;
        sum_kl += out.kl;
        sum_ent += out.entropy;
        sum_clip += out.clip_frac;
        ++micro_count;
      }
      const auto params = mixed ? precision.master : model_params;
      double norm = 0;
      if (finite) {
        norm = opts.grad_clip > 0 ? torch::nn::utils::clip_grad_norm_(params, opts.grad_clip)
                                  : torch::nn::utils::clip_grad_norm_(params, 1e30);
        finite = std::isfinite(norm);
      }
      if (!finite) {
        ++st.skipped_steps;  // never applied: the step's gradients are dropped
        optim.zero_grad();
        if (mixed)
          for (const auto& p : model_params) p.mutable_grad().reset();
        continue;
      }
      optim.step();
      if (mixed) copy_master_to_model(precision.master, policy);
      sum_norm += norm;
      ++st.optimizer_steps;
    }
  }
  optim.zero_grad();  // frees the gradients (set to none) before the next rollout phase
  const double mc = std::max(1, micro_count);
  st.pg_loss = sum_pg / mc;
  if (use_ref) st.kl = sum_kl / mc;
  if (mismatch_tokens > 0) st.logp_mismatch = mismatch / mismatch_tokens;
  st.entropy = sum_ent / mc;
  st.clip_frac = sum_clip / mc;
  st.grad_norm = st.optimizer_steps ? sum_norm / st.optimizer_steps : 0.0;
  return st;
}

}  // namespace strata::rl
