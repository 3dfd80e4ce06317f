#include "env/search_env.h"

#include "core/error.h"
#include "env/answer_match.h"
#include "retrieval/protocol.h"

namespace strata::env {

void SearchEnvOptions::validate() const {
  STRATA_CHECK(max_turns >= 1, "env.max_turns: expected >= 1, got " << max_turns);
  STRATA_CHECK(max_turn_tokens >= 1, "env.max_turn_tokens: expected >= 1, got " << max_turn_tokens);
  STRATA_CHECK(max_obs_tokens >= 1, "env.max_obs_tokens: expected >= 1, got " << max_obs_tokens);
  STRATA_CHECK(max_response_tokens >= max_turn_tokens,
               "env.max_response_tokens (" << max_response_tokens
                                           << ") must be at least env.max_turn_tokens ("
                                           << max_turn_tokens << ")");
  STRATA_CHECK(topk >= 1 && topk <= retrieval::kMaxTopk,
               "env.topk: expected 1.." << retrieval::kMaxTopk << ", got " << topk);
  STRATA_CHECK(prompt_template.find("{question}") != std::string::npos,
               "env.prompt_template must contain the placeholder {question}");
  reward.validate();
}

const char* end_reason_name(EndReason r) {
  switch (r) {
    case EndReason::kNone: return "running";
    case EndReason::kAnswered: return "answered";
    case EndReason::kMaxTurns: return "max_turns";
    case EndReason::kMaxResponseTokens: return "max_response_tokens";
    case EndReason::kRetrievalFailed: return "retrieval_failed";
  }
  return "?";
}

std::string format_information(const std::vector<RetrievedDoc>& docs) {
  std::string out = "\n\n<information>";
  for (size_t i = 0; i < docs.size(); ++i) {
    const std::string& c = docs[i].contents;
    const auto nl = c.find('\n');
    const std::string title = nl == std::string::npos ? c : c.substr(0, nl);
    const std::string text = nl == std::string::npos ? "" : c.substr(nl + 1);
    out += "Doc " + std::to_string(i + 1) + "(Title: " + title + ") " + text + "\n";
  }
  out += "</information>\n\n";
  return out;
}

namespace {
std::string trim(std::string_view s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return "";
  const auto b = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(a, b - a + 1));
}
}  // namespace

Action parse_action(std::string_view text) {
  const size_t search_end = text.find("</search>");
  const size_t answer_end = text.find("</answer>");
  Action a;
  if (search_end == std::string_view::npos && answer_end == std::string_view::npos) return a;
  const bool is_search = search_end < answer_end;
  const size_t end = is_search ? search_end : answer_end;
  const std::string_view open = is_search ? "<search>" : "<answer>";
  const size_t start = text.rfind(open, end);
  if (start == std::string_view::npos) return a;  // a closing tag without its opening
  a.payload = trim(text.substr(start + open.size(), end - start - open.size()));
  a.kind = is_search ? Action::kSearch : Action::kAnswer;
  if (a.kind == Action::kSearch && a.payload.empty()) a.kind = Action::kInvalid;
  return a;
}

Episode::Episode(const SearchEnvOptions& opts, data::QaRecord question, EncodeFn encode,
                 DecodeFn decode)
    : opts_(opts), question_(std::move(question)), encode_(std::move(encode)), decode_(std::move(decode)) {
  opts_.validate();
  prompt_ = opts_.prompt_template;
  const auto at = prompt_.find("{question}");
  prompt_.replace(at, 10, question_.question);
}

void Episode::append(const std::vector<int32_t>& ids, const std::vector<float>* lps, bool trained) {
  if (ids.empty()) return;
  if (segment_starts_.empty() || segment_starts_.back().second != trained)
    segment_starts_.push_back({response_ids_.size(), trained});
  for (size_t i = 0; i < ids.size(); ++i) {
    response_ids_.push_back(ids[i]);
    loss_mask_.push_back(trained ? 1 : 0);
    logprobs_.push_back(lps != nullptr ? (*lps)[i] : 0.0f);
  }
  if (!trained) pending_obs_.insert(pending_obs_.end(), ids.begin(), ids.end());
}

bool Episode::over_budget() const {
  return static_cast<int>(response_ids_.size()) >= opts_.max_response_tokens;
}

