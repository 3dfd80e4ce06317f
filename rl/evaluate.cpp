#include "rl/evaluate.h"

#include <algorithm>

#include "core/error.h"

namespace strata::rl {

std::vector<eval::Prediction> evaluate_policy(
    const agent::Model& model, const agent::Tokenizer& tokenizer,
    retrieval::RetrievalClient& client, const std::vector<data::QaRecord>& records,
    const std::string& dataset, const RolloutOptions& opts,
    const std::function<void(const eval::Prediction&)>& on_done) {
  RolloutOptions o = opts;
  o.samples_per_prompt = 1;
  o.validate();
  const size_t chunk = static_cast<size_t>(std::max(1, o.max_batch)) * 4;
  std::vector<eval::Prediction> out;
  out.reserve(records.size());
  for (size_t start = 0, step = 0; start < records.size(); start += chunk, ++step) {
    const size_t end = std::min(records.size(), start + chunk);
    const std::vector<data::QaRecord> part(records.begin() + static_cast<long>(start),
                                           records.begin() + static_cast<long>(end));
    const auto batch = run_rollouts(model, tokenizer, client, part, o, static_cast<int>(step),
                                    static_cast<int64_t>(start));
    STRATA_ASSERT(batch.trajectories.size() == part.size(),
                  "run_rollouts returned " << batch.trajectories.size() << " trajectories for "
                                           << part.size() << " questions");
    for (size_t i = 0; i < part.size(); ++i) {
      out.push_back(eval::from_trajectory(part[i], dataset, batch.trajectories[i]));
      if (on_done) on_done(out.back());
    }
  }
  return out;
}

}  // namespace strata::rl
