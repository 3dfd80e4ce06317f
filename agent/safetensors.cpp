#include "agent/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "agent/gguf/safetensors_header.h"
#include "core/error.h"

namespace strata::agent {

torch::Dtype safetensors_dtype(const std::string& code) {
  if (code == "F32") return torch::kFloat32;
  if (code == "BF16") return torch::kBFloat16;
  if (code == "F16") return torch::kFloat16;
  if (code == "I64") return torch::kInt64;
  if (code == "I32") return torch::kInt32;
  if (code == "F64") return torch::kFloat64;
  if (code == "U8") return torch::kUInt8;
  if (code == "BOOL") return torch::kBool;
  STRATA_FAIL("safetensors dtype '" << code << "' is not supported");
}

std::string safetensors_code(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "F32";
    case torch::kBFloat16: return "BF16";
    case torch::kFloat16: return "F16";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kFloat64: return "F64";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: break;
  }
  STRATA_FAIL("cannot store dtype " << c10::toString(dtype) << " in safetensors");
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  STRATA_CHECK(fd >= 0, "cannot open safetensors file '" << path << "': " << std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    STRATA_FAIL("cannot stat '" << path << "'");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    STRATA_FAIL("'" << path << "' is too short (" << size_ << " bytes) to be a safetensors file");
  }
  void* addr = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  STRATA_CHECK(addr != MAP_FAILED, "cannot mmap '" << path << "': " << std::strerror(errno));
  const size_t size = size_;
  mapping_ = std::shared_ptr<void>(addr, [size](void* p) { ::munmap(p, size); });

  // The header's checks live in strata_gguf (no LibTorch), where the fuzzers reach them.
  for (SafetensorsEntry& se : parse_safetensors_header(static_cast<const uint8_t*>(addr), size_, path)) {
    Entry e;
    e.dtype = safetensors_dtype(se.dtype);
    e.shape = std::move(se.shape);
    e.begin = se.begin;
    e.end = se.end;
    entries_.emplace(std::move(se.name), std::move(e));
  }
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

std::vector<int64_t> SafetensorsFile::shape(const std::string& name) const {
  auto it = entries_.find(name);
  STRATA_CHECK(it != entries_.end(), "tensor '" << name << "' is not in '" << path_ << "'");
  return it->second.shape;
}

torch::Dtype SafetensorsFile::dtype(const std::string& name) const {
  auto it = entries_.find(name);
  STRATA_CHECK(it != entries_.end(), "tensor '" << name << "' is not in '" << path_ << "'");
  return it->second.dtype;
}

torch::Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = entries_.find(name);
  STRATA_CHECK(it != entries_.end(), "tensor '" << name << "' is not in '" << path_ << "'");
  const Entry& e = it->second;
  auto* base = static_cast<char*>(mapping_.get()) + e.begin;
  std::shared_ptr<void> keep = mapping_;
  if (e.end == e.begin) return torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
  return torch::from_blob(
      base, e.shape, [keep](void*) mutable { keep.reset(); }, torch::TensorOptions().dtype(e.dtype));
}

void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors) {
  nlohmann::json header;
  header["__metadata__"] = {{"format", "pt"}};
  std::vector<torch::Tensor> blobs;
  blobs.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    STRATA_CHECK(t.defined(), "save_safetensors: tensor '" << name << "' is undefined");
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", safetensors_code(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    blobs.push_back(c);
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    STRATA_CHECK(out, "cannot write '" << tmp << "'");
    unsigned char len[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& c : blobs)
      out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
    STRATA_CHECK(out.good(), "write to '" << tmp << "' failed");
  }
  STRATA_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '" << tmp << "' to '" << path << "'");
}

}  // namespace strata::agent
