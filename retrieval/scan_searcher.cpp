#include "retrieval/scan_searcher.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "data/corpus.h"

namespace strata::retrieval {

ScanSearcher::ScanSearcher(std::vector<Passage> passages) : passages_(std::move(passages)) {
  words_.reserve(passages_.size());
  for (const auto& p : passages_) words_.push_back(words(p.contents));
}

ScanSearcher ScanSearcher::from_jsonl(const std::string& path) {
  data::CorpusReader reader(path);
  data::Passage p;
  std::vector<Passage> passages;
  while (reader.next(p)) passages.push_back({p.id, p.contents});
  STRATA_CHECK(!passages.empty(), "corpus " << path << " holds no passages");
  return ScanSearcher(std::move(passages));
}

std::vector<std::string> ScanSearcher::words(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) && c < 0x80) {
      cur.push_back(static_cast<char>(std::tolower(c)));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<Hit> ScanSearcher::search(std::string_view query, int k) const {
  const auto q = words(query);
  std::vector<Hit> hits;
  if (q.empty() || k <= 0) return hits;
  for (uint32_t d = 0; d < passages_.size(); ++d) {
    const auto& w = words_[d];
    int matched = 0;
    for (const auto& term : q) matched += std::binary_search(w.begin(), w.end(), term) ? 1 : 0;
    if (matched > 0) hits.push_back({d, static_cast<float>(matched)});
  }
  auto better = [](const Hit& a, const Hit& b) {
    return a.score != b.score ? a.score > b.score : a.doc < b.doc;
  };
  const size_t keep = std::min(hits.size(), static_cast<size_t>(k));
  std::partial_sort(hits.begin(), hits.begin() + keep, hits.end(), better);
  hits.resize(keep);
  return hits;
}

DocumentView ScanSearcher::document(uint32_t doc) const {
  STRATA_ASSERT(doc < passages_.size(), "document " << doc << " out of range");
  return {passages_[doc].id, passages_[doc].contents};
}

}  // namespace strata::retrieval
