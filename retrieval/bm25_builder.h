// Builds a BM25 index directory (layout in retrieval/bm25_format.h) from a stream of passages.
//
// Memory stays bounded whatever the corpus size: analysed postings are buffered up to
// `run_postings`, then sorted by term and spilled to a temporary run file in the output
// directory; finish() merges the runs term by term into the compressed postings. Contents go
// straight to the document store as they arrive. Analysis runs on `threads` worker threads
// while the calling thread reads and inverts.
//
//   IndexBuilder builder(out_dir, options);
//   builder.add("0", "\"Title\"\ntext");  ...
//   BuildStats stats = builder.finish();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "retrieval/analyzer.h"

namespace strata::retrieval {

struct BuildOptions {
  double k1 = 0.9;              // BM25 term-frequency saturation (Pyserini's default)
  double b = 0.4;               // BM25 length normalisation (Pyserini's default)
  int threads = 0;              // analysis threads; 0 = all cores
  AnalyzerOptions analyzer;     // stored in the index; queries are analysed the same way
  uint64_t run_postings = 8u << 20;  // postings held in memory before a sorted run is spilled
  // Terms in at least this share of the documents also get an impact array (one byte per
  // document, impacts.bin) for the search's bound scan; 0 = none. The default (1/32) adds
  // 213 MiB to the 1M-passage world's 480 MiB index (213 such words); 1/16 adds 144 MiB.
  double impact_share = 1.0 / 32;
  bool progress = true;         // progress lines on stderr
};

// Throws strata::Error naming the option when a value is out of range.
void validate(const BuildOptions& options);

struct BuildStats {
  uint64_t num_docs = 0;
  uint64_t num_terms = 0;
  uint64_t num_postings = 0;    // (term, document) pairs
  uint64_t index_bytes = 0;     // all files of the index directory
  uint64_t doc_store_bytes = 0; // docs.bin + docs.idx
  uint32_t runs = 0;            // sorted runs merged
  double seconds = 0;
};

class IndexBuilder {
 public:
  // Creates `out_dir` when missing; an index already there is replaced.
  IndexBuilder(const std::string& out_dir, const BuildOptions& options);
  ~IndexBuilder();
  IndexBuilder(const IndexBuilder&) = delete;
  IndexBuilder& operator=(const IndexBuilder&) = delete;

  // Adds the next document (documents are numbered 0, 1, ... in the order added). `contents` is
  // both what is indexed and what document() returns.
  void add(std::string_view id, std::string_view contents);
  uint64_t num_added() const;
  // Merges the runs, writes every file (the manifest last) and returns the statistics.
  BuildStats finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Indexes a JSONL corpus (either record form of data/corpus.h). A `contents` string is stored
// as is; a title/text record is stored as "\"Title\"\ntext". A malformed line throws
// strata::Error with file:line.
BuildStats build_index(const std::string& corpus_path, const std::string& out_dir,
                       const BuildOptions& options);

// Total bytes of the regular files in `dir`.
uint64_t directory_bytes(const std::string& dir);

}  // namespace strata::retrieval
