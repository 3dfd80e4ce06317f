// A deterministic bag-of-words Embedder that needs no model: each lower-cased alphanumeric word
// adds +-1 to one coordinate chosen by a hash of the word (the sign by another bit of it), and
// the vector is L2-normalised. Inner products then count shared words, so rankings are
// meaningful for tests and for the daemon's plumbing (batching, overload, fusion); it is no
// substitute for a trained encoder. `build_index --dense --encoder hash:DIM` and
// `retrieval_server --encoder hash:DIM` select it.
#pragma once

#include <string>
#include <vector>

#include "retrieval/embedder.h"

namespace strata::retrieval {

class HashEmbedder final : public Embedder {
 public:
  // `delay_ms`: TESTING AID, sleep this long per embed() call (stands in for a slow model).
  explicit HashEmbedder(int dim, int delay_ms = 0);
  // "hash:DIM" -> DIM; 0 when `spec` is not of that form.
  static int parse_spec(const std::string& spec);

  int dim() const override { return dim_; }
  std::string describe() const override;
  std::vector<float> embed(const std::vector<std::string>& texts, bool is_query) override;

  // Calls of embed() so far, and the texts they carried (for batching tests).
  long calls() const { return calls_; }
  long texts() const { return texts_; }

 private:
  int dim_;
  int delay_ms_;
  long calls_ = 0;
  long texts_ = 0;
};

}  // namespace strata::retrieval
