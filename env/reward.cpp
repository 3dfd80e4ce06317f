#include "env/reward.h"

#include <cmath>

#include "core/error.h"
#include "env/answer_match.h"

namespace strata::env {

void RewardOptions::validate() const {
  STRATA_CHECK(name == "em" || name == "f1" || name == "cover_em" || name == "format_em",
               "reward.name: expected em, f1, cover_em or format_em, got \"" << name << "\"");
  for (double v : {correct_invalid, wrong_valid, wrong_invalid})
    STRATA_CHECK(std::isfinite(v), "reward: format_em values must be finite numbers");
}

RewardResult score_response(std::string_view response, const std::vector<std::string>& golds,
                            const RewardOptions& opts) {
  return score_response(response, golds, opts, response);
}

RewardResult score_response(std::string_view response, const std::vector<std::string>& golds,
                            const RewardOptions& opts, std::string_view answer_source) {
  RewardResult r;
  const auto answer = extract_answer(answer_source);
  r.has_answer = answer.has_value();
  r.format_valid = valid_format(response);
  if (r.has_answer) {
    r.answer = *answer;
    r.em = exact_match(r.answer, golds);
    r.f1 = f1_score(r.answer, golds);
    r.cover_em = cover_exact_match(r.answer, golds);
  }
  if (opts.name == "em") {
    r.reward = r.em;
  } else if (opts.name == "f1") {
    r.reward = r.f1;
  } else if (opts.name == "cover_em") {
    r.reward = r.cover_em;
  } else if (opts.name == "format_em") {
    if (r.em > 0) {
      r.reward = r.format_valid ? 1.0 : opts.correct_invalid;
    } else if (r.format_valid) {
      r.reward = opts.wrong_valid;
    } else {
      r.reward = r.has_answer ? opts.wrong_invalid : 0.0;
    }
  } else {
    STRATA_FAIL("reward.name: unknown reward \"" << opts.name << "\"");
  }
  return r;
}

}  // namespace strata::env
