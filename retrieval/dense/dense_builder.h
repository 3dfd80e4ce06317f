// Builds a dense index folder (dense_format.h) from a JSONL corpus and an Embedder, or adopts a
// FlashRAG / Search-R1 faiss file and its corpus as one.
//
// The corpus is streamed; passages are encoded in batches of `batch_size` and collected into
// shards of `shard_docs` vectors under out_dir/build/, each written to a temporary file and
// renamed when whole. A build that is killed resumes from its last whole shard when run again
// with the same corpus, encoder and options (build/progress.json records them); since a shard's
// batches are the same on every run, the resumed index is the one an uninterrupted build makes.
// At the end the shards become vectors.f32 (factory "Flat") or a faiss index built with the
// factory string (trained on the vectors first where the type needs it), the document store
// is written, and the manifest last.
#pragma once

#include <cstdint>
#include <string>

#include "retrieval/dense/dense_format.h"
#include "retrieval/embedder.h"

namespace strata::retrieval::dense {

struct DenseBuildOptions {
  std::string factory = "Flat";  // faiss index_factory string: "Flat", "HNSW32", "IVF256,PQ16"...
  Metric metric = Metric::kInnerProduct;
  int batch_size = 64;           // passages per encoder call
  int shard_docs = 8192;         // vectors per resumable shard; a multiple of batch_size
  uint64_t train_docs = 100000;  // vectors a trained index type (IVF, PQ) is trained on, at most
  bool progress = true;          // progress lines (rate, ETA) on stderr
};

// Throws strata::Error naming the option.
void validate(const DenseBuildOptions& options);

struct DenseBuildStats {
  uint64_t num_docs = 0;
  uint64_t encoded = 0;        // passages encoded by this run (fewer when it resumed)
  uint64_t resumed_docs = 0;   // passages found already encoded
  uint64_t index_bytes = 0;
  double seconds = 0;
  double encode_seconds = 0;   // inside Embedder::embed
};

DenseBuildStats build_dense_index(const std::string& corpus_path, const std::string& out_dir,
                                  Embedder& embedder, const DenseBuildOptions& options);

// Makes an index folder from an existing faiss file and the corpus it was built from (row i =
// line i). A flat index's rows are copied into vectors.f32 (memory-mapped when served); any other
// type is copied as index.faiss. `encoder` is recorded in the manifest (the faiss file does not
// say which model made it). Checks ntotal against the corpus before copying anything.
DenseBuildStats adopt_faiss_index(const std::string& faiss_file, const std::string& corpus_path,
                                  const std::string& out_dir, const std::string& encoder);

}  // namespace strata::retrieval::dense
