// The Search-R1 agent loop with the policy behind an OpenAI-compatible chat endpoint.
//
// env::Episode drives the protocol exactly as in training (same prompt text, same action
// parsing, limits and <information> formatting); the model's turns come from POSTs to
// {endpoint}/v1/chat/completions with stop ["</search>", "</answer>"], and searches go to the
// retrieval daemon. Per question:
//
//   messages = [user: <the env prompt with the question>]
//   loop: reply = chat(messages)                  (max_tokens = env.max_turn_tokens)
//         text  = reply + the stop string the server dropped
//         messages += [assistant: text]
//         search  -> the documents as "<information>Doc 1(Title: …) …</information>"
//                    in the next user message
//         invalid -> the env's feedback text in the next user message
//         answer, or a limit -> done
//
// Observations go back as user messages (not as a continued assistant prefix) because that is
// the one form every OpenAI-compatible server accepts; continuing an assistant message needs
// server-specific extensions. Token limits other than max_turn_tokens (max_obs_tokens,
// max_response_tokens) count words here (eval/text_codec.h), since the server's tokenizer is
// not at hand.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/qa.h"
#include "env/search_env.h"
#include "eval/chat_client.h"
#include "eval/prediction.h"
#include "retrieval/client.h"

namespace strata::eval {

struct EndpointAgentOptions {
  env::SearchEnvOptions env;  // protocol, turns, limits, topk (same meaning as in training)
  double temperature = 0;     // 0 = greedy
  double top_p = 1;           // nucleus sampling (1 = off)
  uint64_t seed = 1;          // sent with each request when temperature > 0
  int parallel = 4;           // questions in flight at once

  void validate() const;  // throws strata::Error naming the bad field
};

// The assistant text of a turn with the stop string the server dropped put back: the server's
// stop_reason when it names one, else the closing tag of the last unclosed <search> or <answer>
// when the turn ended on a stop (finish_reason "stop"); text that already ends with a closing
// tag is kept as is.
std::string restore_stop(const ChatResponse& r);

// Runs one question to the end. Throws EndpointError when the endpoint fails for good; a failed
// search ends the trajectory (end_reason "retrieval_failed", counted wrong) as in training.
Prediction run_endpoint_question(const ChatClient& chat, retrieval::RetrievalClient& search,
                                 const data::QaRecord& record, const std::string& dataset,
                                 const EndpointAgentOptions& opts, uint64_t seed);

// Every record, opts.parallel at a time. Returns the predictions in record order and calls
// `on_done` for each in record order too (as soon as it and all before it are finished; under a
// lock, from a worker thread). The first EndpointError stops the run and is rethrown.
std::vector<Prediction> run_endpoint_agent(
    const ChatClient& chat, retrieval::RetrievalClient& search,
    const std::vector<data::QaRecord>& records, const std::string& dataset,
    const EndpointAgentOptions& opts, const std::function<void(const Prediction&)>& on_done = {});

}  // namespace strata::eval
