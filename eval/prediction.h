// One evaluated question: the record every evaluation mode produces and predictions.jsonl holds,
// scored with the same answer matching as the rewards (env/answer_match.h: SQuAD normalisation,
// exact match, token F1, cover-EM).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/qa.h"
#include "env/trajectory.pb.h"

namespace strata::eval {

struct Prediction {
  std::string id;                           // the question's id in its data file
  std::string dataset;                      // the data file's stem
  std::string question;                     // the question text
  std::vector<std::string> golden_answers;  // any of these counts as correct
  std::string prediction;                   // the final answer ("" when none was given)
  double em = 0;                            // exact match, 0 or 1
  double f1 = 0;                            // best token F1 over the gold answers, [0, 1]
  double cover_em = 0;                      // a gold answer occurs in the prediction, 0 or 1
  int searches = 0;                         // search calls the agent made
  std::vector<std::string> queries;         // their queries, in order
  std::optional<int> hops;                  // the record's "hops" metadata, when it has one
  std::string type;                         // the record's "type" metadata ("" when none)
  std::string trajectory;  // agent modes: the response text (policy + observations)
  std::string end_reason;  // agent modes: answered, max_turns, ...; scoring: scored
                           // or missing
  std::string error;       // why the trajectory failed (retrieval), else ""
  bool missing = false;    // scoring mode: the predictions file had no line for it
};

// A prediction of `answer` for `record` (id, question, gold answers, hops and type copied from
// the record), scored.
Prediction make_prediction(const data::QaRecord& record, const std::string& dataset,
                           const std::string& answer);

// (Re)computes em, f1 and cover_em of p.prediction against p.golden_answers.
void score(Prediction& p);

// The final answer of a trajectory given as (text, trained) segments: the last complete
// <answer>…</answer> inside the policy's own text (trained segments), "" when there is none.
// Observations are never searched, so an answer-like span in a retrieved document or in the
// invalid-action feedback ("… between <answer> and </answer> …") is not taken for an answer.
std::string policy_answer(const std::vector<std::pair<std::string, bool>>& segments);

// The prediction of a finished trajectory of `record` (policy_answer of its segments, searches,
// queries, response text and end reason).
Prediction from_trajectory(const data::QaRecord& record, const std::string& dataset,
                           const env::pb::Trajectory& t);

// One predictions.jsonl line (see docs/EVALUATE.md): hops and type only when known, error only
// when set.
nlohmann::ordered_json to_json(const Prediction& p);

}  // namespace strata::eval
