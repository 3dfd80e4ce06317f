// The PPO/GRPO update step: losses, KL estimators, aggregation, precisions and the
// zero-advantage guard (over 450 lines on purpose: one test per option of the update, sharing
// one small model and batch).
#include "rl/ppo_update.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "agent/logprobs.h"
#include "agent/checkpoint.h"
#include "agent/model.h"
#include "env/rollout_file.h"
#include "rl/batch_advantages.h"

namespace strata::rl {
namespace {

agent::Model tiny_model() {
  auto cfg = agent::make_tiny_config(64);
  cfg.hidden_size = 32;
  cfg.intermediate_size = 64;
  cfg.num_hidden_layers = 1;
  cfg.num_attention_heads = 2;
  cfg.num_key_value_heads = 1;
  cfg.head_dim = 16;
  return agent::init_random_model(cfg, 3);
}

// A trajectory: prompt [1, 2, 3], response = policy tokens with one masked observation token.
env::pb::Trajectory traj(int64_t group, std::vector<int32_t> response, double reward, int stratum,
                         const std::string& end = "answered") {
  env::pb::Trajectory t;
  t.set_group(group);
  for (int id : {1, 2, 3}) t.add_prompt_ids(id);
  for (size_t i = 0; i < response.size(); ++i) {
    t.add_response_ids(response[i]);
    t.add_loss_mask(i == 1 ? 0 : 1);  // token 1 stands for a retrieved token
    t.add_behaviour_logprobs(0);
  }
  t.set_reward(reward);
  t.set_stratum(stratum);
  t.set_end_reason(end);
  return t;
}

// Sum of the log-probs of the policy tokens of `t` under `m`.
double policy_logprob(const agent::Model& m, const env::pb::Trajectory& t) {
  torch::NoGradGuard ng;
  std::vector<int64_t> ids = {1, 2, 3};
  for (int id : t.response_ids()) ids.push_back(id);
  const auto x = torch::tensor(ids).unsqueeze(0);
  const auto lp = agent::sequence_logprobs(m, x, torch::ones_like(x)).logprobs;  // [1, T-1]
  double s = 0;
  for (int j = 0; j < t.response_ids_size(); ++j)
    if (t.loss_mask(j)) s += lp[0][2 + j].item<double>();
  return s;
}

TEST(GrpoStep, UpdateRaisesGoodAndLowersBadTrajectories) {
  at::set_num_threads(1);
  auto policy = tiny_model();
  std::vector<env::pb::Trajectory> batch = {traj(0, {10, 11, 12, 13}, 1.0, 1),
                                            traj(0, {20, 21, 22, 23}, 0.0, 1)};
  AdvantageOptions ao;
  ao.estimator = Estimator::kGrpo;
  const auto adv = batch_advantages(batch, ao);
  EXPECT_GT(adv[0], 0);
  EXPECT_LT(adv[1], 0);
  const double good0 = policy_logprob(policy, batch[0]), bad0 = policy_logprob(policy, batch[1]);
  policy.set_requires_grad(true);
  torch::optim::Adam optim(policy.parameters(), torch::optim::AdamOptions(1e-2));
  LossOptions lo;
  lo.kl_estimator = KlEstimator::kOff;
  UpdateOptions uo;
  uo.ppo_epochs = 4;
  uo.mini_batch = 2;
  uo.micro_batch = 1;
  const auto st = ppo_update(policy, nullptr, optim, batch, adv, lo, uo, 1);
  EXPECT_EQ(st.optimizer_steps, 4);
  EXPECT_EQ(st.skipped_steps, 0);
  EXPECT_GT(policy_logprob(policy, batch[0]), good0);
  EXPECT_LT(policy_logprob(policy, batch[1]), bad0);
}

TEST(GrpoStep, FailedTrajectoriesAreLeftOut) {
  std::vector<env::pb::Trajectory> batch = {traj(0, {10, 11}, 1.0, 0), traj(0, {12, 13}, 0.0, 0),
                                            traj(0, {14, 15}, 0.0, 1, "retrieval_failed")};
  AdvantageOptions ao;
  ao.estimator = Estimator::kGrpo;
  ao.eps = 0;
  const auto adv = batch_advantages(batch, ao);
  EXPECT_EQ(adv[2], 0.0);
  EXPECT_NEAR(adv[0], 1.0, 1e-9);  // mean and std over the two usable trajectories only
  EXPECT_NEAR(adv[1], -1.0, 1e-9);
}

TEST(GrpoStep, NonFiniteStepIsSkippedNotApplied) {
  at::set_num_threads(1);
  auto policy = tiny_model();
  std::vector<env::pb::Trajectory> batch = {traj(0, {10, 11, 12}, 1.0, 0)};
  const auto before = policy.parameters()[0].clone();
  policy.set_requires_grad(true);
  torch::optim::Adam optim(policy.parameters(), torch::optim::AdamOptions(1e-2));
  LossOptions lo;
  lo.kl_estimator = KlEstimator::kOff;
  UpdateOptions uo;
  uo.mini_batch = 1;
  uo.micro_batch = 1;
  const auto st = ppo_update(policy, nullptr, optim, batch, {std::nan("")}, lo, uo, 1);
  EXPECT_EQ(st.skipped_steps, 1);
  EXPECT_EQ(st.optimizer_steps, 0);
  EXPECT_TRUE(torch::equal(before, policy.parameters()[0]));
}

TEST(GrpoStep, RetrievedTokensLogitsGetZeroGradient) {
  at::set_num_threads(1);
  auto policy = tiny_model();
  policy.set_requires_grad(true);
  // prompt [1, 2, 3], response [10, 11, 12, 13] where 11 is a retrieved token (mask 0).
  const auto ids = torch::tensor(std::vector<int64_t>{1, 2, 3, 10, 11, 12, 13}).unsqueeze(0);
  auto logits = policy.forward(ids, torch::ones_like(ids));  // [1, 7, V]
  logits.retain_grad();
  const auto lp_all = torch::log_softmax(logits.slice(1, 0, 6), -1);             // [1, 6, V]
  const auto lp = lp_all.gather(2, ids.slice(1, 1).unsqueeze(-1)).squeeze(-1);  // [1, 6]
  // Position k scores token k+1: positions 2..5 score the response; position 3 scores token 11.
  const auto mask = torch::tensor(std::vector<float>{0, 0, 1, 0, 1, 1}).unsqueeze(0);
  LossInputs in;
  in.logprobs = lp;
  in.old_logprobs = lp.detach();
  in.advantages = torch::tensor(std::vector<float>{1.0f});
  in.mask = mask;
  LossOptions lo;
  lo.kl_estimator = KlEstimator::kOff;
  policy_loss(in, lo).loss.backward();
  const auto g = logits.grad()[0];  // [7, V]
  EXPECT_EQ(g[3].abs().sum().item<float>(), 0.0f) << "the logit that scores the retrieved token";
  EXPECT_EQ(g[0].abs().sum().item<float>(), 0.0f) << "prompt positions";
  EXPECT_GT(g[2].abs().sum().item<float>(), 0.0f);
  EXPECT_GT(g[4].abs().sum().item<float>(), 0.0f);
}

// Every trajectory of the group got the same reward: no learning signal. KL (against a reference
// that differs from the policy) and ~1e-7 noise still give a gradient that Adam would scale up to
// lr-sized steps; the guard skips the step and leaves weights and optimiser state bit-identical.
TEST(GrpoStep, ZeroAdvantageBatchLeavesParametersBitIdentical) {
  at::set_num_threads(1);
  auto policy = tiny_model();
  auto reference = agent::init_random_model(policy.config(), 4);  // KL gradient is far from 0
  std::vector<env::pb::Trajectory> batch = {traj(0, {10, 11, 12}, 1.0, 1), traj(0, {20, 21, 22, 23}, 1.0, 0),
                                            traj(1, {30, 31}, 0.0, 0), traj(1, {40, 41, 42}, 0.0, 2)};
  for (const char* est : {"grpo", "stratified"}) {
    AdvantageOptions ao;
    ao.estimator = *config::parse_enum<Estimator>(est);
    const auto adv = batch_advantages(batch, ao);
    EXPECT_TRUE(all_advantages_zero(batch, adv)) << est;
  }
  AdvantageOptions ao;
  const auto adv = batch_advantages(batch, ao);
  LossOptions lo;
  lo.kl_coef = 0.1;
  lo.entropy_coef = 0.01;
  UpdateOptions uo;
  uo.mini_batch = 2;
  uo.micro_batch = 1;
  std::vector<torch::Tensor> before;
  for (const auto& p : policy.parameters()) before.push_back(p.clone());
  policy.set_requires_grad(true);
  torch::optim::AdamW optim(policy.parameters(), torch::optim::AdamWOptions(1e-2));
  const auto st = ppo_update(policy, &reference, optim, batch, adv, lo, uo, 1);
  EXPECT_TRUE(st.skipped_zero_advantage);
  EXPECT_FALSE(st.passes_ran);
  EXPECT_EQ(st.optimizer_steps, 0);
  const auto after = policy.parameters();
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i])) << "weight " << i;
  EXPECT_TRUE(optim.state().empty()) << "Adam's moments must not have been touched";
  for (const auto& [k, v] : {std::pair{"loss/pg", st.pg_loss}, std::pair{"loss/kl", st.kl}, std::pair{"entropy", st.entropy},
                             std::pair{"clip_frac", st.clip_frac}, std::pair{"grad_norm", st.grad_norm}})
    EXPECT_FALSE(v.has_value()) << k << ": not computed, so absent rather than 0";

  // Without the guard the same batch moves every weight by about lr.
  uo.skip_zero_advantage = false;
  const auto st2 = ppo_update(policy, &reference, optim, batch, adv, lo, uo, 1);
  EXPECT_FALSE(st2.skipped_zero_advantage);
  EXPECT_EQ(st2.optimizer_steps, 2);
  EXPECT_FALSE(torch::equal(before[0], policy.parameters()[0]));
  // A single non-zero advantage is a signal.
  auto adv3 = adv;
  adv3[2] = 0.5;
  EXPECT_FALSE(all_advantages_zero(batch, adv3));
  // Failed trajectories do not count, and a NaN is not zero.
  adv3[2] = std::nan("");
  EXPECT_FALSE(all_advantages_zero(batch, adv3));
}

