// libFuzzer target: the GGUF reader (agent/gguf, no LibTorch) on arbitrary bytes, from memory
// (GgufFile::from_memory runs the same checks as the memory-mapped file). A file that parses has
// each tensor of a decodable type dequantised (sizes are bounded by the checks against the input
// size) and its tokenizer metadata, when present, rebuilt as tokenizer.json and loaded. Every
// refusal must be a strata::Error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/gguf/gguf.h"
#include "agent/gguf/gguf_tokenizer.h"
#include "agent/tokenizer/tokenizer.h"
#include "core/error.h"
#include "tests/fuzz/fuzz_util.h"

using namespace strata::agent::gguf;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  strata::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const GgufFile file = GgufFile::from_memory(data, size, "fuzz.gguf");
    for (const TensorInfo& t : file.tensors()) {
      int64_t block_elems = 0, block_bytes = 0;
      if (!tensor_type_layout(t.type, block_elems, block_bytes)) {
        try {
          (void)file.to_float(t);
          FUZZ_CHECK(false, "an undecodable type is refused");
        } catch (const strata::Error&) {
        }
        continue;
      }
      FUZZ_CHECK(t.n_bytes > 0, "a decodable tensor has a size");
      FUZZ_CHECK(data + size >= file.data(t) && t.n_bytes <= size_t(data + size - file.data(t)),
                 "a tensor lies inside the input");
      if (t.n_elements() > (int64_t(1) << 22)) continue;
      const std::vector<float> values = file.to_float(t);
      FUZZ_CHECK(int64_t(values.size()) == t.n_elements(), "one float per element");
    }
    for (const auto& [key, value] : file.metadata()) {
      if (value.is_number()) {
        try {
          (void)value.as_int();
        } catch (const strata::Error&) {
        }
        (void)value.as_double();
      }
    }
    if (file.has("tokenizer.ggml.model")) {
      const HfTokenizerFiles hf = tokenizer_from_gguf(file, 2048);
      const auto tok = strata::agent::Tokenizer::from_json(hf.tokenizer_json, "fuzz.gguf");
      (void)tok.decode(tok.encode("Hello world 123 \xC3\xBC"));
    }
  } catch (const strata::Error&) {
    // a clean refusal naming what was wrong
  }
  return 0;
}
