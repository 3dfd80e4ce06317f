#include "core/tensorboard.h"

#include <unistd.h>

#include <boost/crc.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace strata {

namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_fixed64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_fixed32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_bytes(std::string& out, uint32_t field, std::string_view s) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, s.size());
  out.append(s.data(), s.size());
}
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::string event_header(double wall_time, int64_t step) {
  std::string e;
  uint64_t bits;
  std::memcpy(&bits, &wall_time, sizeof bits);
  put_varint(e, (1 << 3) | 1);  // wall_time, fixed64
  put_fixed64(e, bits);
  put_varint(e, (2 << 3) | 0);  // step, varint
  put_varint(e, static_cast<uint64_t>(step));
  return e;
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

uint32_t masked_crc32c(std::string_view bytes) {
  const uint32_t c = crc32c(bytes);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string TensorBoardWriter::frame(const std::string& event) {
  std::string len;
  put_fixed64(len, event.size());
  std::string out = len;
  put_fixed32(out, masked_crc32c(len));
  out += event;
  put_fixed32(out, masked_crc32c(event));
  return out;
}

std::string TensorBoardWriter::scalar_event(double wall_time, int64_t step,
                                            const std::map<std::string, double>& values) {
  std::string summary;
  for (const auto& [tag, v] : values) {
    std::string value;
    put_bytes(value, 1, tag);
    const float f = static_cast<float>(v);
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    put_varint(value, (2 << 3) | 5);  // simple_value, fixed32
    put_fixed32(value, bits);
    put_bytes(summary, 1, value);
  }
  std::string e = event_header(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  STRATA_CHECK(!ec, "cannot create TensorBoard directory " << dir << ": " << ec.message());
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  path_ = dir + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(now_seconds())) + "." +
          host + "." + std::to_string(getpid());
  file_ = std::fopen(path_.c_str(), "ab");
  STRATA_CHECK(file_ != nullptr, "cannot create TensorBoard event file " << path_);
  std::string first = event_header(now_seconds(), 0);
  put_bytes(first, 3, "brain.Event:2");
  const std::string framed = frame(first);
  std::fwrite(framed.data(), 1, framed.size(), file_);
  std::fflush(file_);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::scalars(int64_t step, const std::map<std::string, double>& values) {
  const std::string framed = frame(scalar_event(now_seconds(), step, values));
  STRATA_CHECK(std::fwrite(framed.data(), 1, framed.size(), file_) == framed.size(),
               "error while writing " << path_);
}

void TensorBoardWriter::flush() { std::fflush(file_); }

}  // namespace strata