// ---- old log-probs, reference forward, entropy -----------------------------------------------

// A batch of two groups with rewards that give every trajectory a non-zero advantage.
std::vector<env::pb::Trajectory> four_trajectories() {
  return {traj(0, {10, 11, 12, 13}, 1.0, 1), traj(0, {20, 21, 22}, 0.0, 0),
          traj(1, {30, 31, 32, 33, 34}, 0.0, 1), traj(1, {40, 41, 42}, 1.0, 2)};
}
std::vector<double> grpo_advantages(const std::vector<env::pb::Trajectory>& batch) {
  AdvantageOptions ao;
  ao.estimator = Estimator::kGrpo;
  return batch_advantages(batch, ao);
}

// ppo_epochs 1 and one mini-batch: the old log-probs taken from the update's own forward give the
// same update as a separate forward (within float noise of differently padded micro-batches),
// and that forward is not run. SGD, so that the weights move by exactly lr * gradient.
TEST(GrpoStep, OnPolicyStepReusesItsOwnForwardAsOldLogprobs) {
  at::set_num_threads(1);
  const auto batch = four_trajectories();
  const auto adv = grpo_advantages(batch);
  const auto reference = agent::init_random_model(tiny_model().config(), 4);
  LossOptions lo;
  lo.kl_coef = 0.1;
  lo.entropy_coef = 0.01;
  UpdateOptions uo;
  uo.ppo_epochs = 1;
  uo.mini_batch = 4;
  uo.micro_batch = 3;  // 3 + 1: the separate forward pads its micro-batches differently
  auto run = [&](const std::string& mode, UpdateStats& st) {
    auto policy = tiny_model();
    policy.set_requires_grad(true);
    torch::optim::SGD optim(policy.parameters(), torch::optim::SGDOptions(0.5));
    auto o = uo;
    o.old_logprobs = *config::parse_enum<OldLogprobs>(mode);
    st = ppo_update(policy, &reference, optim, batch, adv, lo, o, 7);
    return policy;
  };
  UpdateStats reused, recomputed;
  const auto a = run("auto", reused);
  const auto b = run("recompute", recomputed);
  EXPECT_TRUE(reused.old_logprobs_reused);
  EXPECT_EQ(reused.old_logprob_rows, 0) << "no separate old-log-prob forward";
  EXPECT_TRUE(reused.passes_ran);
  EXPECT_FALSE(recomputed.old_logprobs_reused);
  EXPECT_EQ(recomputed.old_logprob_rows, 4);
  EXPECT_EQ(reused.ref_logprob_rows, 4) << "the reference still runs: KL is on";
  EXPECT_EQ(reused.optimizer_steps, 1);
  EXPECT_EQ(recomputed.optimizer_steps, 1);
  const auto init = tiny_model().parameters();
  const auto pa = a.parameters(), pb = b.parameters();
  double moved = 0, diff = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    moved = std::max(moved, (pa[i] - init[i]).abs().max().item<double>());
    diff = std::max(diff, (pa[i] - pb[i]).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3) << "the update did something";
  EXPECT_LT(diff, 1e-5 * moved + 1e-7) << "reused and recomputed old log-probs give the same update";
  EXPECT_NEAR(reused.pg_loss.value(), recomputed.pg_loss.value(), 1e-5) << "loss/pg";
  EXPECT_NEAR(reused.kl.value(), recomputed.kl.value(), 1e-5) << "loss/kl";
  EXPECT_NEAR(reused.entropy.value(), recomputed.entropy.value(), 1e-5) << "entropy";
  EXPECT_EQ(reused.clip_frac.value(), 0.0) << "the ratio is exactly 1";
  // The sampler's log-probs (0 in these made-up trajectories) against the policy's.
  EXPECT_GT(reused.logp_mismatch.value(), 0.1);
  EXPECT_NEAR(reused.logp_mismatch.value(), recomputed.logp_mismatch.value(), 1e-5);

  // Two epochs, or two mini-batches: the policy moves between the optimiser steps, so the old
  // log-probs must come from a separate forward before the first one.
  for (auto [epochs, mini] : {std::pair{2, 4}, std::pair{1, 2}}) {
    auto policy = tiny_model();
    policy.set_requires_grad(true);
    torch::optim::SGD optim(policy.parameters(), torch::optim::SGDOptions(0.5));
    auto o = uo;
    o.ppo_epochs = epochs;
    o.mini_batch = mini;
    o.micro_batch = std::min(o.micro_batch, mini);
    const auto st = ppo_update(policy, &reference, optim, batch, adv, lo, o, 7);
    EXPECT_FALSE(st.old_logprobs_reused) << epochs << " epochs, mini-batch " << mini;
    EXPECT_EQ(st.old_logprob_rows, 4);
    EXPECT_EQ(st.optimizer_steps, 2);
  }
}

