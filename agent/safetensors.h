// safetensors reading (memory-mapped, zero-copy) and writing.
//
// Format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after the
// header) plus an optional "__metadata__" string map, then the raw little-endian tensor bytes.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace strata::agent {

// One read-only mapping of a .safetensors file. Tensors returned by `get` point into the
// mapping (torch::from_blob) and keep it alive through their deleter, so the file object may be
// dropped while its tensors are still in use. Pages are mapped copy-on-write: an in-place update
// of a returned tensor (e.g. by an optimizer) never touches the file.
class SafetensorsFile {
 public:
  // Maps `path` and validates its header (dtypes, shapes, offsets inside the file).
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  // Shape as stored in the file.
  std::vector<int64_t> shape(const std::string& name) const;
  torch::Dtype dtype(const std::string& name) const;
  // A CPU tensor viewing the mapped bytes (no copy). Throws naming a missing tensor.
  torch::Tensor get(const std::string& name) const;

 private:
  struct Entry {
    torch::Dtype dtype;
    std::vector<int64_t> shape;
    size_t begin = 0;  // absolute byte offset in the file
    size_t end = 0;
  };
  std::string path_;
  std::shared_ptr<void> mapping_;  // munmap on release
  size_t size_ = 0;
  std::map<std::string, Entry> entries_;
};

// Writes `tensors` (any device; made contiguous on CPU) to `path` with metadata {"format":"pt"}.
// Supported dtypes: float32, bfloat16, float16, int64, int32.
void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors);

// "F32", "BF16", ... <-> torch dtypes. Throws on an unsupported code.
torch::Dtype safetensors_dtype(const std::string& code);
std::string safetensors_code(torch::Dtype dtype);

}  // namespace strata::agent
