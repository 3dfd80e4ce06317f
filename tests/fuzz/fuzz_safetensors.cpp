// libFuzzer target: the safetensors header (parse_safetensors_header in strata_gguf, the checks
// agent/safetensors.* runs before it hands out tensors over the mapped file) on arbitrary bytes.
// An accepted entry must describe bytes inside the input whose count matches dtype and shape;
// the target reads them all, so an entry that points outside is an AddressSanitizer report.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/gguf/safetensors_header.h"
#include "core/error.h"
#include "tests/fuzz/fuzz_util.h"

using namespace strata::agent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<SafetensorsEntry> entries;
  try {
    entries = parse_safetensors_header(data, size, "fuzz.safetensors");
  } catch (const strata::Error&) {
    return 0;
  }
  for (const SafetensorsEntry& e : entries) {
    FUZZ_CHECK(e.begin <= e.end && e.end <= size, "an entry lies inside the file");
    bool empty = false;
    for (int64_t d : e.shape) {
      FUZZ_CHECK(d >= 0, "no negative dimension");
      empty = empty || d == 0;
    }
    uint64_t elements = empty ? 0 : 1;
    for (int64_t d : e.shape) {
      if (empty) break;
      FUZZ_CHECK(elements <= UINT64_MAX / uint64_t(d), "the element count fits");
      elements *= uint64_t(d);
    }
    const size_t elem = safetensors_dtype_size(e.dtype);
    FUZZ_CHECK(elements <= UINT64_MAX / elem && elements * elem == e.end - e.begin,
               "the byte range holds exactly shape x dtype");
    unsigned sum = 0;  // what torch::from_blob over the mapping would read
    for (size_t i = e.begin; i < e.end; ++i) sum += data[i];
    (void)sum;
  }
  return 0;
}
