// libFuzzer target: tokenizer.json loading (agent/tokenizer, Tokenizer::from_json) on arbitrary
// bytes. A file that loads must then encode and decode a fixed text (ASCII, digits, an added
// token's look-alike, multi-byte UTF-8 and a stray invalid byte) and answer id lookups for every
// id it produced and a few out-of-range ones. Loading may refuse with strata::Error; nothing else.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/tokenizer/tokenizer.h"
#include "core/error.h"
#include "tests/fuzz/fuzz_util.h"

using strata::agent::Tokenizer;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  strata::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::optional<Tokenizer> tok;
  try {
    tok.emplace(Tokenizer::from_json(text, "fuzz"));
  } catch (const strata::Error&) {
    return 0;
  }
  static const std::string kSample =
      "Hello world, 12345 abc <|end|> <mask>  tabs\tand\nlines \xC3\xBC\xE4\xBD\xA0\xF0\x9F\x98\x80 \xFF!";
  try {
    for (bool allow_special : {true, false}) {
      const std::vector<int32_t> ids = tok->encode(kSample, allow_special);
      const std::vector<int32_t> wrapped = tok->wrap_single(ids);
      FUZZ_CHECK(wrapped.size() >= ids.size(), "wrap_single only adds ids");
      (void)tok->decode(ids, false);
      (void)tok->decode(wrapped, true);
      for (int32_t id : ids) {
        FUZZ_CHECK(id >= 0 && id < tok->vocab_size(), "encode gives ids below vocab_size");
        (void)tok->id_to_token(id);
        (void)tok->is_special(id);
      }
    }
    const int32_t n = tok->vocab_size();
    const std::vector<int32_t> odd = {-1, 0, n - 1, n, n + 1, INT32_MAX, INT32_MIN};
    (void)tok->decode(odd, false);
    for (int32_t id : odd) {
      (void)tok->id_to_token(id);
      (void)tok->is_special(id);
    }
    (void)tok->token_to_id("<|end|>");
    (void)tok->token_to_id("");
    (void)tok->special_tokens();
    (void)tok->eos_id();
    (void)tok->bos_id();
    (void)tok->pad_id();
  } catch (const strata::Error&) {
    // encode/decode may refuse a loaded tokenizer's input with a clean error
  }
  return 0;
}
