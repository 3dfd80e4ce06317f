#include "rl/batch_advantages.h"

#include <cmath>
#include <cstring>

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

std::vector<env::pb::Trajectory> gather_batch(const Distributed& dist, std::vector<env::pb::Trajectory> local) {
  if (!dist.active()) return local;
  // Each trajectory as its 8-byte length and its serialized bytes.
  std::string mine;
  for (const auto& t : local) {
    const std::string b = t.SerializeAsString();
    const uint64_t n = b.size();
    mine.append(reinterpret_cast<const char*>(&n), sizeof n);
    mine += b;
  }
  std::vector<env::pb::Trajectory> out;
  const auto all = dist.all_gather_bytes(mine);
  for (size_t r = 0; r < all.size(); ++r) {
    const std::string& s = all[r];
    size_t at = 0;
    while (at < s.size()) {
      uint64_t n = 0;
      STRATA_CHECK(at + sizeof n <= s.size(), "gather_batch: rank " << r << "'s trajectories are cut short");
      std::memcpy(&n, s.data() + at, sizeof n);
      at += sizeof n;
      STRATA_CHECK(n <= s.size() - at, "gather_batch: rank " << r << "'s trajectories are cut short");
      out.emplace_back();
      STRATA_CHECK(out.back().ParseFromArray(s.data() + at, static_cast<int>(n)),
                   "gather_batch: rank " << r << " sent a trajectory that does not parse");
      at += n;
    }
  }
  return out;
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
