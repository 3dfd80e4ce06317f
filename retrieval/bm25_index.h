// A BM25 index directory opened for search (built by retrieval/bm25_builder.h, layout in
// retrieval/bm25_format.h). Files are memory-mapped, not read: opening takes milliseconds and
// the OS page cache holds the data. All const methods are safe to call from many threads.
//
//   Bm25Index index("/data/wiki18_bm25");
//   for (const Hit& h : index.search("who wrote hamlet", 3))
//     std::cout << index.document(h.doc).id << " " << h.score << "\n";
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "retrieval/analyzer.h"
#include "retrieval/bm25_search.h"
#include "retrieval/searcher.h"

namespace strata::retrieval {

class Bm25Index final : public Searcher {
 public:
  // How much of the index is checked against the manifest's sizes and CRC-32s at open.
  enum class Verify {
    kFast,  // every file's size, and the checksums of the small files (dictionary, document
            // lengths and offsets): milliseconds per million documents
    kFull,  // also the checksums of postings.bin, impacts.bin and docs.bin (reads the whole
            // index once)
  };
  // Throws strata::Error naming the file when one is missing, truncated, damaged (checksum) or of
  // another format version, or when the manifest names an unknown stemmer.
  explicit Bm25Index(const std::string& dir, Verify verify = Verify::kFast);
  ~Bm25Index() override;

  std::vector<Hit> search(std::string_view query, int k) const override;
  DocumentView document(uint32_t doc) const override;
  uint32_t num_docs() const override;

  // The same results as search(), by scoring every posting of every query term (slow; for
  // tests and benchmarks).
  std::vector<Hit> search_exhaustive(std::string_view query, int k) const;

  // The query's index terms, through this index's analyzer.
  std::vector<std::string> analyze(std::string_view text) const;
  // Documents containing an (already analysed) term; 0 when the term is not in the index.
  uint32_t doc_freq(std::string_view term) const;
  uint32_t doc_length(uint32_t doc) const;

  const std::string& dir() const;
  double k1() const;
  double b() const;
  double avg_doc_len() const;
  uint64_t num_terms() const;
  uint64_t num_postings() const;
  const AnalyzerOptions& analyzer_options() const;
  // Bytes of all index files.
  uint64_t size_bytes() const;
  // Terms with an impact array (impacts.bin; 0 for a version-1 index).
  uint32_t num_impact_arrays() const;
  // When search() runs the bound scan over the impact arrays (bm25_search.h): kAuto by cost,
  // or always / never, for tests and benchmarks. Results are the same either way. Not
  // thread-safe: set it before searching.
  void set_bound_scan(BoundScan mode);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::retrieval
