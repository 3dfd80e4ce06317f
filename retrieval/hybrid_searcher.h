// Hybrid search: reciprocal-rank fusion (Cormack et al., 2009) of a lexical (BM25) and a dense
// ranking over the same corpus.
//
// Each searcher returns its top `depth` hits; a document's fused score is
//   (1 - dense_weight) / (rrf_k + rank_bm25) + dense_weight / (rrf_k + rank_dense)
// with ranks from 1 and a missing rank contributing nothing; ties go to the smaller document
// number. Both searchers must index the same passages in the same order (checked at
// construction: the counts and a sample of ids).
#pragma once

#include "retrieval/searcher.h"

namespace strata::retrieval {

struct HybridOptions {
  double rrf_k = 60;          // the rank offset of RRF (60 in the original paper)
  double dense_weight = 0.5;  // 0 = BM25 only, 1 = dense only
  int depth = 50;             // hits taken from each searcher before fusing (>= the request's k)
};

// Throws strata::Error naming the bad option.
void validate(const HybridOptions& options);

class HybridSearcher final : public Searcher {
 public:
  // Both searchers must outlive this one.
  HybridSearcher(const Searcher& bm25, const Searcher& dense, HybridOptions options);

  std::vector<Hit> search(std::string_view query, int k) const override;
  // The dense side takes the whole batch at once (one encoder call), the BM25 side runs on
  // `threads` workers.
  std::vector<std::vector<Hit>> search_batch(const std::vector<std::string>& queries, int k,
                                             int threads) const override;
  DocumentView document(uint32_t doc) const override { return bm25_.document(doc); }
  uint32_t num_docs() const override { return bm25_.num_docs(); }
  std::string metrics_text() const override { return dense_.metrics_text(); }

  // The fusion itself, for tests: two rankings (best first) into the top k.
  static std::vector<Hit> fuse(const std::vector<Hit>& bm25, const std::vector<Hit>& dense,
                               const HybridOptions& options, int k);

 private:
  const Searcher& bm25_;
  const Searcher& dense_;
  HybridOptions opt_;
};

}  // namespace strata::retrieval
