// The seam between dense retrieval and whatever turns text into vectors.
//
// The dense index (retrieval/dense/) and its searcher see only this torch-free interface; the
// programs adapt the LibTorch BERT encoder (agent/encoder.h) to it, and tests use HashEmbedder
// (retrieval/hash_embedder.h), which needs no model.
#pragma once

#include <string>
#include <vector>

namespace strata::retrieval {

class Embedder {
 public:
  virtual ~Embedder() = default;
  // Length of every vector embed() returns.
  virtual int dim() const = 0;
  // What produced the vectors (model folder, pooling, prefixes), stored in an index's manifest
  // and compared when the index is served.
  virtual std::string describe() const = 0;
  // Row-major float32 [texts.size() x dim()]; queries and passages may be encoded differently
  // (E5's "query: " / "passage: " prefixes). Called from one thread at a time.
  virtual std::vector<float> embed(const std::vector<std::string>& texts, bool is_query) = 0;
};

}  // namespace strata::retrieval
