// One search step of an Episode through the retrieval client: the one place that turns the
// episode's pending query into a retrieval::RetrieveRequest, sends it, and feeds the documents
// (or the failure) back into the Episode. The rollout engine (rl/rollout.cpp), the warm start's
// demonstrator (rl/warm_start.cpp) and the endpoint agent (eval/endpoint_agent.cpp) all use it.
//
//   blocking:  const SearchOutcome o = run_search(ep, client);
//   async:     send_search(ep, client, [&](retrieval::RetrieveResult r) { post(r); });
//              ... later, on the thread that owns ep:  feed_search_result(ep, r);
//   batched:   results = retrieve_pending(episodes, client);   // one request, one result each
//              feed_search_result(*episodes[k], results[k]);
//
// A request asks for the episode's own options().topk documents without scores. A failed
// request (after the client's retries) or an empty answer ends the episode as
// kRetrievalFailed, with the client's error or "empty result" as its error(): such a trajectory
// is kept out of the loss and counted by the rollout metrics. The Episode stays free of the
// client (search_env.h includes no transport); this file joins the two.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "env/search_env.h"
#include "retrieval/client.h"

namespace strata::env {

// What feeding one search result did.
struct SearchOutcome {
  bool ok = false;                  // documents arrived and were appended as an observation
  std::vector<RetrievedDoc> docs;   // those documents (when ok)
  std::string error;                // why not (when !ok): the client's error or "empty result"
  double ms = 0;                    // latency, retries included
  int attempts = 0;                 // attempts the client made
};

// The request for the episode's pending search: {pending_query()}, options().topk, no scores.
// The episode must be awaiting retrieval.
retrieval::RetrieveRequest search_request(const Episode& ep);

// Feeds a result whose first list answers the episode's pending search: on_retrieval with its
// documents, or on_retrieval_failed when the request failed or came back empty.
SearchOutcome feed_search_result(Episode& ep, const retrieval::RetrieveResult& r);

// Blocking: sends the pending search and feeds the result back.
SearchOutcome run_search(Episode& ep, retrieval::RetrievalClient& client);

// Async: sends the pending search; `on_done` gets the result exactly once, on the client's
// worker thread (keep it short). The Episode is not touched: the caller feeds the result back
// with feed_search_result on the thread that owns the episode.
void send_search(const Episode& ep, retrieval::RetrievalClient& client,
                 retrieval::RetrievalClient::Callback on_done);

// Blocking and batched (Search-R1's synchronous turn): one request with the pending queries of
// `episodes` (all with the same topk), split into one result per episode, in order; nothing is
// fed back. Each result carries the request's ok, error, attempts and seconds.
std::vector<retrieval::RetrieveResult> retrieve_pending(const std::vector<const Episode*>& episodes,
                                                        retrieval::RetrievalClient& client);

}  // namespace strata::env
