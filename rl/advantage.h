// Advantage estimators for GRPO-family training: plain GRPO and Stratified GRPO (SAN + blend).
//
// Every trajectory carries the id of its prompt group, its scalar reward and a stratum key (by
// default its number of search calls). For trajectory i in group g and stratum k:
//
//   grpo:        A_GN  = (R - mean_g) / (std_g + eps)            (Dr. GRPO: no division)
//   stratified:  A_SAN = (R - mean_gk) / (std_gk + eps)          strata inside the group
//                A     = alpha * A_SAN + (1 - alpha) * A_GN
//
// With scope = batch the strata pool trajectories of every group (mean_k over the batch);
// the A_GN term stays per group. A singleton group gets A_GN = 0; a singleton stratum has no peer
// and gets A_SAN = 0.
//
// Which standard deviation: the population one (divide by n) by default, because then the
// paper's properties hold exactly at finite n: inside each stratum SAN has mean 0 and variance 1
// (as eps -> 0), and stratified with one stratum equals grpo. veRL's GRPO uses the sample std
// (divide by n - 1, torch.std's default); set unbiased_std = true to match it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace strata::rl {

enum class Estimator { kGrpo, kStratified };
inline constexpr config::EnumName<Estimator> kEstimatorNames[] = {{Estimator::kGrpo, "grpo"},
                                                                  {Estimator::kStratified, "stratified"}};
inline config::EnumTable<Estimator> enum_names(Estimator) { return kEstimatorNames; }

// Where strata are formed: inside each prompt group, or across the batch.
enum class StrataScope { kGroup, kBatch };
inline constexpr config::EnumName<StrataScope> kStrataScopeNames[] = {{StrataScope::kGroup, "group"},
                                                                      {StrataScope::kBatch, "batch"}};
inline config::EnumTable<StrataScope> enum_names(StrataScope) { return kStrataScopeNames; }

struct AdvantageOptions {
  Estimator estimator = Estimator::kStratified;
  double alpha = 0.6;        // blend weight of SAN (1 = pure SAN, 0 = GRPO); paper: 0.6
  double eps = 1e-6;         // added to the std before dividing
  bool scale_by_std = true;  // false = Dr. GRPO: centre only, for both terms
  bool unbiased_std = false; // false: population std (default, see above); true: sample std
  StrataScope scope = StrataScope::kGroup;  // group: strata inside each prompt group; batch: across it

  // Throws strata::Error naming the bad field and value.
  void validate() const;
  template <class V>
  void visit(V& v) {
    v("estimator", estimator, "grpo or stratified");
    v("alpha", alpha, "SAN weight in the blend (stratified only), in [0, 1]");
    v("eps", eps, "added to the standard deviation before dividing, >= 0");
    v("scale_by_std", scale_by_std, "divide by the std (false = Dr. GRPO)");
    v("unbiased_std", unbiased_std, "sample std (n-1, as veRL) instead of population std (n)");
    v("scope", scope, "group or batch: where strata are formed");
  }
};

// How a trajectory's stratum key is formed from its structure.
enum class StratumKind {
  kNumSearches,         // number of search calls (the paper's choice)
  kSearchesTimesHit,    // number of searches x whether any retrieved passage held a gold answer
  kCustom,              // a key supplied by the caller
};
// "searches", "searches_x_hit", "custom"; throws strata::Error on other names.
StratumKind parse_stratum_kind(const std::string& name);
// The key for a trajectory; `custom` is used only for kCustom.
int64_t stratum_key(StratumKind kind, int num_searches, bool gold_retrieved, int64_t custom = 0);

struct TrajectoryScore {
  int64_t group = 0;    // prompt group id, unique per prompt in the batch
  double reward = 0;    // scalar reward
  int64_t stratum = 0;  // structural key (see stratum_key)
};

// Per-trajectory advantages, in input order.
std::vector<double> compute_advantages(const std::vector<TrajectoryScore>& batch,
                                       const AdvantageOptions& opts);

// The two terms separately (for logging and tests): a_gn and a_san, in input order.
struct AdvantageTerms {
  std::vector<double> gn;   // group-normalised term
  std::vector<double> san;  // stratified term (all zeros for estimator "grpo")
};
AdvantageTerms advantage_terms(const std::vector<TrajectoryScore>& batch,
                               const AdvantageOptions& opts);

}  // namespace strata::rl
