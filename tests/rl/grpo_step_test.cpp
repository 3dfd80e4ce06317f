#include "rl/grpo_step.h"

#include <gtest/gtest.h>

#include <cmath>

#include "agent/logprobs.h"
#include "agent/model.h"

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
  ao.estimator = "grpo";
  const auto adv = batch_advantages(batch, ao);
  EXPECT_GT(adv[0], 0);
  EXPECT_LT(adv[1], 0);
  const double good0 = policy_logprob(policy, batch[0]), bad0 = policy_logprob(policy, batch[1]);
  policy.set_requires_grad(true);
  torch::optim::Adam optim(policy.parameters(), torch::optim::AdamOptions(1e-2));
  LossOptions lo;
  lo.kl_estimator = "off";
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
  ao.estimator = "grpo";
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
  lo.kl_estimator = "off";
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
  lo.kl_estimator = "off";
  policy_loss(in, lo).loss.backward();
  const auto g = logits.grad()[0];  // [7, V]
  EXPECT_EQ(g[3].abs().sum().item<float>(), 0.0f) << "the logit that scores the retrieved token";
  EXPECT_EQ(g[0].abs().sum().item<float>(), 0.0f) << "prompt positions";
  EXPECT_GT(g[2].abs().sum().item<float>(), 0.0f);
  EXPECT_GT(g[4].abs().sum().item<float>(), 0.0f);
}

}  // namespace
}  // namespace strata::rl
