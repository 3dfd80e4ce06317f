// The seam between the retrieval daemon and what it searches.
//
// The HTTP server (retrieval/server.*) only sees this interface; the BM25 index
// (retrieval/bm25_*.{h,cpp}), the dense searcher (retrieval/dense/) and the hybrid fusion of two
// searchers (retrieval/hybrid_searcher.h) implement it. Implementations must be safe to call from many
// threads at once (search() is const and keeps per-call state on the stack or in a
// thread_local scratch).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace strata::retrieval {

// A searcher that queues work (the dense searcher's query batcher) throws this when its queue is
// full; the daemon answers 503 with Retry-After, as for its own request queue.
class OverloadedError : public Error {
 public:
  using Error::Error;
};

struct Hit {
  uint32_t doc = 0;   // internal document number, 0..num_docs()-1
  float score = 0;    // BM25, inner-product or fused score (higher is better)
};

struct DocumentView {
  std::string_view id;        // the corpus id ("0", "12345", ...)
  std::string_view contents;  // Search-R1 contents: "\"Title\"\ntext"
};

class Searcher {
 public:
  virtual ~Searcher() = default;
  // Top-k hits for one query, best first; ties broken by smaller doc number. Fewer than k hits
  // when fewer documents match; an empty or all-stop-word query returns no hits.
  virtual std::vector<Hit> search(std::string_view query, int k) const = 0;
  // Queries evaluated in parallel over `threads` workers (0 = all cores) by calling search();
  // result i is query i. The first exception a worker meets stops the others and is rethrown
  // here, on the caller's thread. One implementation for every searcher (searcher.cpp).
  // Virtual so that a searcher that batches internally (the dense searcher: one encoder call)
  // takes a whole request at once.
  virtual std::vector<std::vector<Hit>> search_batch(const std::vector<std::string>& queries,
                                                     int k, int threads) const;
  virtual DocumentView document(uint32_t doc) const = 0;
  virtual uint32_t num_docs() const = 0;
  // Extra Prometheus lines for GET /metrics (encoder time, batch sizes, ...); "" by default.
  virtual std::string metrics_text() const { return {}; }
};

}  // namespace strata::retrieval
