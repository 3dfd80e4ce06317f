// The on-disk dense index (strata's own folder; FlashRAG / Search-R1 faiss files are adopted into
// it or served as they are, see dense_index.h).
//
// A dense index is a directory:
//   manifest.json  format name and version, num_docs, dim, metric, faiss factory, storage, the
//                  encoder's description, and {"bytes", "crc32"} of every file below
//   vectors.f32    storage "vectors" (factory "Flat"): a 64-byte VectorsHeader, then num_docs
//                  rows of dim float32, row-major, little-endian; memory-mapped and searched
//                  exactly (faiss's knn_inner_product / knn_L2sqr, what IndexFlat runs)
//   index.faiss    storage "faiss" (any other factory: HNSW, IVF-PQ, ...): faiss's own file,
//                  read with IO_FLAG_MMAP (IVF lists stay on disk)
//   docs.bin, docs.idx  the document store, in the BM25 index's layout (retrieval/doc_store.h)
// While a build runs, `build/` holds progress.json and the finished shards of vectors
// (shard-NNNNNN.f32, raw rows) so that a killed build resumes where it stopped.
#pragma once

#include <cstdint>

namespace strata::retrieval::dense {

constexpr char kFormatName[] = "strata-dense";
constexpr uint32_t kVersion = 1;
constexpr char kManifest[] = "manifest.json";
constexpr char kVectors[] = "vectors.f32";
constexpr char kFaiss[] = "index.faiss";
constexpr char kBuildDir[] = "build";
constexpr char kProgress[] = "progress.json";

// The metric of an index; the values are faiss's MetricType.
enum class Metric : uint32_t { kInnerProduct = 0, kL2 = 1 };

struct VectorsHeader {
  char magic[8];  // "STRVEC1\0"
  uint32_t version;
  uint32_t dim;
  uint64_t count;
  uint32_t metric;  // Metric
  uint8_t reserved[36];
};
static_assert(sizeof(VectorsHeader) == 64, "VectorsHeader must be 64 bytes");
constexpr char kVectorsMagic[8] = {'S', 'T', 'R', 'V', 'E', 'C', '1', '\0'};

}  // namespace strata::retrieval::dense
