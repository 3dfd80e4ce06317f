#include "rl/ppo_update.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
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
  STRATA_CHECK(zero_stage == 0 || zero_stage == 1,
               "zero_stage: expected 0 (every rank holds the whole optimiser state) or 1 (ZeRO-1: each rank holds "
               "its share); gradient sharding (ZeRO-2) is not supported, got "
                   << zero_stage);
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

// torch::nn::utils::clip_grad_norm_ on the gradients themselves rather than on their weights
// (the same operations in the same order, so the same numbers): returns the 2-norm of all of
// `grads` (undefined ones left out) and scales each by min(1, max_norm / (norm + 1e-6)). With
// data parallelism the gradients are the all-reduced ones, every weight's, so the norm is the
// global one on every rank, ZeRO-1 or not.
double clip_grads(const std::vector<torch::Tensor>& grads, double max_norm) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> defined, norms;
  for (const auto& g : grads)
    if (g.defined()) {
      defined.push_back(g);
      norms.push_back(g.norm(2.0));
    }
  if (norms.empty()) return 0.0;
  const auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2.0);
  const auto coef = torch::clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
  for (auto& g : defined) g.mul_(coef);
  return total.item<double>();
}

// Sum of |behaviour - logprobs| over the mask (no grad).
double mismatch_sum(const torch::Tensor& logprobs, const Packed& p) {
  torch::NoGradGuard ng;
  const auto lp = logprobs.detach().to(torch::kCPU, torch::kFloat32);
  return torch::where(p.mask > 0, (lp - p.behaviour).abs(), torch::zeros_like(lp)).sum().item<double>();
}

// What the mini-batch's loss divides by (LossOptions::aggregation), over all its trajectories.
struct Denominators {
  double tokens = 0;   // trained tokens
  double seqs = 0;     // trajectories with at least one trained token
  double longest = 0;  // longest prompt + response: the padded length of one micro-batch holding them all
};
Denominators denominators(const std::vector<env::pb::Trajectory>& batch, const std::vector<size_t>& order,
                          size_t m0, size_t m1) {
  Denominators d;
  for (size_t k = m0; k < m1; ++k) {
    const auto& t = batch[order[k]];
    int64_t n = 0;
    for (int j = 0; j < t.response_ids_size(); ++j) n += t.loss_mask(j) != 0 && t.prompt_ids_size() + j - 1 >= 0;
    d.tokens += static_cast<double>(n);
    d.seqs += n > 0 ? 1 : 0;
    d.longest = std::max(d.longest, static_cast<double>(t.prompt_ids_size() + t.response_ids_size()));
  }
  return d;
}
// The weight of micro-batch `p`'s aggregated loss in the mini-batch's: its own denominator over
// the mini-batch's (aggregate() divides by the micro-batch's own counts, clamped to >= 1).
double micro_weight(const Packed& p, const Denominators& d, const LossOptions& loss) {
  const double tokens = p.mask.sum().item<double>();
  const double seqs = (p.mask.sum(1) > 0).sum().item<double>();
  switch (loss.aggregation) {
    case Aggregation::kTokenMean: return tokens / std::max(1.0, d.tokens);
    case Aggregation::kSeqMeanTokenMean:
    case Aggregation::kSeqMeanTokenSum: return seqs / std::max(1.0, d.seqs);
    case Aggregation::kSeqMeanTokenSumNorm: {
      const double local_norm = loss.norm_length > 0 ? loss.norm_length : static_cast<double>(p.mask.size(1));
      const double global_norm = loss.norm_length > 0 ? loss.norm_length : std::max(1.0, d.longest);
      return std::max(1.0, seqs) * local_norm / (std::max(1.0, d.seqs) * global_norm);
    }
  }
  return 0;
}
}  // namespace

