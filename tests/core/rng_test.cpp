#include "core/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

namespace strata {
namespace {

TEST(Rng, SameSeedSameStream) {
  Rng a(123), b(123), c(124);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differs = differs || x != c.next_u64();
  }
  EXPECT_TRUE(differs);
}

TEST(Rng, KnownFirstValuesArePinned) {
  // Pinned so that a change of algorithm (which would change every generated world and every
  // seeded run) is noticed. mt19937_64 is specified by the standard, so this holds everywhere.
  Rng r(1);
  const uint64_t first = r.next_u64();
  Rng again(1);
  EXPECT_EQ(first, again.next_u64());
  EXPECT_EQ(std::mt19937_64(mix64(1))(), first);
}

TEST(Rng, ForkIsIndependentAndStable) {
  Rng base(5);
  auto f1 = base.fork("people");
  auto f2 = base.fork("people");
  auto g = base.fork("places");
  const auto x = f1.next_u64();
  EXPECT_EQ(x, f2.next_u64());
  EXPECT_NE(x, g.next_u64());
  // Forking does not advance the parent.
  Rng fresh(5);
  EXPECT_EQ(base.next_u64(), fresh.next_u64());
}

TEST(Rng, BelowIsInRangeAndRoughlyUniform) {
  Rng r(9);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const auto v = r.below(7);
    ASSERT_LT(v, 7u);
    counts[v]++;
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
  for (int i = 0; i < 1000; ++i) {
    const auto v = r.range(-3, 3);
    EXPECT_GE(v, -3);
    EXPECT_LE(v, 3);
  }
}

TEST(Rng, UniformAndNormalMoments) {
  Rng r(11);
  double s = 0, s2 = 0, n1 = 0, n2 = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    s += u;
    s2 += u * u;
    const double z = r.normal();
    n1 += z;
    n2 += z * z;
  }
  EXPECT_NEAR(s / n, 0.5, 0.01);
  EXPECT_NEAR(s2 / n - 0.25, 1.0 / 12.0, 0.01);
  EXPECT_NEAR(n1 / n, 0.0, 0.02);
  EXPECT_NEAR(n2 / n, 1.0, 0.03);
}

TEST(Rng, ShuffleIsAPermutation) {
  Rng r(3);
  std::vector<int> v(50);
  for (int i = 0; i < 50; ++i) v[i] = i;
  auto w = v;
  r.shuffle(w);
  EXPECT_NE(v, w);
  EXPECT_EQ(std::set<int>(w.begin(), w.end()).size(), 50u);
}

}  // namespace
}  // namespace strata
