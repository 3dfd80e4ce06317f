// A dense (vector) index opened for search: strata's folder (dense_format.h) or a FlashRAG /
// Search-R1 pair (a faiss file and its corpus JSONL, row i of the index = line i of the corpus).
// All const methods are safe to call from many threads.
//
//   auto index = DenseIndex::open("/data/wiki18_e5");
//   auto hits = index->search(query_vectors.data(), n, 3);   // [n x dim] -> n top-3 lists
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "retrieval/dense/dense_format.h"
#include "retrieval/searcher.h"

namespace strata::retrieval::dense {

const char* metric_name(Metric m);
// "inner_product" / "ip" or "l2"; throws strata::Error listing the names.
Metric parse_metric(const std::string& name);

// What the header of a faiss IndexFlat file says (IndexFlatIP "IxFI", IndexFlatL2 "IxF2", and
// the older generic "IxFl"), read without loading the vectors.
struct FaissFlatHeader {
  bool flat = false;       // false: another index type (its fourcc in `fourcc`)
  char fourcc[5] = {};
  int dim = 0;
  int64_t ntotal = 0;
  Metric metric = Metric::kInnerProduct;
  uint64_t data_offset = 0;  // where the float rows start
};
FaissFlatHeader read_faiss_flat_header(const std::string& path);

class DenseIndex {
 public:
  enum class Verify { kFast, kFull };  // as Bm25Index: kFull also checksums the large files
  // A folder built by build_index --dense (or adopted). Throws strata::Error naming the file
  // when one is missing, truncated, damaged or disagrees with the manifest.
  static std::unique_ptr<DenseIndex> open(const std::string& dir, Verify verify = Verify::kFast);
  // A faiss file with its corpus JSONL, as FlashRAG and Search-R1 keep them (the corpus is read
  // into memory). The faiss file's ntotal must equal the corpus's passages: checked before
  // either is loaded where the index is flat.
  static std::unique_ptr<DenseIndex> open_faiss(const std::string& faiss_file,
                                                const std::string& corpus_jsonl);
  ~DenseIndex();

  // Top-k of each of `n` query vectors (row-major [n x dim]), best first: the inner product
  // (or minus the squared L2 distance) as the score, ties to the smaller document number.
  // Runs on the calling thread alone (faiss's OpenMP and the BLAS set to one thread, batches
  // through sgemm): callers get parallelism from several threads and from batching queries.
  std::vector<std::vector<Hit>> search(const float* queries, size_t n, int k) const;
  // The stored vector of a document (faiss's reconstruct); for tests and checks.
  std::vector<float> vector(uint32_t doc) const;

  DocumentView document(uint32_t doc) const;
  uint32_t num_docs() const;
  int dim() const;
  Metric metric() const;
  const std::string& encoder() const;  // as the manifest says ("" when unknown)
  const std::string& factory() const;
  // One line: where it came from, storage, counts.
  std::string describe() const;
  // faiss search-time parameters, e.g. "nprobe=16" or "efSearch=128" (faiss's ParameterSpace).
  void set_search_parameters(const std::string& params);

 private:
  DenseIndex();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::retrieval::dense