UpdateStats ppo_update(agent::Model& policy, const agent::Model* reference,
                       torch::optim::Optimizer& optim,
                       const std::vector<env::pb::Trajectory>& batch,
                       const std::vector<double>& advantages, const LossOptions& loss,
                       const UpdateOptions& opts, uint64_t seed, const MixedPrecision& precision,
                       const Distributed* dist, const std::vector<int>& zero_owner) {
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
  // ZeRO-1: `optim` holds this rank's weights (or their masters) alone; after its step each
  // owner's updated weights go to the other ranks.
  const bool zero = !zero_owner.empty();
  STRATA_ASSERT(!zero || zero_owner.size() == model_params.size(),
                zero_owner.size() << " owners for " << model_params.size() << " weights");
  // bf16_master: every weight's fp32 gradient, accumulated over the micro-batches (on the master
  // itself when this rank holds it, which ZeRO-1 does for its share only).
  std::vector<torch::Tensor> grad32(mixed ? model_params.size() : 0);
  // Sets every gradient to none: the optimiser's (its own weights) and every other weight's.
  auto clear_grads = [&] {
    optim.zero_grad();
    for (const auto& p : model_params) const_cast<torch::Tensor&>(p).mutable_grad().reset();
    for (auto& m : precision.master)
      if (m.defined()) const_cast<torch::Tensor&>(m).mutable_grad().reset();
    for (auto& g : grad32) g.reset();
  };
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

  // The shuffled order of every epoch, drawn up front (the draws one process makes), and this
  // rank's share of each mini-batch: the r-th of `world` contiguous parts.
  const Distributed single;
  const Distributed& dp = dist != nullptr ? *dist : single;
  const auto world = static_cast<size_t>(dp.world()), rank = static_cast<size_t>(dp.rank());
  Rng rng = Rng(seed).fork("ppo");
  std::vector<std::vector<size_t>> orders(static_cast<size_t>(opts.ppo_epochs));
  for (auto& order : orders) {
    order = usable;
    rng.shuffle(order);
  }
  auto share = [&](size_t m0, size_t m1) {
    const size_t n = m1 - m0;
    return std::pair<size_t, size_t>{m0 + n * rank / world, m0 + n * (rank + 1) / world};
  };
  // The trajectories this rank trains on (any epoch), and those of its first-epoch shares, which
  // split the batch between the ranks (the log-prob mismatch is measured on those).
  std::vector<char> mine(batch.size(), 0), counted(batch.size(), 0);
  for (size_t e = 0; e < orders.size(); ++e)
    for (size_t m0 = 0; m0 < usable.size(); m0 += opts.mini_batch) {
      const auto [a, b] = share(m0, std::min(usable.size(), m0 + opts.mini_batch));
      for (size_t k = a; k < b; ++k) {
        mine[orders[e][k]] = 1;
        if (e == 0) counted[orders[e][k]] = 1;
      }
    }
  std::vector<size_t> my_usable;
  for (size_t i : usable)
    if (mine[i]) my_usable.push_back(i);

  // Old (proximal) and reference log-probs for every trajectory this rank trains on, without
  // gradients.
  std::map<size_t, torch::Tensor> old_lp, ref_lp;
  double t_old = 0, t_ref = 0;
  if (!reuse_old || use_ref) {
    torch::NoGradGuard ng;
    AutocastBf16 ac(precision.autocast_bf16, dev);
    for (size_t s = 0; s < my_usable.size(); s += opts.micro_batch) {
      std::vector<size_t> idx(my_usable.begin() + s,
                              my_usable.begin() + std::min(my_usable.size(), s + opts.micro_batch));
      const Packed p = pack(batch, idx);
      const auto ids = p.ids.to(dev), attn = p.attn.to(dev), tgt = p.targets.to(dev), msk = p.mask.to(dev);
      if (!reuse_old) {
        const auto t0 = Clock::now();
        const auto lp = agent::token_logprobs(policy, ids, attn, tgt, msk, lo).logprobs.cpu();
        t_old += since(t0);
        for (size_t r = 0; r < idx.size(); ++r) {
          old_lp[idx[r]] = lp[static_cast<int64_t>(r)];
          if (!counted[idx[r]]) continue;
          const auto row = static_cast<int64_t>(r);
          mismatch += torch::where(p.mask[row] > 0, (lp[row] - p.behaviour[row]).abs(), torch::zeros_like(lp[row]))
                          .sum()
                          .item<double>();
          mismatch_tokens += p.mask[row].sum().item<double>();
        }
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

  // Sums over the mini-batches applied: their aggregated losses (global), and token counts.
  double sum_pg = 0, sum_kl = 0, sum_ent = 0, sum_norm = 0, clipped = 0, tokens = 0;
  double tis_sum = 0, tis_max = 0, tis_capped = 0, tis_tokens = 0;  // TIS (rl/loss.h), this rank's
  bool tis_ran = false;
  const bool entropy_in_loss = loss.entropy_coef != 0;
  for (const auto& order : orders) {
    for (size_t m0 = 0; m0 < order.size(); m0 += opts.mini_batch) {
      const size_t m1 = std::min(order.size(), m0 + opts.mini_batch);
      const Denominators den = denominators(batch, order, m0, m1);
      const auto [a, b] = share(m0, m1);
      clear_grads();
      bool finite = true;
      double mb_pg = 0, mb_kl = 0, mb_ent = 0, mb_clipped = 0, mb_tokens = 0;
      for (size_t s = a; s < b; s += opts.micro_batch) {
        std::vector<size_t> idx(order.begin() + s, order.begin() + std::min(b, s + opts.micro_batch));
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
        if (opts.rollout_copy) in.rollout_logprobs = p.behaviour.to(dev);  // TIS (rl/loss.h)
        auto lopts = loss;
        if (!use_ref) lopts.kl_estimator = KlEstimator::kOff;
        const auto out = policy_loss(in, lopts);
        // Backward runs outside the autocast region, as PyTorch recommends, except with gradient
        // checkpointing: its recompute of each layer happens inside backward and must see the
        // same autocast state as the forward did (torch.utils.checkpoint restores it; our
        // checkpointed layer does not), or it recomputes in fp32.
        if (!opts.gradient_checkpointing) ac.reset();
        const double w = micro_weight(p, den, loss);  // this micro-batch's share of the mini-batch's loss
        const auto scaled = out.loss * w;
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
            if (grad32[k].defined()) grad32[k].add_(g.to(torch::kFloat32));
            else grad32[k] = g.to(torch::kFloat32);
            g.reset();
          }
        }
        mb_pg += out.pg_loss * w;
        mb_kl += out.kl * w;
        mb_ent += out.entropy * w;
        mb_clipped += out.clip_frac * static_cast<double>(out.tokens);
        mb_tokens += static_cast<double>(out.tokens);
        if (out.tis) {
          tis_ran = true;
          tis_sum += out.tis_ratio_sum;
          tis_max = std::max(tis_max, out.tis_ratio_max);
          tis_capped += static_cast<double>(out.tis_capped);
          tis_tokens += static_cast<double>(out.tokens);
        }
      }
      // Every weight's gradient: on the weight itself (fp32, bf16), or its fp32 accumulator
      // (bf16_master), which becomes the master's gradient where this rank holds the master.
      std::vector<torch::Tensor> grads(model_params.size());
      for (size_t k = 0; k < model_params.size(); ++k) {
        if (!mixed) {
          grads[k] = model_params[k].grad();
          continue;
        }
        if (!grad32[k].defined() && dp.active() && finite)
          grad32[k] = torch::zeros(model_params[k].sizes(), model_params[k].options().dtype(torch::kFloat32));
        grads[k] = grad32[k];
        if (precision.master[k].defined() && grads[k].defined())
          const_cast<torch::Tensor&>(precision.master[k]).mutable_grad() = grads[k];
      }
      if (dp.active()) {
        // One verdict and one set of sums for every rank, then the gradients summed: each rank's
        // share is already normalised by the mini-batch's global counts.
        const auto g = dp.all_reduce_sum({finite ? 0.0 : 1.0, mb_pg, mb_kl, mb_ent, mb_clipped, mb_tokens});
        finite = g[0] == 0;
        mb_pg = g[1], mb_kl = g[2], mb_ent = g[3], mb_clipped = g[4], mb_tokens = g[5];
        if (finite) {
          for (size_t k = 0; k < grads.size(); ++k)
            if (!grads[k].defined()) {  // a rank with no trajectory in this mini-batch
              auto& gr = const_cast<torch::Tensor&>(model_params[k]).mutable_grad();
              gr = torch::zeros_like(model_params[k]);
              grads[k] = gr;
            }
          // ZeRO-1 sums every gradient too (not a reduce-scatter): each rank needs only its
          // share's, but the global norm for clipping then comes out of the same operations as
          // without sharding, on every rank.
          dp.all_reduce_sum(grads);
        }
      }
      double norm = 0;
      if (finite) {
        norm = clip_grads(grads, opts.grad_clip > 0 ? opts.grad_clip : 1e30);
        finite = std::isfinite(norm);
      }
      if (!finite) {
        ++st.skipped_steps;  // never applied: the step's gradients are dropped
        clear_grads();
        continue;
      }
      optim.step();
      if (mixed) copy_master_to_model(precision.master, policy);
      // ZeRO-1: each rank updated its share; every rank gets the others' (the all-gather of
      // ZeRO-1, as one broadcast per owner).
      if (zero) dp.broadcast_from(model_params, zero_owner);
      sum_norm += norm;
      sum_pg += mb_pg;
      sum_kl += mb_kl;
      sum_ent += mb_ent;
      clipped += mb_clipped;
      tokens += mb_tokens;
      ++st.optimizer_steps;
    }
  }
  clear_grads();  // frees the gradients (set to none) before the next rollout phase
  if (dp.active()) {
    const auto g = dp.all_reduce_sum({mismatch, mismatch_tokens, static_cast<double>(st.old_logprob_rows),
                                      static_cast<double>(st.ref_logprob_rows)});
    mismatch = g[0], mismatch_tokens = g[1];
    st.old_logprob_rows = static_cast<int64_t>(g[2]);
    st.ref_logprob_rows = static_cast<int64_t>(g[3]);
    // TIS over every rank's tokens: sums reduced, the maximum gathered.
    const auto t = dp.all_reduce_sum({tis_ran ? 1.0 : 0.0, tis_sum, tis_capped, tis_tokens});
    tis_ran = t[0] > 0, tis_sum = t[1], tis_capped = t[2], tis_tokens = t[3];
    std::string mine(sizeof(double), '\0');
    std::memcpy(mine.data(), &tis_max, sizeof(double));
    for (const auto& b : dp.all_gather_bytes(mine)) {
      double v = 0;
      if (b.size() == sizeof(double)) std::memcpy(&v, b.data(), sizeof(double));
      tis_max = std::max(tis_max, v);
    }
  }
  const double steps = std::max(1, st.optimizer_steps);
  st.pg_loss = sum_pg / steps;
  if (use_ref) st.kl = sum_kl / steps;
  if (mismatch_tokens > 0) st.logp_mismatch = mismatch / mismatch_tokens;
  st.entropy = sum_ent / steps;
  st.clip_frac = tokens > 0 ? clipped / tokens : 0.0;
  st.grad_norm = st.optimizer_steps ? sum_norm / st.optimizer_steps : 0.0;
  if (tis_ran) {
    st.tis_ratio_mean = tis_sum / std::max(1.0, tis_tokens);
    st.tis_ratio_max = tis_max;
    st.tis_capped_frac = tis_capped / std::max(1.0, tis_tokens);
  }
  return st;
}

}  // namespace strata::rl