// The reference policy is run only when the KL term is in the loss.
TEST(GrpoStep, ReferenceForwardIsSkippedWhenKlIsOff) {
  at::set_num_threads(1);
  const auto batch = four_trajectories();
  const auto adv = grpo_advantages(batch);
  const auto reference = agent::init_random_model(tiny_model().config(), 4);
  struct Case {
    const char* estimator;
    double coef;
    bool runs;
  };
  for (const Case c : {Case{"k3", 0.0, false}, Case{"off", 0.1, false}, Case{"k3", 0.1, true}}) {
    auto policy = tiny_model();
    policy.set_requires_grad(true);
    torch::optim::SGD optim(policy.parameters(), torch::optim::SGDOptions(0.1));
    LossOptions lo;
    lo.kl_estimator = *config::parse_enum<KlEstimator>(c.estimator);
    lo.kl_coef = c.coef;
    UpdateOptions uo;
    uo.mini_batch = 4;
    uo.micro_batch = 2;
    const auto st = ppo_update(policy, &reference, optim, batch, adv, lo, uo, 1);
    const std::string what = std::string(c.estimator) + " coef " + std::to_string(c.coef);
    EXPECT_EQ(st.optimizer_steps, 1) << what;
    EXPECT_EQ(st.ref_logprob_rows, c.runs ? 4 : 0) << what;
    EXPECT_EQ(st.kl.has_value(), c.runs) << what << ": KL is absent, not 0, when not computed";
    if (!c.runs) EXPECT_EQ(st.ref_logp_seconds, 0.0) << what;
  }
}

