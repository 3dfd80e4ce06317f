// Writing an evaluation's results: predictions.jsonl (one scored question per line, written as
// questions finish), summary.json and summary.md (the same numbers as a Markdown table).
// Formats: docs/EVALUATE.md.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "eval/metrics.h"
#include "eval/prediction.h"

namespace strata::eval {

// Appends predictions to a JSONL file, one line each, flushed per write so that a run that is
// stopped keeps what it finished. Invalid UTF-8 in texts is replaced, never an error.
class PredictionWriter {
 public:
  // Creates (truncates) the file; throws strata::Error when it cannot.
  explicit PredictionWriter(const std::string& path);
  void write(const Prediction& p);
  size_t written() const { return written_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
  size_t written_ = 0;
};

// {"overall": {n, em, f1, cover_em, searches, answer_rate, missing},
//  "datasets": {NAME: {..., "by_hops": {"1": {...}}, "by_type": {"bridge": {...}}}}}
// Numbers rounded to 4 decimals; by_hops/by_type only when the records carry them.
nlohmann::ordered_json summary_to_json(const Summary& s);

// A Markdown table: one row per data file, a row per hops/type group under it, then overall;
// a note under it when predictions were missing.
std::string summary_markdown(const Summary& s);

// Writes OUT/summary.json and OUT/summary.md (creating OUT); throws strata::Error when it cannot.
void write_summary(const std::string& out_dir, const Summary& s);

}  // namespace strata::eval
