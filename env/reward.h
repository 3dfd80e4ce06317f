// Rewards of a finished trajectory, chosen by name in the config:
//   "em"        exact match of the last <answer> against any gold answer (Search-R1's reward)
//   "f1"        token F1 of the answer
//   "cover_em"  1 when the answer contains a gold answer as a whole-word span
//   "format_em" Search-R1 v0.3-style format-aware EM: correct + valid format 1.0, correct +
//               invalid 0.8 (correct_invalid), wrong + valid 0.2 (wrong_valid), wrong + invalid
//               but an answer given 0.1 (wrong_invalid), no answer and invalid format 0.
// Every component is computed and recorded whichever one is the training reward.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace strata::env {

struct RewardOptions {
  std::string name = "em";        // em, f1, cover_em or format_em
  double correct_invalid = 0.8;   // format_em: right answer, protocol broken
  double wrong_valid = 0.2;       // format_em: wrong answer, protocol followed
  double wrong_invalid = 0.1;     // format_em: wrong answer, protocol broken, an answer given

  void validate() const;  // throws strata::Error naming the bad field
  template <class V>
  void visit(V& v) {
    v("name", name, "em, f1, cover_em or format_em");
    v("correct_invalid", correct_invalid, "format_em: reward for a right answer in broken format");
    v("wrong_valid", wrong_valid, "format_em: reward for a wrong answer in valid format");
    v("wrong_invalid", wrong_invalid, "format_em: reward for a wrong answer in broken format");
  }
};

struct RewardResult {
  double reward = 0;          // the configured reward
  double em = 0;              // exact match of the extracted answer
  double f1 = 0;
  double cover_em = 0;
  bool has_answer = false;    // a complete <answer> block was found
  bool format_valid = false;  // see valid_format()
  std::string answer;         // the extracted answer ("" when none)
};

// `answer_source`, when given, is where the <answer> is looked for: the policy's own text, so that
// an answer tag inside retrieved documents or the environment's feedback never counts. The format
// check always reads the whole response.
RewardResult score_response(std::string_view response, const std::vector<std::string>& golds,
                            const RewardOptions& opts, std::string_view answer_source);
RewardResult score_response(std::string_view response, const std::vector<std::string>& golds,
                            const RewardOptions& opts);

}  // namespace strata::env