Episode::Step Episode::on_generation(const std::vector<int32_t>& ids,
                                     const std::vector<float>& logprobs, TurnFinish finish_kind) {
  STRATA_ASSERT(!done(), "on_generation after the episode ended");
  STRATA_ASSERT(!awaiting_retrieval_, "on_generation while a search is pending");
  STRATA_ASSERT(ids.size() == logprobs.size(),
                "ids and logprobs differ in length: " << ids.size() << " vs " << logprobs.size());
  append(ids, &logprobs, /*trained=*/true);
  TurnRecord turn;
  turn.generated_tokens = static_cast<int>(ids.size());
  const Action action = parse_action(decode_(ids));
  turn.action = action.kind;
  if (action.kind == Action::kSearch) turn.query = action.payload;
  turns_.push_back(turn);
  const bool last_turn = static_cast<int>(turns_.size()) >= opts_.max_turns;
  (void)finish_kind;  // EOS or a token limit without an action is simply an invalid turn

  if (action.kind == Action::kAnswer) {
    finish(EndReason::kAnswered);
    return {};
  }
  if (over_budget()) {
    finish(EndReason::kMaxResponseTokens);
    return {};
  }
  if (last_turn) {
    finish(EndReason::kMaxTurns);  // no turn left to use a search result or feedback
    return {};
  }
  if (action.kind == Action::kSearch) {
    awaiting_retrieval_ = true;
    ++num_searches_;
    return {StepKind::kSearch, action.payload};
  }
  const auto fb = encode_(opts_.invalid_feedback);
  append(fb, nullptr, /*trained=*/false);
  turns_.back().observation_tokens = static_cast<int>(fb.size());
  if (over_budget()) {
    finish(EndReason::kMaxResponseTokens);
    return {};
  }
  return {StepKind::kContinue, ""};
}

void Episode::on_retrieval(const std::vector<RetrievedDoc>& docs, double ms, int attempts) {
  STRATA_ASSERT(awaiting_retrieval_, "on_retrieval without a pending search");
  awaiting_retrieval_ = false;
  TurnRecord& turn = turns_.back();
  turn.retrieval_ms = ms;
  turn.retrieval_attempts = attempts;
  for (const auto& d : docs) {
    turn.doc_ids.push_back(d.id);
    if (!gold_retrieved_ && cover_exact_match(d.contents, question_.golden_answers) > 0)
      gold_retrieved_ = true;
  }
  // Encode the tags and the documents apart so the cut never removes </information>.
  const std::string full = format_information(docs);
  const std::string head = "\n\n<information>";
  const std::string tail = "</information>\n\n";
  const std::string body = full.substr(head.size(), full.size() - head.size() - tail.size());
  auto body_ids = encode_(body);
  if (static_cast<int>(body_ids.size()) > opts_.max_obs_tokens) {
    body_ids.resize(opts_.max_obs_tokens);
    turn.observation_truncated = true;
  }
  std::vector<int32_t> obs = encode_(head);
  obs.insert(obs.end(), body_ids.begin(), body_ids.end());
  const auto tail_ids = encode_(tail);
  obs.insert(obs.end(), tail_ids.begin(), tail_ids.end());
  append(obs, nullptr, /*trained=*/false);
  turn.observation_tokens = static_cast<int>(obs.size());
  if (over_budget()) finish(EndReason::kMaxResponseTokens);
}

void Episode::on_retrieval_failed(const std::string& why, double ms, int attempts) {
  STRATA_ASSERT(awaiting_retrieval_, "on_retrieval_failed without a pending search");
  awaiting_retrieval_ = false;
  turns_.back().retrieval_ms = ms;
  turns_.back().retrieval_attempts = attempts;
  error_ = why;
  finish(EndReason::kRetrievalFailed);
}

const std::string& Episode::pending_query() const {
  static const std::string kNone;
  return awaiting_retrieval_ ? turns_.back().query : kNone;
}

std::vector<int32_t> Episode::take_pending_observation() {
  std::vector<int32_t> out;
  out.swap(pending_obs_);
  return out;
}

std::vector<std::pair<std::string, bool>> Episode::segments() const {
  std::vector<std::pair<std::string, bool>> out;
  for (size_t s = 0; s < segment_starts_.size(); ++s) {
    const size_t begin = segment_starts_[s].first;
    const size_t end = s + 1 < segment_starts_.size() ? segment_starts_[s + 1].first : response_ids_.size();
    std::vector<int32_t> ids(response_ids_.begin() + begin, response_ids_.begin() + end);
    out.push_back({decode_(ids), segment_starts_[s].second});
  }
  return out;
}

std::string Episode::response_text() const {
  std::string out;
  for (const auto& [text, trained] : segments()) out += text;
  return out;
}

RewardResult Episode::score() const {
  // The answer is looked for in the policy's own text only: retrieved documents and the invalid-
  // action feedback (which itself mentions <answer> and </answer>) are not the agent's answer.
  std::string all, own;
  for (const auto& [text, trained] : segments()) {
    all += text;
    if (trained) own += text;
  }
  return score_response(all, question_.golden_answers, opts_.reward, own);
}

}  // namespace strata::env
