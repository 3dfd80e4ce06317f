#include "eval/prediction.h"

#include "env/answer_match.h"

namespace strata::eval {

Prediction make_prediction(const data::QaRecord& record, const std::string& dataset,
                           const std::string& answer) {
  Prediction p;
  p.id = record.id;
  p.dataset = dataset;
  p.question = record.question;
  p.golden_answers = record.golden_answers;
  p.prediction = answer;
  const auto& m = record.metadata;
  if (auto it = m.find("hops"); it != m.end() && it->is_number_integer()) p.hops = it->get<int>();
  if (auto it = m.find("type"); it != m.end() && it->is_string()) p.type = it->get<std::string>();
  score(p);
  return p;
}

void score(Prediction& p) {
  p.em = env::exact_match(p.prediction, p.golden_answers);
  p.f1 = env::f1_score(p.prediction, p.golden_answers);
  p.cover_em = env::cover_exact_match(p.prediction, p.golden_answers);
}

std::string policy_answer(const std::vector<std::pair<std::string, bool>>& segments) {
  std::string answer;
  for (const auto& [text, trained] : segments)
    if (trained)
      if (auto a = env::extract_answer(text)) answer = *a;
  return answer;
}

Prediction from_trajectory(const data::QaRecord& record, const std::string& dataset,
                           const env::pb::Trajectory& t) {
  std::vector<std::pair<std::string, bool>> segments;
  for (const auto& s : t.segments()) segments.emplace_back(s.text(), s.trained());
  Prediction p = make_prediction(record, dataset, policy_answer(segments));
  p.searches = t.num_searches();
  for (const auto& turn : t.turns())
    if (turn.action() == "search") p.queries.push_back(turn.query());
  for (const auto& s : t.segments()) p.trajectory += s.text();
  p.end_reason = t.end_reason();
  p.error = t.error();
  return p;
}

nlohmann::ordered_json to_json(const Prediction& p) {
  nlohmann::ordered_json j;
  j["id"] = p.id;
  j["dataset"] = p.dataset;
  j["question"] = p.question;
  j["golden_answers"] = p.golden_answers;
  j["prediction"] = p.prediction;
  j["em"] = p.em;
  j["f1"] = p.f1;
  j["cover_em"] = p.cover_em;
  j["searches"] = p.searches;
  j["queries"] = p.queries;
  if (p.hops) j["hops"] = *p.hops;
  if (!p.type.empty()) j["type"] = p.type;
  j["end_reason"] = p.end_reason;
  if (!p.error.empty()) j["error"] = p.error;
  j["trajectory"] = p.trajectory;
  return j;
}

}  // namespace strata::eval
