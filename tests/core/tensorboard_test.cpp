#include "core/tensorboard.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "tests/test_util.h"

namespace strata {
namespace {

TEST(TensorBoard, Crc32cKnownVectors) {
  // The standard CRC-32C check value and an RFC 3720 (iSCSI) vector: 32 zero bytes.
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
}

uint64_t read_u64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
uint32_t read_u32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

TEST(TensorBoard, FileIsValidTfRecordFraming) {
  testing::TempDir dir;
  std::string path;
  {
    TensorBoardWriter w(dir.path() + "/tb");
    w.scalars(1, {{"reward/mean", 0.25}, {"loss/pg", -0.5}});
    w.scalars(2, {{"reward/mean", 0.5}});
    path = w.path();
  }
  EXPECT_NE(path.find("events.out.tfevents."), std::string::npos);
  const std::string data = testing::read_file(path);
  size_t at = 0;
  int records = 0;
  while (at < data.size()) {
    ASSERT_LE(at + 12, data.size());
    const uint64_t len = read_u64(data, at);
    EXPECT_EQ(read_u32(data, at + 8), masked_crc32c(data.substr(at, 8)));
    ASSERT_LE(at + 12 + len + 4, data.size());
    const std::string event = data.substr(at + 12, len);
    EXPECT_EQ(read_u32(data, at + 12 + len), masked_crc32c(event));
    if (records == 0) {
      EXPECT_NE(event.find("brain.Event:2"), std::string::npos);
    } else {
      EXPECT_NE(event.find("reward/mean"), std::string::npos);
    }
    at += 12 + len + 4;
    ++records;
  }
  EXPECT_EQ(records, 3);
}

TEST(TensorBoard, ScalarEventEncoding) {
  const std::string e = TensorBoardWriter::scalar_event(1.5, 300, {{"a", 2.0}});
  // wall_time: tag 0x09 + 8 bytes of the double.
  ASSERT_EQ(static_cast<unsigned char>(e[0]), 0x09);
  double wall;
  std::memcpy(&wall, e.data() + 1, 8);
  EXPECT_EQ(wall, 1.5);
  // step: tag 0x10, varint 300 = 0xAC 0x02.
  EXPECT_EQ(static_cast<unsigned char>(e[9]), 0x10);
  EXPECT_EQ(static_cast<unsigned char>(e[10]), 0xAC);
  EXPECT_EQ(static_cast<unsigned char>(e[11]), 0x02);
  // summary (field 5, 10 bytes) > value (field 1, 8 bytes) > tag "a" (3 bytes), simple_value
  // 2.0f (tag 0x15 + 4 bytes).
  const std::string tail = e.substr(12);
  const float two = 2.0f;
  std::string two_bytes(4, '\0');
  std::memcpy(two_bytes.data(), &two, 4);
  EXPECT_EQ(tail, std::string("\x2a\x0a\x0a\x08\x0a\x01" "a" "\x15", 8) + two_bytes);
}

}  // namespace
}  // namespace strata
