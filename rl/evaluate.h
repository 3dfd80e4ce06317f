// Evaluation of a local policy: one trajectory per question through the async rollout engine
// (greedy when opts.temperature is 0), turned into scored eval::Predictions.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "eval/prediction.h"
#include "rl/rollout.h"

namespace strata::rl {

// Runs `records` in chunks of 4 * opts.max_batch questions (each chunk one run_rollouts call with
// continuous batching inside it), with samples_per_prompt forced to 1. Returns the predictions
// in record order and calls `on_done` for each as its chunk finishes, in order.
std::vector<eval::Prediction> evaluate_policy(
    const agent::Model& model, const agent::Tokenizer& tokenizer,
    retrieval::RetrievalClient& client, const std::vector<data::QaRecord>& records,
    const std::string& dataset, const RolloutOptions& opts,
    const std::function<void(const eval::Prediction&)>& on_done = {});

}  // namespace strata::rl