// Entropy is measured over the trained tokens whatever loss.entropy_coef: with the bonus off it
// equals the value with a tiny bonus, and the token-mean entropy of the policy computed directly.
TEST(GrpoStep, EntropyIsMeasuredWithoutTheBonus) {
  at::set_num_threads(1);
  const auto batch = four_trajectories();
  const auto adv = grpo_advantages(batch);
  auto entropy_with = [&](double coef) {
    auto policy = tiny_model();
    policy.set_requires_grad(true);
    torch::optim::SGD optim(policy.parameters(), torch::optim::SGDOptions(0.1));
    LossOptions lo;
    lo.kl_estimator = KlEstimator::kOff;
    lo.entropy_coef = coef;
    UpdateOptions uo;
    uo.mini_batch = 4;
    uo.micro_batch = 4;  // one micro-batch: the logged value is the batch's token mean
    return ppo_update(policy, nullptr, optim, batch, adv, lo, uo, 1).entropy.value();
  };
  const double off = entropy_with(0.0), tiny = entropy_with(1e-9);
  EXPECT_GT(off, 1.0) << "a random policy over 64 tokens is far from deterministic";
  EXPECT_NEAR(off, tiny, 1e-6);
  // Directly: mean entropy of the next-token distributions at the positions that score policy tokens.
  const auto policy = tiny_model();
  torch::NoGradGuard ng;
  double sum = 0;
  int n = 0;
  for (const auto& t : batch) {
    std::vector<int64_t> ids = {1, 2, 3};
    for (int id : t.response_ids()) ids.push_back(id);
    const auto x = torch::tensor(ids).unsqueeze(0);
    agent::LogprobOptions o;
    o.with_entropy = true;
    const auto ent = agent::sequence_logprobs(policy, x, torch::ones_like(x), o).entropy;  // [1, T-1]
    for (int j = 0; j < t.response_ids_size(); ++j)
      if (t.loss_mask(j)) {
        sum += ent[0][2 + j].item<double>();
        ++n;
      }
  }
  EXPECT_NEAR(off, sum / n, 1e-5);
}

