#include "agent/gguf/safetensors_header.h"

#include <nlohmann/json.hpp>

#include <cstdint>

#include "core/error.h"

namespace strata::agent {

size_t safetensors_dtype_size(const std::string& code) {
  if (code == "F32" || code == "I32") return 4;
  if (code == "BF16" || code == "F16") return 2;
  if (code == "I64" || code == "F64") return 8;
  if (code == "U8" || code == "BOOL") return 1;
  STRATA_FAIL("safetensors dtype '" << code << "' is not supported");
}

std::vector<SafetensorsEntry> parse_safetensors_header(const uint8_t* bytes, size_t size,
                                                       const std::string& path) {
  STRATA_CHECK(size >= 8, "'" << path << "' is too short (" << size << " bytes) to be a safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  STRATA_CHECK(n <= size - 8, "'" << path << "': header length " << n << " exceeds the file size " << size);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes + 8),
                                   reinterpret_cast<const char*>(bytes + 8 + n));
  } catch (const nlohmann::json::exception& e) {
    STRATA_FAIL("'" << path << "': the safetensors header is not valid JSON: " << e.what());
  }
  STRATA_CHECK(header.is_object(), "'" << path << "': the safetensors header is not a JSON object");
  const size_t data_start = 8 + n;
  std::vector<SafetensorsEntry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    try {
      SafetensorsEntry e;
      e.name = name;
      e.dtype = info.at("dtype").get<std::string>();
      const size_t elem_size = safetensors_dtype_size(e.dtype);
      e.shape = info.at("shape").get<std::vector<int64_t>>();
      const auto offs = info.at("data_offsets").get<std::vector<uint64_t>>();
      STRATA_CHECK(offs.size() == 2 && offs[0] <= offs[1], "bad data_offsets");
      // The element count, refused when it overflows (it used to wrap: signed overflow, and a
      // shape of 65536^4 F16 elements passed as 0 bytes). The product of the non-zero dimensions
      // must fit wherever a zero stands, so that the check does not depend on the order.
      uint64_t nonzero = 1;
      bool empty = false;
      for (int64_t d : e.shape) {
        STRATA_CHECK(d >= 0, "negative dimension");
        if (d == 0) {
          empty = true;
          continue;
        }
        STRATA_CHECK(nonzero <= static_cast<uint64_t>(INT64_MAX) / static_cast<uint64_t>(d) / elem_size,
                     "shape " << nlohmann::json(e.shape).dump() << " has too many elements");
        nonzero *= static_cast<uint64_t>(d);
      }
      const uint64_t nbytes = empty ? 0 : nonzero * elem_size;
      STRATA_CHECK(offs[1] - offs[0] == nbytes,
                   "data_offsets span " << (offs[1] - offs[0]) << " bytes but the shape needs " << nbytes);
      STRATA_CHECK(offs[1] <= size - data_start,
                   "data_offsets end " << offs[1] << " past the end of the data (" << (size - data_start)
                                       << " bytes)");
      e.begin = data_start + offs[0];
      e.end = data_start + offs[1];
      entries.push_back(std::move(e));
    } catch (const nlohmann::json::exception& ex) {
      STRATA_FAIL("'" << path << "': malformed header entry for tensor '" << name << "': " << ex.what());
    } catch (const Error& ex) {
      STRATA_FAIL("'" << path << "': tensor '" << name << "': " << ex.what());
    }
  }
  return entries;
}

}  // namespace strata::agent
