// GGUF tokenizer metadata (tokenizer.ggml.*) <-> Hugging Face tokenizer.json / tokenizer_config.json.
//
// Only byte-level BPE (`tokenizer.ggml.model = gpt2`) is converted: GGUF stores the byte-level
// token strings and "a b" merges exactly as tokenizer.json does, and names the pre-tokenizer
// (`tokenizer.ggml.pre`), whose splitting rules are rebuilt here:
//   gpt2 (or absent)  ByteLevel with GPT-2's regex
//   smollm            every digit split off (\p{N}, isolated), then ByteLevel with GPT-2's regex
//   qwen2             Qwen2's regex (single digits), ByteLevel without regex, NFC normaliser
//   llama-bpe         Llama-3's regex (digits in runs of up to three), ByteLevel without regex
// Token types: 3 (control) become special added tokens, 4 (user-defined) non-special added tokens.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "agent/gguf/gguf.h"

namespace strata::agent::gguf {

struct HfTokenizerFiles {
  std::string tokenizer_json;         // tokenizer.json text
  std::string tokenizer_config_json;  // tokenizer_config.json text (special tokens, chat template)
};

// Builds the tokenizer files from `file`'s metadata. `model_max_length` goes into the config.
// Throws strata::Error naming the file and the key for a tokenizer it cannot rebuild.
HfTokenizerFiles tokenizer_from_gguf(const GgufFile& file, int64_t model_max_length);

// The tokenizer.ggml.* metadata (and tokenizer.chat_template) for a tokenizer.json and its
// tokenizer_config.json text (may be empty). `source` names the folder in errors; a file that
// is not JSON or whose keys are missing or of the wrong type is a strata::Error.
std::vector<std::pair<std::string, Value>> tokenizer_to_gguf(const std::string& tokenizer_json,
                                                             const std::string& tokenizer_config_json,
                                                             const std::string& source);

// The regexes of the named pre-tokenizers (for tests and export's detection).
extern const char* const kQwen2Regex;
extern const char* const kLlama3Regex;

}  // namespace strata::agent::gguf
