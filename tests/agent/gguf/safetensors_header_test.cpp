// The safetensors header checks (agent/gguf/safetensors_header.*, no LibTorch), including the
// regression fuzz_safetensors found.
#include "agent/gguf/safetensors_header.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "core/error.h"

namespace strata::agent {
namespace {

std::string file_with(const nlohmann::json& header, size_t data_bytes) {
  const std::string text = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t(text.size()) >> (8 * i)) & 0xff);
  return out + text + std::string(data_bytes, '\x01');
}

std::vector<SafetensorsEntry> parse(const std::string& bytes) {
  return parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t.safetensors");
}

TEST(SafetensorsHeader, ParsesEntriesWithAbsoluteOffsets) {
  nlohmann::json h;
  h["__metadata__"] = {{"format", "pt"}};
  h["w"] = {{"dtype", "BF16"}, {"shape", {2, 3}}, {"data_offsets", {0, 12}}};
  h["b"] = {{"dtype", "F32"}, {"shape", {0, 5}}, {"data_offsets", {12, 12}}};
  const std::string bytes = file_with(h, 12);
  const auto entries = parse(bytes);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "b");
  EXPECT_EQ(entries[1].name, "w");
  EXPECT_EQ(entries[1].dtype, "BF16");
  EXPECT_EQ(entries[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(entries[1].end, bytes.size());
  EXPECT_EQ(entries[1].end - entries[1].begin, 12u);
}

TEST(SafetensorsHeader, BadHeadersAreCleanErrors) {
  EXPECT_THROW(parse("1234567"), Error);                      // too short
  EXPECT_THROW(parse(std::string("\xff\0\0\0\0\0\0\0{}", 10)), Error);  // length past the end
  EXPECT_THROW(parse(file_with(nlohmann::json::array(), 0)), Error);
  nlohmann::json h;
  h["w"] = {{"dtype", "Q4"}, {"shape", {1}}, {"data_offsets", {0, 1}}};
  EXPECT_THROW(parse(file_with(h, 1)), Error);  // unknown dtype
  h["w"] = {{"dtype", "F32"}, {"shape", {-1}}, {"data_offsets", {0, 4}}};
  EXPECT_THROW(parse(file_with(h, 4)), Error);  // negative dimension
  h["w"] = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 4}}};
  EXPECT_THROW(parse(file_with(h, 8)), Error);  // span does not match the shape
  h["w"] = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}};
  EXPECT_THROW(parse(file_with(h, 4)), Error);  // past the end of the data
  h["w"] = {{"dtype", "F32"}, {"shape", "2"}, {"data_offsets", {0, 8}}};
  EXPECT_THROW(parse(file_with(h, 8)), Error);  // malformed entry
}

// fuzz_safetensors: the element count overflowed (signed overflow, undefined behaviour) and
// wrapped: 65536^4 F16 elements came out as 0 bytes, so a header claiming 2^64 elements over an
// empty byte range was accepted and torch::from_blob would have read far past the mapping.
TEST(SafetensorsHeader, ShapesWhoseElementCountOverflowsAreRefused) {
  nlohmann::json h;
  h["x"] = {{"dtype", "F16"}, {"shape", {65536, 65536, 65536, 65536}}, {"data_offsets", {0, 0}}};
  try {
    parse(file_with(h, 0));
    FAIL() << "accepted a shape of 2^64 elements";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too many elements"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
  }
  h["x"] = {{"dtype", "F64"}, {"shape", {int64_t(1) << 61}}, {"data_offsets", {0, 0}}};  // bytes overflow
  EXPECT_THROW(parse(file_with(h, 0)), Error);
  // A zero dimension anywhere makes an empty tensor, wherever it stands; the other dimensions
  // must still have a product that fits (torch computes it too).
  h["x"] = {{"dtype", "F32"}, {"shape", {int64_t(1) << 20, 0, int64_t(1) << 20}}, {"data_offsets", {0, 0}}};
  EXPECT_EQ(parse(file_with(h, 0)).size(), 1u);
  h["x"] = {{"dtype", "F32"}, {"shape", {int64_t(1) << 40, 0, int64_t(1) << 40}}, {"data_offsets", {0, 0}}};
  EXPECT_THROW(parse(file_with(h, 0)), Error);
}

}  // namespace
}  // namespace strata::agent
