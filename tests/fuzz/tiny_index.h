// The tiny BM25 index that fuzz_bm25_manifest opens with fuzzed manifests, and whose real
// manifest make_seeds writes into the seed corpus (so the seed matches the index byte for byte).
#pragma once

#include <string>

#include "retrieval/bm25_builder.h"

namespace strata::fuzz {

inline void build_tiny_index(const std::string& dir) {
  retrieval::BuildOptions opt;
  opt.threads = 1;
  opt.progress = false;
  retrieval::IndexBuilder builder(dir, opt);
  builder.add("0", "\"Alpha Kreimex\"\nAlpha Kreimex was born in Setofa in 1901.");
  builder.add("1", "\"Setofa\"\nSetofa is a river town; its mayor was Alpha Kreimex.");
  builder.add("2", "\"Beta\"\nBeta is a letter, and beta tests come before releases.");
  builder.add("d", "\"Gamma ray\"\nA gamma ray is light of very high energy.");
  builder.finish();
}

}  // namespace strata::fuzz