// bf16 autocast (fp32 weights) and bf16 weights with fp32 masters, here on the CPU (autocast
// exists there too), so that both code paths run on every machine.
TEST(GrpoStep, Bf16AutocastAndMasterWeightsUpdate) {
  at::set_num_threads(1);
  {
    const auto a = torch::randn({4, 4});
    {
      AutocastBf16 outer(true, torch::kCPU);
      {
        AutocastBf16 inner(true, torch::kCPU);
      }
      EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16) << "autocast is on (and survives nesting)";
    }
    EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat32) << "and off again";
  }
  std::vector<env::pb::Trajectory> batch = {traj(0, {10, 11, 12, 13}, 1.0, 1),
                                            traj(0, {20, 21, 22, 23}, 0.0, 1)};
  AdvantageOptions ao;
  ao.estimator = Estimator::kGrpo;
  const auto adv = batch_advantages(batch, ao);
  LossOptions lo;
  UpdateOptions uo;
  uo.ppo_epochs = 3;
  uo.mini_batch = 2;
  uo.micro_batch = 1;
  {
    auto policy = tiny_model();
    const auto reference = tiny_model();
    const double good0 = policy_logprob(policy, batch[0]);
    policy.set_requires_grad(true);
    torch::optim::Adam optim(policy.parameters(), torch::optim::AdamOptions(1e-2));
    MixedPrecision mp;
    mp.autocast_bf16 = true;
    const auto st = ppo_update(policy, &reference, optim, batch, adv, lo, uo, 1, mp);
    EXPECT_EQ(st.optimizer_steps, 3);
    EXPECT_EQ(st.skipped_steps, 0);
    EXPECT_EQ(policy.dtype(), torch::kFloat32);
    EXPECT_GT(policy_logprob(policy, batch[0]), good0);
    EXPECT_TRUE(std::isfinite(st.kl.value()));
  }
  {
    auto policy = tiny_model();
    MixedPrecision mp;
    for (const auto& p : policy.parameters()) mp.master.push_back(p.clone());
    policy.to(torch::kCPU, torch::kBFloat16);
    auto reference = tiny_model();
    reference.to(torch::kCPU, torch::kBFloat16);
    const auto m0 = mp.master[0].clone();
    policy.set_requires_grad(true);
    torch::optim::Adam optim(mp.master, torch::optim::AdamOptions(1e-2));
    const auto st = ppo_update(policy, &reference, optim, batch, adv, lo, uo, 1, mp);
    EXPECT_EQ(st.optimizer_steps, 3);
    EXPECT_EQ(policy.dtype(), torch::kBFloat16);
    EXPECT_EQ(mp.master[0].scalar_type(), torch::kFloat32);
    EXPECT_FALSE(torch::equal(m0, mp.master[0])) << "the masters were not updated";
    // The bf16 weights are the masters rounded.
    const auto params = policy.parameters();
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_TRUE(torch::equal(params[i], mp.master[i].to(torch::kBFloat16))) << i;
    for (const auto& p : params) EXPECT_FALSE(p.grad().defined()) << "bf16 grads are moved into the masters";
  }
}

