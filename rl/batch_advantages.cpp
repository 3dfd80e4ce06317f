#include "rl/batch_advantages.h"

#include <cmath>

#include "core/error.h"
#include "env/rollout_file.h"

namespace strata::rl {

bool failed_retrieval(const env::pb::Trajectory& t) {
  return env::end_reason_of(t) == env::EndReason::kRetrievalFailed;
}

bool all_advantages_zero(const std::vector<env::pb::Trajectory>& batch,
                         const std::vector<double>& advantages) {
  STRATA_CHECK(advantages.size() == batch.size(),
               advantages.size() << " advantages for " << batch.size() << " trajectories");
  for (size_t i = 0; i < batch.size(); ++i)
    if (!failed_retrieval(batch[i]) && !(std::abs(advantages[i]) <= kZeroAdvantage)) return false;  // NaN: not zero
  return true;
}

std::vector<double> batch_advantages(const std::vector<env::pb::Trajectory>& batch,
                                     const AdvantageOptions& opts) {
  std::vector<TrajectoryScore> scores;
  std::vector<size_t> where;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (failed_retrieval(batch[i])) continue;
    scores.push_back({batch[i].group(), batch[i].reward(), batch[i].stratum()});
    where.push_back(i);
  }
  std::vector<double> out(batch.size(), 0.0);
  if (scores.empty()) return out;
  const auto a = compute_advantages(scores, opts);
  for (size_t k = 0; k < where.size(); ++k) out[where[k]] = a[k];
  return out;
}

}  // namespace strata::rl
