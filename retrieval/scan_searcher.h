// A brute-force Searcher over passages held in memory: every query scans every passage and
// scores it by how many distinct query words it contains (case-folded ASCII alphanumerics).
//
// This is a fallback and a test double, not a ranking model: it lets the daemon run from a
// corpus JSONL when no BM25 index has been built (retrieval_server --scan-corpus FILE), and
// tests use it as a small known searcher. Cost is O(passages x words) per query.
#pragma once

#include <string>
#include <vector>

#include "retrieval/searcher.h"

namespace strata::retrieval {

class ScanSearcher : public Searcher {
 public:
  struct Passage {
    std::string id;
    std::string contents;
  };
  explicit ScanSearcher(std::vector<Passage> passages);
  // Loads a Search-R1 JSONL corpus (see data/corpus.h); throws strata::Error on a bad file.
  static ScanSearcher from_jsonl(const std::string& path);

  std::vector<Hit> search(std::string_view query, int k) const override;
  DocumentView document(uint32_t doc) const override;
  uint32_t num_docs() const override { return static_cast<uint32_t>(passages_.size()); }

  // Lower-cased ASCII alphanumeric words of `text`, deduplicated and sorted.
  static std::vector<std::string> words(std::string_view text);

 private:
  std::vector<Passage> passages_;
  std::vector<std::vector<std::string>> words_;  // words(contents) per passage
};

}  // namespace strata::retrieval
