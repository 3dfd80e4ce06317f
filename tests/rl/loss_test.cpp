#include "rl/loss.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

#include <cmath>

#include "core/error.h"

namespace strata::rl {
namespace {

torch::Tensor t2(std::vector<std::vector<float>> rows) {
  const int64_t b = static_cast<int64_t>(rows.size()), t = static_cast<int64_t>(rows[0].size());
  auto out = torch::empty({b, t});
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < t; ++j) out[i][j] = rows[i][j];
  return out;
}

LossOptions no_kl() {
  LossOptions o;
  o.kl_estimator = KlEstimator::kOff;
  return o;
}

TEST(PolicyLoss, OnPolicyIsMinusMeanAdvantageWithMaskedGradients) {
  torch::manual_seed(0);
  auto logp = t2({{-1.0f, -2.0f, -0.5f}, {-0.3f, -0.7f, -1.1f}}).requires_grad_(true);
  LossInputs in;
  in.logprobs = logp;
  in.old_logprobs = logp.detach().clone();
  in.advantages = torch::tensor({2.0f, -1.0f});
  in.mask = t2({{1, 1, 0}, {1, 0, 0}});
  const auto out = policy_loss(in, no_kl());
  // token-mean over 3 tokens: -(2 + 2 - 1) / 3.
  EXPECT_NEAR(out.pg_loss, -1.0, 1e-6);
  EXPECT_EQ(out.tokens, 3);
  EXPECT_NEAR(out.ratio_mean, 1.0, 1e-6);
  EXPECT_EQ(out.clip_frac, 0.0);
  out.loss.backward();
  const auto g = logp.grad();
  // d/dlogp of -A*exp(logp-old) at ratio 1 is -A, divided by the 3 tokens.
  EXPECT_NEAR(g[0][0].item<float>(), -2.0 / 3.0, 1e-6);
  EXPECT_NEAR(g[1][0].item<float>(), 1.0 / 3.0, 1e-6);
  EXPECT_EQ(g[0][2].item<float>(), 0.0f);
  EXPECT_EQ(g[1][1].item<float>(), 0.0f);
}

TEST(PolicyLoss, ClippingStopsTheGradient) {
  // Token 0: A > 0, ratio 1.5 > 1.2 -> clipped. Token 1: A < 0, ratio 0.5 < 0.8 -> clipped.
  // Token 2: A > 0, ratio 0.9 -> inside, not clipped.
  auto logp = torch::tensor({{std::log(1.5f), std::log(0.5f), std::log(0.9f)}}).requires_grad_(true);
  LossInputs in;
  in.logprobs = logp;
  in.old_logprobs = torch::zeros({1, 3});
  in.advantages = torch::tensor({{1.0f, -1.0f, 1.0f}});
  in.mask = torch::ones({1, 3});
  const auto out = policy_loss(in, no_kl());
  // pg = [-1.2, 0.8, -0.9] -> mean -1.3/3.
  EXPECT_NEAR(out.pg_loss, (-1.2 + 0.8 - 0.9) / 3.0, 1e-6);
  EXPECT_NEAR(out.clip_frac, 2.0 / 3.0, 1e-6);
  out.loss.backward();
  EXPECT_EQ(logp.grad()[0][0].item<float>(), 0.0f);
  EXPECT_EQ(logp.grad()[0][1].item<float>(), 0.0f);
  EXPECT_NEAR(logp.grad()[0][2].item<float>(), -0.9 / 3.0, 1e-6);
}

TEST(PolicyLoss, DualClipBoundsNegativeAdvantages) {
  LossInputs in;
  in.logprobs = torch::tensor({{std::log(5.0f), std::log(2.0f)}});
  in.old_logprobs = torch::zeros({1, 2});
  in.advantages = torch::tensor({{-1.0f, -1.0f}});
  in.mask = torch::ones({1, 2});
  auto o = no_kl();
  // Without dual clip: pg = max(5, 1.2) = 5 and max(2, 1.2) = 2.
  EXPECT_NEAR(policy_loss(in, o).pg_loss, 3.5, 1e-5);
  o.dual_clip = 3.0;
  const auto out = policy_loss(in, o);
  EXPECT_NEAR(out.pg_loss, (3.0 + 2.0) / 2, 1e-5);
  EXPECT_NEAR(out.dual_clip_frac, 0.5, 1e-6);
}

TEST(PolicyLoss, KlEstimators) {
  const auto logp = torch::tensor({{-1.0f}});
  const auto ref = torch::tensor({{-2.0f}});  // d = ref - logp = -1
  EXPECT_NEAR(kl_estimate(logp, ref, KlEstimator::kK1).item<float>(), 1.0, 1e-6);
  EXPECT_NEAR(kl_estimate(logp, ref, KlEstimator::kK2).item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(kl_estimate(logp, ref, KlEstimator::kK3).item<float>(), std::exp(-1.0), 1e-6);
  EXPECT_NEAR(kl_estimate(logp, logp, KlEstimator::kK3).item<float>(), 0.0, 1e-7);
  // k3 is clamped for huge gaps.
  EXPECT_NEAR(kl_estimate(torch::tensor({{-30.0f}}), torch::tensor({{0.0f}}), KlEstimator::kK3).item<float>(), 10.0, 1e-4);
  EXPECT_THROW(kl_estimate(logp, ref, KlEstimator::kOff), Error) << "off is no estimator";
}

TEST(PolicyLoss, KlTermIsAddedWithItsCoefficient) {
  LossInputs in;
  in.logprobs = torch::tensor({{-1.0f, -1.0f}});
  in.old_logprobs = in.logprobs.clone();
  in.ref_logprobs = torch::tensor({{-2.0f, -1.0f}});
  in.advantages = torch::tensor({0.0f});
  in.mask = torch::ones({1, 2});
  LossOptions o;
  o.kl_coef = 0.5;
  const auto out = policy_loss(in, o);
  EXPECT_NEAR(out.kl, std::exp(-1.0) / 2.0, 1e-6);
  EXPECT_NEAR(out.loss.item<double>(), 0.5 * std::exp(-1.0) / 2.0, 1e-6);
  in.ref_logprobs = torch::Tensor();
  EXPECT_THROW(policy_loss(in, o), Error);
}

TEST(PolicyLoss, AggregationModes) {
  // Sequence 0 has 2 tokens (values 1, 3), sequence 1 has 1 token (value 6); T = 4.
  const auto v = t2({{1, 3, 100, 100}, {6, 100, 100, 100}});
  const auto m = t2({{1, 1, 0, 0}, {1, 0, 0, 0}});
  EXPECT_NEAR(aggregate(v, m, Aggregation::kTokenMean, 0).item<float>(), 10.0 / 3.0, 1e-6);
  EXPECT_NEAR(aggregate(v, m, Aggregation::kSeqMeanTokenMean, 0).item<float>(), (2.0 + 6.0) / 2.0, 1e-6);
  EXPECT_NEAR(aggregate(v, m, Aggregation::kSeqMeanTokenSum, 0).item<float>(), (4.0 + 6.0) / 2.0, 1e-6);
  EXPECT_NEAR(aggregate(v, m, Aggregation::kSeqMeanTokenSumNorm, 0).item<float>(), 5.0 / 4.0, 1e-6);
  EXPECT_NEAR(aggregate(v, m, Aggregation::kSeqMeanTokenSumNorm, 10).item<float>(), 0.5, 1e-6);
  // A sequence with no policy token does not count in the sequence means.
  const auto m2 = t2({{1, 1, 0, 0}, {0, 0, 0, 0}});
  EXPECT_NEAR(aggregate(v, m2, Aggregation::kSeqMeanTokenMean, 0).item<float>(), 2.0, 1e-6);
}

TEST(PolicyLoss, MaskCoversEveryTermAndMetric) {
  torch::manual_seed(1);
  LossInputs a;
  a.logprobs = -torch::rand({3, 5});
  a.old_logprobs = a.logprobs + 0.1 * torch::randn({3, 5});
  a.ref_logprobs = a.logprobs + 0.2 * torch::randn({3, 5});
  a.entropy = torch::rand({3, 5});
  a.advantages = torch::randn({3});
  a.mask = (torch::rand({3, 5}) > 0.4).to(torch::kFloat);
  a.mask[0][0] = 1;
  LossOptions o;
  o.entropy_coef = 0.01;
  // Garbage (even NaN) at masked-out positions must change nothing.
  LossInputs b = a;
  const auto out_mask = a.mask == 0;
  b.logprobs = torch::where(out_mask, torch::full_like(a.logprobs, NAN), a.logprobs);
  b.old_logprobs = torch::where(out_mask, torch::full_like(a.logprobs, 50.0), a.old_logprobs);
  b.ref_logprobs = torch::where(out_mask, torch::full_like(a.logprobs, -80.0), a.ref_logprobs);
  b.entropy = torch::where(out_mask, torch::full_like(a.logprobs, 1e6), a.entropy);
  for (const auto& name : {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                           "seq-mean-token-sum-norm"}) {
    const std::string mode = name;
    o.aggregation = *config::parse_enum<Aggregation>(name);
    const auto ra = policy_loss(a, o);
    const auto rb = policy_loss(b, o);
    EXPECT_NEAR(ra.loss.item<double>(), rb.loss.item<double>(), 1e-6) << mode;
    EXPECT_NEAR(ra.kl, rb.kl, 1e-7) << mode;
    EXPECT_NEAR(ra.entropy, rb.entropy, 1e-7) << mode;
    EXPECT_NEAR(ra.clip_frac, rb.clip_frac, 1e-7) << mode;
    EXPECT_NEAR(ra.ratio_mean, rb.ratio_mean, 1e-6) << mode;
    EXPECT_TRUE(std::isfinite(rb.loss.item<double>())) << mode;
  }
}

TEST(PolicyLoss, BadOptionsNameTheKey) {
  // Aggregation is an enum: a bad name is refused where the config is read.
  const auto e = testing::error_of(
      [] { config::from_document<LossOptions>(config::parse_document(R"({"aggregation": "mean"})", "loss.json")); });
  EXPECT_EQ(e, "loss.json:1: aggregation: expected token-mean, seq-mean-token-mean, seq-mean-token-sum or "
               "seq-mean-token-sum-norm, got \"mean\"");
  LossOptions o;
  o.dual_clip = 0.5;
  EXPECT_THROW(o.validate(), Error);
}

// TIS: each token's policy-gradient term is weighted by min(exp(old - rollout), cap), computed by
// hand here; the weights carry no gradient and the logged ratio is the one before the cap.
TEST(PolicyLoss, TisWeightsAreTheCappedImportanceRatios) {
  const auto old = t2({{-1.0f, -2.0f, -0.5f}, {-0.3f, -0.7f, -1.1f}});
  const auto rollout = t2({{-1.5f, -1.0f, -0.5f}, {-0.3f, -2.0f, -0.1f}});
  // exp(old - rollout): e^0.5, e^-1, 1 | 1, e^1.3 (capped at 2), e^-1
  const float want[2][3] = {{std::exp(0.5f), std::exp(-1.0f), 1.0f}, {1.0f, 2.0f, std::exp(-1.0f)}};
  const auto w = tis_weights(old, rollout, 2.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(w[i][j].item<float>(), want[i][j], 1e-6) << i << "," << j;

  // On policy (ratio 1, no clipping), pg = -A * w per token; token-mean over the mask.
  auto logp = old.clone().requires_grad_(true);
  LossInputs in;
  in.logprobs = logp;
  in.old_logprobs = old;
  in.rollout_logprobs = rollout;
  in.advantages = torch::tensor({2.0f, -1.0f});
  in.mask = t2({{1, 1, 1}, {1, 1, 0}});  // the e^-1 at [1][2] is masked out
  auto o = no_kl();
  o.tis_cap = 2.0;
  const auto out = policy_loss(in, o);
  const double pg = (-2.0 * (want[0][0] + want[0][1] + want[0][2]) + 1.0 * (want[1][0] + want[1][1])) / 5;
  EXPECT_NEAR(out.pg_loss, pg, 1e-5);
  ASSERT_TRUE(out.tis);
  EXPECT_NEAR(out.tis_ratio_sum, std::exp(0.5) + std::exp(-1.0) + 1 + 1 + std::exp(1.3), 1e-4) << "before the cap";
  EXPECT_NEAR(out.tis_ratio_max, std::exp(1.3), 1e-4);
  EXPECT_EQ(out.tis_capped, 1);
  // The gradient of token (i, j) is -A_i * w_ij / 5 (d ratio / d logp = 1 on policy).
  out.loss.backward();
  EXPECT_NEAR(logp.grad()[0][0].item<float>(), -2.0 * want[0][0] / 5, 1e-5);
  EXPECT_NEAR(logp.grad()[1][1].item<float>(), 1.0 * 2.0 / 5, 1e-5) << "the capped weight";
  EXPECT_EQ(logp.grad()[1][2].item<float>(), 0.0f);

  // tis_cap 0 turns it off: the plain loss, no TIS statistics.
  o.tis_cap = 0;
  const auto off = policy_loss(in, o);
  EXPECT_FALSE(off.tis);
  EXPECT_NEAR(off.pg_loss, (-2.0 * 3 + 1.0 * 2) / 5, 1e-6);
  o.tis_cap = 0.5;
  EXPECT_NE(testing::error_of([&] { o.validate(); }).find("tis_cap: expected 0 (off) or a value >= 1"),
            std::string::npos);
}

}  // namespace
}  // namespace strata::rl
