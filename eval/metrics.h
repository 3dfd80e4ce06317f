// Aggregate metrics of an evaluation: per data file, per number of hops and per question type
// (where the records carry them), and overall (every question counted once, so data files weigh
// by their size).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "eval/prediction.h"

namespace strata::eval {

// Metrics of a group of questions. Rates are percentages, searches a mean count.
struct Aggregate {
  int64_t n = 0;           // questions
  double em = 0;           // exact match, % of n
  double f1 = 0;           // mean token F1, % (0..100)
  double cover_em = 0;     // cover-EM, % of n
  double searches = 0;     // mean search calls per question
  double answer_rate = 0;  // % of n with a non-empty prediction
};

struct GroupSummary {
  Aggregate all;                             // every question of the group
  int64_t missing = 0;                       // scoring mode: gold ids with no prediction line
  std::map<int, Aggregate> by_hops;          // by the records' "hops" (empty when none has it)
  std::map<std::string, Aggregate> by_type;  // by the records' "type" (empty when none has it)
};

struct Summary {
  GroupSummary overall;                                        // all data files together
  std::vector<std::pair<std::string, GroupSummary>> datasets;  // per data file, in --data order
};

// Metrics of `preds` (any order). Data files appear in `dataset_order`; a dataset named by a
// prediction but absent from the order is appended after them.
Summary summarize(const std::vector<Prediction>& preds,
                  const std::vector<std::string>& dataset_order);

}  // namespace strata::eval
