#include "rl/advantage.h"

#include <cmath>
#include <map>
#include <utility>

#include "core/error.h"

namespace strata::rl {

void AdvantageOptions::validate() const {
  STRATA_CHECK(std::isfinite(alpha) && alpha >= 0.0 && alpha <= 1.0,
               "alpha: expected a number in [0, 1], got " << alpha);
  STRATA_CHECK(std::isfinite(eps) && eps >= 0.0, "eps: expected a number >= 0, got " << eps);
}

StratumKind parse_stratum_kind(const std::string& name) {
  if (name == "searches") return StratumKind::kNumSearches;
  if (name == "searches_x_hit") return StratumKind::kSearchesTimesHit;
  if (name == "custom") return StratumKind::kCustom;
  STRATA_FAIL("stratum key: expected searches, searches_x_hit or custom, got \"" << name << "\"");
}

int64_t stratum_key(StratumKind kind, int num_searches, bool gold_retrieved, int64_t custom) {
  switch (kind) {
    case StratumKind::kNumSearches: return num_searches;
    case StratumKind::kSearchesTimesHit: return 2 * static_cast<int64_t>(num_searches) + (gold_retrieved ? 1 : 0);
    case StratumKind::kCustom: return custom;
  }
  return 0;
}

namespace {

// Mean and std of the rewards of one cell (a group, or a stratum), accumulated in two passes
// for accuracy.
struct Cell {
  std::vector<size_t> members;
  double mean = 0;
  double std = 0;
};

void finish_cells(std::map<std::pair<int64_t, int64_t>, Cell>& cells,
                  const std::vector<TrajectoryScore>& batch, bool unbiased) {
  for (auto& [key, cell] : cells) {
    const double n = static_cast<double>(cell.members.size());
    double sum = 0;
    for (size_t i : cell.members) sum += batch[i].reward;
    cell.mean = sum / n;
    double sq = 0;
    for (size_t i : cell.members) {
      const double d = batch[i].reward - cell.mean;
      sq += d * d;
    }
    const double denom = unbiased ? n - 1 : n;
    cell.std = denom > 0 ? std::sqrt(sq / denom) : 0.0;
  }
}

// Normalised (or only centred) value of trajectory i within its cell; 0 for a singleton cell.
double normalise(const Cell& cell, double reward, const AdvantageOptions& opts) {
  if (cell.members.size() < 2) return 0.0;
  const double centred = reward - cell.mean;
  return opts.scale_by_std ? centred / (cell.std + opts.eps) : centred;
}

}  // namespace

AdvantageTerms advantage_terms(const std::vector<TrajectoryScore>& batch,
                               const AdvantageOptions& opts) {
  opts.validate();
  for (size_t i = 0; i < batch.size(); ++i)
    STRATA_CHECK(std::isfinite(batch[i].reward),
                 "trajectory " << i << " has a non-finite reward " << batch[i].reward);
  AdvantageTerms out;
  out.gn.assign(batch.size(), 0.0);
  out.san.assign(batch.size(), 0.0);

  std::map<std::pair<int64_t, int64_t>, Cell> groups;
  for (size_t i = 0; i < batch.size(); ++i) groups[{batch[i].group, 0}].members.push_back(i);
  finish_cells(groups, batch, opts.unbiased_std);
  for (size_t i = 0; i < batch.size(); ++i)
    out.gn[i] = normalise(groups.at({batch[i].group, 0}), batch[i].reward, opts);

  if (opts.estimator == Estimator::kStratified) {
    const bool per_group = opts.scope == StrataScope::kGroup;
    std::map<std::pair<int64_t, int64_t>, Cell> strata;
    for (size_t i = 0; i < batch.size(); ++i)
      strata[{per_group ? batch[i].group : 0, batch[i].stratum}].members.push_back(i);
    finish_cells(strata, batch, opts.unbiased_std);
    for (size_t i = 0; i < batch.size(); ++i)
      out.san[i] = normalise(strata.at({per_group ? batch[i].group : 0, batch[i].stratum}),
                             batch[i].reward, opts);
  }
  return out;
}

std::vector<double> compute_advantages(const std::vector<TrajectoryScore>& batch,
                                       const AdvantageOptions& opts) {
  const AdvantageTerms t = advantage_terms(batch, opts);
  if (opts.estimator == Estimator::kGrpo) return t.gn;
  std::vector<double> a(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) a[i] = opts.alpha * t.san[i] + (1.0 - opts.alpha) * t.gn[i];
  return a;
}

}  // namespace strata::rl
