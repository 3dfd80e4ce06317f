// The search environment: Search-R1's protocol as a per-trajectory state machine.
//
// The rollout engine drives one Episode per trajectory:
//
//   Episode ep(opts, record, encode, decode);
//   prompt = ep.prompt_text();                       // user message; the engine formats it
//   loop:
//     (ids, logprobs) = policy generates until </search>, </answer>, EOS or max_turn_tokens
//     Step s = ep.on_generation(ids, logprobs, finish);
//     s.kind == kSearch:   docs = retrieve(s.query); ep.on_retrieval(docs, ms, attempts)
//                          (or ep.on_retrieval_failed(why)), then generate again;
//                          env/search_step.h does this step through the retrieval client
//     s.kind == kContinue: the episode appended feedback tokens (ep.pending_observation());
//                          generate again
//     s.kind == kDone:     finished; ep.end_reason() says why
//
// The environment never sees the model: token ids come in, token ids of observations go out
// through the `encode` function it was given. Observation tokens (retrieved documents,
// invalid-action feedback) are masked out of the loss.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "data/qa.h"
#include "env/reward.h"
#include "retrieval/protocol.h"

namespace strata::env {

struct SearchEnvOptions {
  int max_turns = 4;            // generation turns per trajectory; a search or invalid turn counts
  int max_turn_tokens = 500;    // new tokens per turn (the engine's max_new_tokens)
  int max_obs_tokens = 500;     // retrieved text per observation is cut to this many tokens
  int max_response_tokens = 4096;  // policy + observation tokens per trajectory
  int topk = retrieval::kDefaultTopk;  // documents per search (Search-R1's 3)
  // The instruction; {question} is replaced by the question. Our wording of Search-R1's.
  std::string prompt_template =
      "Answer the question below. Think step by step inside <think> and </think> whenever you "
      "get new information. If you are missing knowledge, search for it by writing "
      "<search> your query </search>; the top results will be shown to you between "
      "<information> and </information>. You may search as often as you need. When you know "
      "the answer, give it inside <answer> and </answer> with no explanation, for example "
      "<answer> Port Walonei </answer>. Question: {question}\n";
  // Appended (masked) after a turn that neither searches nor answers. Our wording.
  std::string invalid_feedback =
      "\nMy last step was not a valid action. To search I must write the query between "
      "<search> and </search>; to answer I must write it between <answer> and </answer>. "
      "I will try again.\n";
  RewardOptions reward;          // how the finished trajectory is scored

  void validate() const;         // throws strata::Error naming the bad field
  template <class V>
  void visit(V& v) {
    v("max_turns", max_turns, "generation turns per trajectory");
    v("max_turn_tokens", max_turn_tokens, "new tokens per turn");
    v("max_obs_tokens", max_obs_tokens, "tokens of retrieved text per observation");
    v("max_response_tokens", max_response_tokens, "policy + observation tokens per trajectory");
    v("topk", topk, "documents per search");
    v("prompt_template", prompt_template, "instruction with a {question} placeholder");
    v("invalid_feedback", invalid_feedback, "text appended after an invalid turn");
    v("reward", reward, "reward function");
  }
};

enum class EndReason {
  kNone,              // still running
  kAnswered,          // produced </answer>
  kMaxTurns,          // used every turn without answering
  kMaxResponseTokens, // hit max_response_tokens
  kRetrievalFailed,   // a search failed after the client's retries (kept out of the loss)
};
const char* end_reason_name(EndReason r);  // "answered", "max_turns", ...

// How the engine's generation of one turn ended.
enum class TurnFinish { kStopSequence, kEos, kMaxTokens };

struct RetrievedDoc {
  std::string id;
  std::string contents;  // Search-R1 contents: "\"Title\"\ntext"
};

// Search-R1's observation: "\n\n<information>Doc 1(Title: <first line>) <rest>\n...</information>\n\n".
std::string format_information(const std::vector<RetrievedDoc>& docs);

struct Action {
  enum Kind { kSearch, kAnswer, kInvalid } kind = kInvalid;
  std::string payload;  // the query or the answer, trimmed
};
// Reads the action that ends a turn's text: the first complete <search>…</search> or
// <answer>…</answer>, whichever closes first; an empty query is invalid.
Action parse_action(std::string_view turn_text);

struct TurnRecord {
  int generated_tokens = 0;
  Action::Kind action = Action::kInvalid;
  std::string query;
  std::vector<std::string> doc_ids;
  double retrieval_ms = 0;
  int retrieval_attempts = 0;
  int observation_tokens = 0;
  bool observation_truncated = false;
};

using EncodeFn = std::function<std::vector<int32_t>(std::string_view)>;
using DecodeFn = std::function<std::string(const std::vector<int32_t>&)>;

class Episode {
 public:
  enum class StepKind { kSearch, kContinue, kDone };
  struct Step {
    StepKind kind = StepKind::kDone;
    std::string query;  // for kSearch
  };

