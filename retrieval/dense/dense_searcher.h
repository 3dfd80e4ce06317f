// The dense searcher: a Searcher over a DenseIndex and an Embedder, so that the retrieval daemon
// serves dense search unchanged.
//
// Queries of concurrent requests are batched into one encoder call: callers (the daemon's search
// threads) put their queries on a bounded queue and wait; one batcher thread takes what is
// queued, waiting at most `max_wait_us` after the first query for the batch to fill up to
// `max_batch` queries, encodes them at once, searches the index with all the vectors, and hands
// each caller its lists. With more than `max_queue` queries waiting, search() throws
// OverloadedError at once (the daemon answers 503 with Retry-After).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "retrieval/dense/dense_index.h"
#include "retrieval/embedder.h"
#include "retrieval/searcher.h"

namespace strata::retrieval::dense {

struct BatchOptions {
  int max_batch = 64;      // queries per encoder call (a request with more goes alone)
  int max_wait_us = 1000;  // how long the first query of a batch waits for company
  int max_queue = 4096;    // queries waiting before new ones are refused
};

// Throws strata::Error naming the bad option.
void validate(const BatchOptions& options);

struct DenseStats {
  uint64_t batches = 0;          // encoder calls
  uint64_t queries = 0;          // queries encoded
  uint64_t largest_batch = 0;
  double encoder_seconds = 0;    // inside Embedder::embed
  double search_seconds = 0;     // inside the index search
  uint64_t overloaded = 0;       // queries refused with OverloadedError
};

class DenseSearcher final : public Searcher {
 public:
  // `index` and `embedder` must outlive the searcher. Throws strata::Error before any work when
  // the embedder's dimension differs from the index's.
  DenseSearcher(const DenseIndex& index, Embedder& embedder, BatchOptions options = {});
  ~DenseSearcher() override;

  std::vector<Hit> search(std::string_view query, int k) const override;
  std::vector<std::vector<Hit>> search_batch(const std::vector<std::string>& queries, int k,
                                             int threads) const override;
  DocumentView document(uint32_t doc) const override;
  uint32_t num_docs() const override;
  std::string metrics_text() const override;

  DenseStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::retrieval::dense
