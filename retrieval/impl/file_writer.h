// A FILE* with a large buffer, checked writes and a running CRC-32 (zlib's) of what it wrote:
// the writer of every index file (BM25 and dense), whose manifests record size and CRC-32.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <zlib.h>

#include "core/error.h"

namespace strata::retrieval {

constexpr size_t kWriteBuffer = 1 << 20;

class FileWriter {
 public:
  explicit FileWriter(std::string path) : path_(std::move(path)) {
    f_ = std::fopen(path_.c_str(), "wb");
    STRATA_CHECK(f_ != nullptr, "cannot create index file " << path_);
    buf_.reserve(kWriteBuffer);
  }
  ~FileWriter() {
    if (f_ != nullptr) std::fclose(f_);
  }
  void write(const void* p, size_t n) {
    if (buf_.size() + n > kWriteBuffer) flush_buffer();
    if (n > kWriteBuffer) {
      raw(p, n);
    } else {
      buf_.append(static_cast<const char*>(p), n);
    }
    size_ += n;
  }
  void write(std::string_view s) { write(s.data(), s.size()); }
  template <class T>
  void put(const T& v) {
    write(&v, sizeof(T));
  }
  void pad_to(size_t align) {
    static const char zeros[16] = {};
    while (size_ % align != 0) write(zeros, 1);
  }
  uint64_t size() const { return size_; }
  // CRC-32 (zlib's) of every byte written so far; final once close() has returned.
  uint32_t crc() const { return crc_; }
  const std::string& path() const { return path_; }
  void close() {
    flush_buffer();
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    STRATA_CHECK(ok, "cannot write index file " << path_ << " (disk full?)");
  }

 private:
  void flush_buffer() {
    raw(buf_.data(), buf_.size());
    buf_.clear();
  }
  void raw(const void* p, size_t n) {
    if (n == 0) return;
    STRATA_CHECK(std::fwrite(p, 1, n, f_) == n,
                 "cannot write index file " << path_ << " (disk full?)");
    crc_ = static_cast<uint32_t>(crc32_z(crc_, static_cast<const Bytef*>(p), n));
  }
  std::string path_;
  FILE* f_ = nullptr;
  std::string buf_;
  uint64_t size_ = 0;
  uint32_t crc_ = 0;
};

// "%08x" of a CRC-32, as the manifests store it.
inline std::string crc_hex(uint32_t crc) {
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", static_cast<unsigned>(crc));
  return hex;
}

}  // namespace strata::retrieval