  Episode(const SearchEnvOptions& opts, data::QaRecord question, EncodeFn encode, DecodeFn decode);

  const std::string& prompt_text() const { return prompt_; }
  // Feeds the tokens the policy generated in this turn; logprobs[i] belongs to ids[i].
  Step on_generation(const std::vector<int32_t>& ids, const std::vector<float>& logprobs,
                     TurnFinish finish);
  // The documents of the pending search arrived (appended as a masked observation).
  void on_retrieval(const std::vector<RetrievedDoc>& docs, double ms, int attempts);
  // The pending search failed for good: the episode ends as kRetrievalFailed with `why`.
  void on_retrieval_failed(const std::string& why, double ms, int attempts);
  // The engine cannot continue the sequence (its context is full): ends as kMaxResponseTokens.
  void stop_for_length() { finish(EndReason::kMaxResponseTokens); }

  // Whether a search is pending: on_generation returned kSearch and no result came back yet.
  bool awaiting_retrieval() const { return awaiting_retrieval_; }
  // The pending search's query; empty when none is pending (env/search_step.h sends it).
  const std::string& pending_query() const;
  const SearchEnvOptions& options() const { return opts_; }

  bool done() const { return end_ != EndReason::kNone; }
  EndReason end_reason() const { return end_; }
  const std::string& error() const { return error_; }
  // Observation tokens appended since the last call (what the engine must feed to the model
  // before generating again); clears the pending list.
  std::vector<int32_t> take_pending_observation();

  // Response so far: policy and observation tokens, with the loss mask and behaviour log-probs.
  const std::vector<int32_t>& response_ids() const { return response_ids_; }
  const std::vector<int32_t>& loss_mask() const { return loss_mask_; }
  const std::vector<float>& logprobs() const { return logprobs_; }
  const std::vector<TurnRecord>& turns() const { return turns_; }
  int num_searches() const { return num_searches_; }
  // Whether some retrieved document contained a gold answer (normalised, whole words).
  bool gold_retrieved() const { return gold_retrieved_; }
  const data::QaRecord& question() const { return question_; }
  // The full response text (policy and observations), decoded segment by segment.
  std::string response_text() const;
  // (text, trained) stretches of the response, for display.
  std::vector<std::pair<std::string, bool>> segments() const;
  // Reward of the finished trajectory (the policy's text only is scored).
  RewardResult score() const;

 private:
  void append(const std::vector<int32_t>& ids, const std::vector<float>* logprobs, bool trained);
  void finish(EndReason r) { end_ = r; }
  bool over_budget() const;

  SearchEnvOptions opts_;
  data::QaRecord question_;
  EncodeFn encode_;
  DecodeFn decode_;
  std::string prompt_;
  std::vector<int32_t> response_ids_;
  std::vector<int32_t> loss_mask_;
  std::vector<float> logprobs_;
  std::vector<int32_t> pending_obs_;
  std::vector<std::pair<size_t, bool>> segment_starts_;  // (first index, trained)
  std::vector<TurnRecord> turns_;
  int num_searches_ = 0;
  bool awaiting_retrieval_ = false;
  bool gold_retrieved_ = false;
  EndReason end_ = EndReason::kNone;
  std::string error_;
};

}  // namespace strata::env
