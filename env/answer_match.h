// Answer matching shared by rewards and evaluation: SQuAD/HotpotQA-style normalisation, exact
// match, token F1 and cover-EM, and extraction of the agent's final <answer>.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::env {

// SQuAD normalisation: lower-case (Unicode-aware), drop ASCII punctuation, drop the articles
// "a", "an", "the" as whole words, collapse whitespace runs to one space and trim.
std::string normalize_answer(std::string_view text);

// 1 if the normalised prediction equals any normalised gold answer, else 0.
double exact_match(std::string_view prediction, const std::vector<std::string>& golds);
// 1 if any normalised gold answer occurs in the normalised prediction as a whole-word span
// (the prediction "covers" it), else 0.
double cover_exact_match(std::string_view prediction, const std::vector<std::string>& golds);
// Best token-level F1 over the gold answers (SQuAD). As in HotpotQA's scorer, when either side
// normalises to "yes", "no" or "noanswer" and they differ, F1 is 0.
double f1_score(std::string_view prediction, const std::vector<std::string>& golds);

// The text inside the last <answer>...</answer> of a response (Search-R1 counts the last one),
// trimmed; nullopt when there is no complete answer block.
std::optional<std::string> extract_answer(std::string_view response);

// Whether a response follows the search protocol: a sequence of <think>, <search>,
// <information> and <answer> blocks with only whitespace between them, where every search is
// followed by its information block, no block is nested or left open, and exactly one answer
// ends the response. Transitions allowed: start -> think|search|answer, think -> search|answer,
// search -> information, information -> think|search|answer, answer -> end.
bool valid_format(std::string_view response);

}  // namespace strata::env
