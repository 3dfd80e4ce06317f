// Boost.Asio glue for RetrievalClient: the completion handler runs on an Asio executor (an
// io_context, a strand) instead of the client's curl worker thread.
//
//   async_retrieve_on(client, req, strand, [](RetrieveResult r) { ...runs on the strand... });
//
// The handler must be copyable (it is kept in a std::function). Back-pressure is unchanged: the
// call blocks while the client has max_in_flight requests outstanding, so call it from a thread
// that may block (not from the executor's only thread when the client is saturated).
#pragma once

#include <boost/asio/post.hpp>

#include <utility>

#include "retrieval/client.h"

namespace strata::retrieval {

template <class Executor, class Handler>
void async_retrieve_on(RetrievalClient& client, RetrieveRequest req, Executor ex,
                       Handler handler) {
  client.async_retrieve(std::move(req), [ex, handler](RetrieveResult r) {
    boost::asio::post(ex, [handler, r = std::move(r)]() mutable { handler(std::move(r)); });
  });
}

}  // namespace strata::retrieval
