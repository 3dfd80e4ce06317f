// Scoring mode: reads a predictions JSONL produced elsewhere and scores it against the gold
// answers of the data files.
//
// Each non-blank line is an object with
//   "id"          the question's id (string or integer, as in the data file), required
//   "prediction"  the answer text (string, or null for no answer), required
//   "dataset"     the data file's stem; needed only when an id occurs in several data files
//   "searches"    number of searches (optional, integer; 0 when absent)
//   "queries"     the search queries (optional, list of strings)
// Any other field is ignored, so evaluate's own predictions.jsonl can be scored again. Lines for
// questions that --limit left out of a data file, or that other shards take (--shard), are
// skipped (and counted).
// A malformed line, an id (or dataset) that is not in the data, an ambiguous id or a second line
// for the same question throws strata::Error naming file:line. Gold questions without a line are
// scored as the empty answer and marked `missing`.
#pragma once

#include <string>
#include <vector>

#include "eval/datasets.h"
#include "eval/prediction.h"

namespace strata::eval {

struct PredictionsFileOptions {
  bool extract_answer =
      false;  // take the last <answer>…</answer> of each prediction when it has one
};

struct ScoredPredictions {
  std::vector<Prediction> predictions;  // every gold question, in data-file then record order
  std::vector<std::string> missing;     // "dataset/id" of the questions without a line
  size_t lines = 0;                     // prediction lines scored
  size_t beyond_limit = 0;              // lines for questions --limit left out (skipped)
  size_t other_shards = 0;              // lines for questions of other shards (skipped)
};

ScoredPredictions score_predictions_file(const std::string& path,
                                         const std::vector<Dataset>& datasets,
                                         const PredictionsFileOptions& opts = {});

}  // namespace strata::eval
