#include "retrieval/hybrid_searcher.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"

namespace strata::retrieval {

void validate(const HybridOptions& o) {
  STRATA_CHECK(o.rrf_k >= 0, "rrf_k must be >= 0, got " << o.rrf_k);
  STRATA_CHECK(o.dense_weight >= 0 && o.dense_weight <= 1,
               "dense_weight must be in [0, 1], got " << o.dense_weight);
  STRATA_CHECK(o.depth >= 1, "depth must be >= 1, got " << o.depth);
}

HybridSearcher::HybridSearcher(const Searcher& bm25, const Searcher& dense, HybridOptions options)
    : bm25_(bm25), dense_(dense), opt_(options) {
  validate(opt_);
  const uint32_t n = bm25_.num_docs();
  STRATA_CHECK(n == dense_.num_docs(), "--hybrid: the BM25 index has "
                                           << n << " passages and the dense index "
                                           << dense_.num_docs()
                                           << "; both must be built from the same corpus");
  // Ids of up to ~1000 evenly spaced passages, the first and the last.
  const uint32_t step = std::max<uint32_t>(1, n / 1000);
  auto check_id = [&](uint32_t d) {
    STRATA_CHECK(bm25_.document(d).id == dense_.document(d).id,
                 "--hybrid: passage " << d << " is id '" << bm25_.document(d).id
                                      << "' in the BM25 index and '" << dense_.document(d).id
                                      << "' in the dense index; both must be built from the same "
                                         "corpus");
  };
  for (uint64_t d = 0; d < n; d += step) check_id(static_cast<uint32_t>(d));
  if (n > 0) check_id(n - 1);
}

std::vector<Hit> HybridSearcher::fuse(const std::vector<Hit>& bm25, const std::vector<Hit>& dense,
                                      const HybridOptions& o, int k) {
  std::unordered_map<uint32_t, double> score;
  score.reserve(bm25.size() + dense.size());
  for (size_t r = 0; r < bm25.size(); ++r)
    score[bm25[r].doc] += (1.0 - o.dense_weight) / (o.rrf_k + static_cast<double>(r + 1));
  for (size_t r = 0; r < dense.size(); ++r)
    score[dense[r].doc] += o.dense_weight / (o.rrf_k + static_cast<double>(r + 1));
  std::vector<std::pair<double, uint32_t>> all;
  all.reserve(score.size());
  for (const auto& [doc, s] : score)
    if (s > 0) all.emplace_back(s, doc);
  const size_t keep = std::min(all.size(), static_cast<size_t>(std::max(k, 0)));
  auto better = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(),
                    better);
  std::vector<Hit> out(keep);
  for (size_t i = 0; i < keep; ++i) out[i] = {all[i].second, static_cast<float>(all[i].first)};
  return out;
}

std::vector<Hit> HybridSearcher::search(std::string_view query, int k) const {
  const int depth = std::max(k, opt_.depth);
  return fuse(bm25_.search(query, depth), dense_.search(query, depth), opt_, k);
}

std::vector<std::vector<Hit>> HybridSearcher::search_batch(const std::vector<std::string>& queries,
                                                           int k, int threads) const {
  const int depth = std::max(k, opt_.depth);
  const auto lexical = bm25_.search_batch(queries, depth, threads);
  const auto dense = dense_.search_batch(queries, depth, threads);
  std::vector<std::vector<Hit>> out(queries.size());
  for (size_t i = 0; i < queries.size(); ++i) out[i] = fuse(lexical[i], dense[i], opt_, k);
  return out;
}

}  // namespace strata::retrieval
