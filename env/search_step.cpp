#include "env/search_step.h"

#include <utility>

#include "core/error.h"

namespace strata::env {

retrieval::RetrieveRequest search_request(const Episode& ep) {
  STRATA_ASSERT(ep.awaiting_retrieval(), "search_request without a pending search");
  retrieval::RetrieveRequest req;
  req.queries = {ep.pending_query()};
  req.topk = ep.options().topk;
  req.return_scores = false;
  return req;
}

SearchOutcome feed_search_result(Episode& ep, const retrieval::RetrieveResult& r) {
  SearchOutcome out;
  out.ms = r.seconds * 1e3;
  out.attempts = r.attempts;
  if (r.ok && !r.results.empty()) {
    out.ok = true;
    out.docs.reserve(r.results[0].size());
    for (const auto& d : r.results[0]) out.docs.push_back({d.id, d.contents});
    ep.on_retrieval(out.docs, out.ms, out.attempts);
  } else {
    out.error = r.ok ? "empty result" : r.error;
    ep.on_retrieval_failed(out.error, out.ms, out.attempts);
  }
  return out;
}

SearchOutcome run_search(Episode& ep, retrieval::RetrievalClient& client) {
  return feed_search_result(ep, client.retrieve(search_request(ep)));
}

void send_search(const Episode& ep, retrieval::RetrievalClient& client,
                 retrieval::RetrievalClient::Callback on_done) {
  client.async_retrieve(search_request(ep), std::move(on_done));
}

std::vector<retrieval::RetrieveResult> retrieve_pending(const std::vector<const Episode*>& episodes,
                                                        retrieval::RetrievalClient& client) {
  std::vector<retrieval::RetrieveResult> out(episodes.size());
  if (episodes.empty()) return out;
  retrieval::RetrieveRequest req;
  req.topk = episodes[0]->options().topk;
  for (const Episode* ep : episodes) {
    STRATA_ASSERT(ep->awaiting_retrieval(), "retrieve_pending: an episode has no pending search");
    STRATA_ASSERT(ep->options().topk == req.topk, "retrieve_pending: episodes differ in topk");
    req.queries.push_back(ep->pending_query());
  }
  const auto r = client.retrieve(std::move(req));
  for (size_t k = 0; k < episodes.size(); ++k) {
    out[k].ok = r.ok;
    out[k].error = r.error;
    out[k].attempts = r.attempts;
    out[k].http_status = r.http_status;
    out[k].seconds = r.seconds;
    if (r.ok && k < r.results.size()) out[k].results = {r.results[k]};
  }
  return out;
}

}  // namespace strata::env
