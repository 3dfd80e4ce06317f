#include "rl/advantage.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

#include <cmath>
#include <map>

#include "core/error.h"
#include "core/rng.h"

namespace strata::rl {
namespace {

// A batch of `groups` prompt groups with `g` rollouts each, continuous rewards and strata drawn
// from 0..max_stratum (number of searches).
std::vector<TrajectoryScore> random_batch(Rng& rng, int groups, int g, int max_stratum) {
  std::vector<TrajectoryScore> b;
  for (int p = 0; p < groups; ++p)
    for (int i = 0; i < g; ++i)
      b.push_back({p, rng.normal() * 2.0 + 0.5 * static_cast<double>(i % 3),
                   static_cast<int64_t>(rng.below(max_stratum + 1))});
  return b;
}

AdvantageOptions san_only(double eps = 0.0) {
  AdvantageOptions o;
  o.estimator = Estimator::kStratified;
  o.alpha = 1.0;
  o.eps = eps;
  return o;
}

using CellKey = std::pair<int64_t, int64_t>;
std::map<CellKey, std::vector<size_t>> cells(const std::vector<TrajectoryScore>& b) {
  std::map<CellKey, std::vector<size_t>> m;
  for (size_t i = 0; i < b.size(); ++i) m[{b[i].group, b[i].stratum}].push_back(i);
  return m;
}

TEST(Advantage, HandComputedExample) {
  // One group: rewards 1,0 in stratum 0 (no search), 1,1,0 in stratum 1.
  std::vector<TrajectoryScore> b = {{0, 1, 0}, {0, 0, 0}, {0, 1, 1}, {0, 1, 1}, {0, 0, 1}};
  AdvantageOptions o;
  o.eps = 0;
  o.alpha = 0.6;
  const auto t = advantage_terms(b, o);
  // Group: mean 0.6, population std sqrt(0.24).
  const double sg = std::sqrt(0.24);
  EXPECT_NEAR(t.gn[0], 0.4 / sg, 1e-12);
  EXPECT_NEAR(t.gn[1], -0.6 / sg, 1e-12);
  // Stratum 0: mean 0.5, std 0.5 -> +1, -1. Stratum 1: mean 2/3, std sqrt(2/9).
  EXPECT_NEAR(t.san[0], 1.0, 1e-12);
  EXPECT_NEAR(t.san[1], -1.0, 1e-12);
  EXPECT_NEAR(t.san[2], (1.0 / 3.0) / std::sqrt(2.0 / 9.0), 1e-12);
  EXPECT_NEAR(t.san[4], (-2.0 / 3.0) / std::sqrt(2.0 / 9.0), 1e-12);
  const auto a = compute_advantages(b, o);
  for (size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(a[i], 0.6 * t.san[i] + 0.4 * t.gn[i], 1e-12);
}

TEST(Advantage, SanHasZeroMeanUnitVarianceInEachStratum) {
  Rng rng(1);
  for (int rep = 0; rep < 20; ++rep) {
    const auto b = random_batch(rng, 8, 16, 3);
    const auto a = compute_advantages(b, san_only(0.0));
    for (const auto& [key, idx] : cells(b)) {
      double s = 0, s2 = 0;
      for (size_t i : idx) {
        s += a[i];
        s2 += a[i] * a[i];
      }
      const double n = static_cast<double>(idx.size());
      if (idx.size() < 2) {
        EXPECT_EQ(a[idx[0]], 0.0) << "a singleton stratum has no peer";
        continue;
      }
      EXPECT_NEAR(s / n, 0.0, 1e-9);
      EXPECT_NEAR(s2 / n, 1.0, 1e-9);
    }
  }
}

TEST(Advantage, SanGlobalMeanIsZero) {
  Rng rng(2);
  const auto b = random_batch(rng, 16, 8, 4);
  for (double eps : {0.0, 1e-6, 0.1}) {
    const auto a = compute_advantages(b, san_only(eps));
    double s = 0;
    for (double v : a) s += v;
    EXPECT_NEAR(s / static_cast<double>(a.size()), 0.0, 1e-12) << "eps " << eps;
  }
}

TEST(Advantage, SanInvariantToPositiveAffineRewardTransforms) {
  Rng rng(3);
  const auto b = random_batch(rng, 6, 12, 2);
  const auto a = compute_advantages(b, san_only(0.0));
  for (const auto& [scale, shift] : std::vector<std::pair<double, double>>{{3.0, -7.0}, {0.01, 5.0}}) {
    auto t = b;
    for (auto& x : t) x.reward = scale * x.reward + shift;
    const auto at = compute_advantages(t, san_only(0.0));
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(at[i], a[i], 1e-8);
  }
  // A negative scale flips the sign instead: invariance is for positive transforms only.
  auto neg = b;
  for (auto& x : neg) x.reward = -x.reward;
  const auto an = compute_advantages(neg, san_only(0.0));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(an[i], -a[i], 1e-8);
}

TEST(Advantage, BlendIsLinearInAlpha) {
  Rng rng(4);
  const auto b = random_batch(rng, 5, 10, 3);
  AdvantageOptions o;
  o.alpha = 1.0;
  const auto a1 = compute_advantages(b, o);
  o.alpha = 0.0;
  const auto a0 = compute_advantages(b, o);
  for (double alpha : {0.25, 0.6, 0.9}) {
    o.alpha = alpha;
    const auto a = compute_advantages(b, o);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], alpha * a1[i] + (1 - alpha) * a0[i], 1e-12);
  }
  // alpha = 0 is exactly GRPO.
  AdvantageOptions g;
  g.estimator = Estimator::kGrpo;
  const auto ag = compute_advantages(b, g);
  for (size_t i = 0; i < a0.size(); ++i) EXPECT_DOUBLE_EQ(a0[i], ag[i]);
}

TEST(Advantage, SingleStratumEqualsGrpo) {
  Rng rng(5);
  auto b = random_batch(rng, 7, 9, 0);  // every stratum key is 0
  AdvantageOptions g;
  g.estimator = Estimator::kGrpo;
  for (bool unbiased : {false, true}) {
    g.unbiased_std = unbiased;
    AdvantageOptions s = g;
    s.estimator = Estimator::kStratified;
    s.alpha = 0.6;
    const auto ag = compute_advantages(b, g);
    const auto as = compute_advantages(b, s);
    for (size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(as[i], ag[i], 1e-12);
  }
}

TEST(Advantage, DecompositionAndVarianceReductionOfUnnormalisedEstimators) {
  Rng rng(6);
  const auto b = random_batch(rng, 4, 20, 3);
  AdvantageOptions o;
  o.scale_by_std = false;
  const auto terms = advantage_terms(b, o);  // gn = R - mean_g, san = R - mean_gk
  for (int64_t g = 0; g < 4; ++g) {
    double sum = 0, n = 0;
    for (const auto& x : b)
      if (x.group == g) sum += x.reward, n += 1;
    const double mean_g = sum / n;
    double ssg = 0, sss = 0, between = 0;
    for (const auto& [key, idx] : cells(b)) {
      if (key.first != g) continue;
      double sk = 0;
      for (size_t i : idx) sk += b[i].reward;
      const double mean_k = sk / static_cast<double>(idx.size());
      for (size_t i : idx) {
        if (idx.size() >= 2) {
          // A_G = A_S + (mean_k - mean_global): the cross-stratum bias term.
          EXPECT_NEAR(terms.gn[i], terms.san[i] + (mean_k - mean_g), 1e-12);
        }
        ssg += terms.gn[i] * terms.gn[i];
        sss += (b[i].reward - mean_k) * (b[i].reward - mean_k);
      }
      between += static_cast<double>(idx.size()) * (mean_k - mean_g) * (mean_k - mean_g);
    }
    // Removing the bias lowers the variance by (1/N) sum_k n_k (mean_k - mean)^2.
    EXPECT_NEAR(ssg / n - sss / n, between / n, 1e-9);
  }
}

TEST(Advantage, SingletonsGetZero) {
  std::vector<TrajectoryScore> b = {{0, 1.0, 0}, {1, 0.0, 0}, {1, 1.0, 1}, {1, 1.0, 1}};
  AdvantageOptions o;
  const auto t = advantage_terms(b, o);
  EXPECT_EQ(t.gn[0], 0.0);   // singleton group
  EXPECT_EQ(t.san[0], 0.0);
  EXPECT_EQ(t.san[1], 0.0);  // singleton stratum inside group 1
  EXPECT_NE(t.gn[1], 0.0);
  EXPECT_EQ(t.san[2], 0.0);  // equal rewards: centred value is 0
}

TEST(Advantage, UnbiasedStdMatchesSampleStd) {
  std::vector<TrajectoryScore> b = {{0, 1, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  AdvantageOptions o;
  o.estimator = Estimator::kGrpo;
  o.unbiased_std = true;
  o.eps = 1e-6;
  const auto a = compute_advantages(b, o);
  // mean 0.25, sample std = sqrt(0.75/3) = 0.5.
  EXPECT_NEAR(a[0], 0.75 / (0.5 + 1e-6), 1e-12);
  EXPECT_NEAR(a[1], -0.25 / (0.5 + 1e-6), 1e-12);
}

TEST(Advantage, BatchScopePoolsStrataAcrossGroups) {
  // Two groups, each with a single member in stratum 1: per-group SAN gives 0 (singletons),
  // batch scope pools them into one stratum of two.
  std::vector<TrajectoryScore> b = {{0, 1, 1}, {0, 0, 0}, {0, 1, 0}, {1, 0, 1}, {1, 1, 0}, {1, 0, 0}};
  AdvantageOptions o;
  o.eps = 0;
  o.alpha = 1.0;
  const auto per_group = compute_advantages(b, o);
  EXPECT_EQ(per_group[0], 0.0);
  EXPECT_EQ(per_group[3], 0.0);
  o.scope = StrataScope::kBatch;
  const auto pooled = compute_advantages(b, o);
  EXPECT_NEAR(pooled[0], 1.0, 1e-12);
  EXPECT_NEAR(pooled[3], -1.0, 1e-12);
}

TEST(Advantage, StratumKeys) {
  EXPECT_EQ(stratum_key(StratumKind::kNumSearches, 2, true), 2);
  EXPECT_EQ(stratum_key(StratumKind::kSearchesTimesHit, 2, true), 5);
  EXPECT_EQ(stratum_key(StratumKind::kSearchesTimesHit, 2, false), 4);
  EXPECT_NE(stratum_key(StratumKind::kSearchesTimesHit, 1, true),
            stratum_key(StratumKind::kSearchesTimesHit, 2, false));
  EXPECT_EQ(stratum_key(StratumKind::kCustom, 2, true, 42), 42);
  EXPECT_EQ(parse_stratum_kind("searches_x_hit"), StratumKind::kSearchesTimesHit);
  EXPECT_THROW(parse_stratum_kind("turns"), Error);
}

TEST(Advantage, InvalidOptionsAndRewardsAreErrors) {
  std::vector<TrajectoryScore> b = {{0, 1, 0}, {0, 0, 0}};
  auto expect_error = [&](AdvantageOptions o, const std::string& needle) {
    try {
      compute_advantages(b, o);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  AdvantageOptions o;
  o.alpha = 1.5;
  expect_error(o, "alpha: expected a number in [0, 1], got 1.5");
  // Estimator and scope are enums: a bad name is refused where the config is read, naming the
  // key, the file:line and the allowed names.
  auto load_error = [](const std::string& json) {
    return testing::error_of([&] { config::from_document<AdvantageOptions>(config::parse_document(json, "adv.json")); });
  };
  EXPECT_EQ(load_error(R"({"estimator": "ppo"})"), "adv.json:1: estimator: expected grpo or stratified, got \"ppo\"");
  EXPECT_EQ(load_error("{\n\"scope\": \"prompt\"}"), "adv.json:2: scope: expected group or batch, got \"prompt\"");
  EXPECT_EQ(load_error(R"({"scope": 1})"), "adv.json:1: scope: expected group or batch, got 1");
  b[0].reward = std::nan("");
  expect_error(AdvantageOptions{}, "non-finite reward");
}

}  // namespace
}  // namespace strata::rl
