// Writes TensorBoard event files (scalars) without TensorFlow or a protobuf schema.
//
// The format is TFRecord framing around serialized `Event` protos:
//   uint64 length | uint32 masked_crc32c(length) | Event bytes | uint32 masked_crc32c(bytes)
// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
// Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
// CRC32C comes from Boost.CRC (crc_optimal with the Castagnoli polynomial).
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>

namespace strata {

uint32_t crc32c(std::string_view bytes);
// TFRecord's masked CRC: rotate right by 15 and add a constant.
uint32_t masked_crc32c(std::string_view bytes);

class TensorBoardWriter {
 public:
  // Creates `dir` if needed and a new events.out.tfevents.<seconds>.<host>.<pid> file in it.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void scalars(int64_t step, const std::map<std::string, double>& values);
  void flush();
  const std::string& path() const { return path_; }

  // One TFRecord-framed event (exposed for tests).
  static std::string frame(const std::string& event_bytes);
  static std::string scalar_event(double wall_time, int64_t step,
                                  const std::map<std::string, double>& values);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace strata
