// The safetensors header, parsed and validated without LibTorch (agent/safetensors.* maps the
// file and builds tensors from these entries; the fuzzers in tests/fuzz feed it raw bytes).
//
// Format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after the
// header) plus an optional "__metadata__" string map, then the raw little-endian tensor bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace strata::agent {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;           // "F32", "BF16", "F16", "I64", "I32", "F64", "U8" or "BOOL"
  std::vector<int64_t> shape;  // as stored
  size_t begin = 0;            // absolute byte offsets in the file, begin <= end <= file size
  size_t end = 0;
};

// Bytes per element of a safetensors dtype code. Throws strata::Error on an unsupported code.
size_t safetensors_dtype_size(const std::string& code);

// Parses and checks the header of the `size`-byte file at `bytes`: the header length, the JSON,
// each entry's dtype, shape (no negative dimension, no overflow) and data_offsets (matching the
// shape, inside the file). Entries come sorted by name. Throws strata::Error naming `path` and
// the tensor on any inconsistency.
std::vector<SafetensorsEntry> parse_safetensors_header(const uint8_t* bytes, size_t size,
                                                       const std::string& path);

}  // namespace strata::agent