// ---- CUDA (skipped without a GPU) -------------------------------------------------------------

#define STRATA_REQUIRE_CUDA()                                                      \
  do {                                                                            \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible"; \
  } while (0)

// Scores a padded batch with `cpu` (fp32) and with copies of it on CUDA in fp32, under bf16
// autocast and with bf16 weights; prints the largest differences (scripts/gpu_check.sh shows
// them) and checks them against loose bounds.
void check_parity(const agent::Model& cpu, const torch::Tensor& ids, const torch::Tensor& attn,
                  const torch::Tensor& targets, const torch::Tensor& mask, const std::string& what) {
  torch::NoGradGuard ng;
  const auto ref = agent::token_logprobs(cpu, ids, attn, targets, mask).logprobs;
  const torch::Device dev(torch::kCUDA);
  agent::Model gpu = cpu;  // shares the CPU tensors until to() replaces them with device copies
  gpu.to(dev, torch::kFloat32);
  auto diff = [&](const torch::Tensor& lp) { return (lp.cpu() - ref).abs().max().item<double>(); };
  const double d32 = diff(agent::token_logprobs(gpu, ids, attn, targets, mask).logprobs);
  double dac = 0;
  {
    AutocastBf16 ac(true, dev);
    dac = diff(agent::token_logprobs(gpu, ids, attn, targets, mask).logprobs);
  }
  gpu.to(dev, torch::kBFloat16);
  const double d16 = diff(agent::token_logprobs(gpu, ids, attn, targets, mask).logprobs);
  const double scale = (ref.abs() * mask.to(torch::kFloat32)).max().item<double>();
  std::printf("[parity] %s: %lld scored tokens (max |logp| %.2f): max |CUDA - CPU| fp32 %.2e, "
              "bf16 autocast %.2e, bf16 weights %.2e\n",
              what.c_str(), static_cast<long long>(mask.sum().item<int64_t>()), scale, d32, dac, d16);
  EXPECT_LT(d32, 1e-3) << what;  // fp32 on both (TF32 is off by default); reduction orders differ
  EXPECT_LT(dac, 0.25) << what;
  EXPECT_LT(d16, 0.5) << what;
}

TEST(GrpoStepCuda, LogprobParityCpuVsCuda) {
  STRATA_REQUIRE_CUDA();
  at::set_num_threads(1);
  auto cfg = agent::make_tiny_config(512);
  cfg.hidden_size = 256;
  cfg.intermediate_size = 704;
  cfg.num_hidden_layers = 4;
  cfg.num_attention_heads = 4;
  cfg.num_key_value_heads = 2;
  cfg.head_dim = 64;
  const auto cpu = agent::init_random_model(cfg, 7);
  torch::manual_seed(3);
  const int64_t B = 6, T = 96;
  const auto ids = torch::randint(0, 512, {B, T}, torch::kLong);
  auto attn = torch::ones({B, T}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) attn[b].narrow(0, T - 9 * b, 9 * b).zero_();  // right padding
  const auto targets = torch::cat({ids.narrow(1, 1, T - 1), ids.narrow(1, 0, 1)}, 1);
  const auto mask = torch::cat({attn.narrow(1, 1, T - 1), torch::zeros({B, 1}, torch::kLong)}, 1);
  check_parity(cpu, ids, attn, targets, mask, "random 4-layer model, padded random batch");
}

// The same on real trajectories: STRATA_PARITY_MODEL (a model folder) and STRATA_PARITY_ROLLOUTS
// (a rollouts file of that model), as scripts/gpu_check.sh sets them.
TEST(GrpoStepCuda, LogprobParityOnARolloutsFile) {
  STRATA_REQUIRE_CUDA();
  const char* model_dir = std::getenv("STRATA_PARITY_MODEL");
  const char* rollouts = std::getenv("STRATA_PARITY_ROLLOUTS");
  if (model_dir == nullptr || rollouts == nullptr)
    GTEST_SKIP() << "set STRATA_PARITY_MODEL and STRATA_PARITY_ROLLOUTS to compare on real trajectories";
  at::set_num_threads(4);
  const auto cpu = agent::load_model(model_dir);  // float32 on the CPU
  std::vector<env::pb::Trajectory> batch;
  env::RolloutReader reader(rollouts);
  env::pb::Trajectory t;
  while (batch.size() < 16 && reader.next(t)) batch.push_back(t);
  ASSERT_FALSE(batch.empty()) << rollouts;
  int64_t T = 0;
  for (const auto& x : batch) T = std::max<int64_t>(T, x.prompt_ids_size() + x.response_ids_size());
  const int64_t B = static_cast<int64_t>(batch.size());
  auto ids = torch::zeros({B, T}, torch::kLong), attn = torch::zeros({B, T}, torch::kLong);
  auto targets = torch::zeros({B, T}, torch::kLong), mask = torch::zeros({B, T}, torch::kLong);
  for (int64_t r = 0; r < B; ++r) {
    const auto& x = batch[static_cast<size_t>(r)];
    const int64_t P = x.prompt_ids_size(), L = P + x.response_ids_size();
    for (int64_t k = 0; k < L; ++k) {
      ids[r][k] = k < P ? x.prompt_ids(static_cast<int>(k)) : x.response_ids(static_cast<int>(k - P));
      attn[r][k] = 1;
    }
    for (int64_t k = 0; k + 1 < L; ++k) targets[r][k] = ids[r][k + 1];
    for (int j = 0; j < x.response_ids_size(); ++j)
      if (x.loss_mask(j) != 0 && P + j >= 1) mask[r][P + j - 1] = 1;
  }
  check_parity(cpu, ids, attn, targets, mask, std::to_string(B) + " trajectories of " + rollouts);
}

// One update on CUDA in each precision; the weights move and stay finite on the device.
TEST(GrpoStepCuda, UpdateRunsInEachPrecision) {
  STRATA_REQUIRE_CUDA();
  std::vector<env::pb::Trajectory> batch = {traj(0, {10, 11, 12, 13}, 1.0, 1),
                                            traj(0, {20, 21, 22, 23}, 0.0, 1)};
  AdvantageOptions ao;
  ao.estimator = Estimator::kGrpo;
  const auto adv = batch_advantages(batch, ao);
  const torch::Device dev(torch::kCUDA);
  for (const std::string prec : {"fp32", "bf16", "bf16_master"}) {
    auto policy = tiny_model();
    auto reference = tiny_model();
    MixedPrecision mp;
    mp.autocast_bf16 = prec == "bf16";
    if (prec == "bf16_master") {
      for (const auto& p : policy.parameters()) mp.master.push_back(p.to(dev, torch::kFloat32, false, true));
      policy.to(dev, torch::kBFloat16);
      reference.to(dev, torch::kBFloat16);
    } else {
      policy.to(dev, torch::kFloat32);
      reference.to(dev, torch::kFloat32);
    }
    const auto before = policy.parameters()[0].detach().cpu().to(torch::kFloat32);
    policy.set_requires_grad(true);
    torch::optim::AdamW optim(mp.master.empty() ? policy.parameters() : mp.master, torch::optim::AdamWOptions(1e-2));
    LossOptions lo;
    UpdateOptions uo;
    uo.mini_batch = 2;
    uo.micro_batch = 1;
    const auto st = ppo_update(policy, &reference, optim, batch, adv, lo, uo, 1, mp);
    EXPECT_EQ(st.optimizer_steps, 1) << prec;
    EXPECT_EQ(st.skipped_steps, 0) << prec;
    const auto after = policy.parameters()[0].detach().cpu().to(torch::kFloat32);
    EXPECT_TRUE(policy.parameters()[0].is_cuda()) << prec;
    EXPECT_FALSE(torch::equal(before, after)) << prec;
    EXPECT_TRUE(torch::isfinite(after).all().item<bool>()) << prec;
  }
}

}  // namespace
}  // namespace strata::rl
