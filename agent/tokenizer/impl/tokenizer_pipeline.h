// The text stages of a tokenizer.json between the added-token split and the BPE model:
// the Unicode normalizer and the pre-tokenizer (regex splits, then the byte-level mapping).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/tokenizer/impl/tokenizer_regex.h"

namespace strata::agent::impl {

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// Applies Unicode normal forms in order (ICU). Invalid UTF-8 bytes are kept as they are and
// the valid runs between them are normalized.
class Normalizer {
 public:
  explicit Normalizer(std::vector<NormalForm> forms = {});
  bool empty() const { return forms_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  std::vector<NormalForm> forms_;
};

enum class SplitBehavior { kIsolated, kRemoved };

// One stage of a pre-tokenizer Sequence.
struct PreTokenizerStage {
  enum class Kind { kSplit, kByteLevel } kind = Kind::kSplit;
  std::shared_ptr<const Regex> regex;  // Split, or ByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool add_prefix_space = false;  // ByteLevel: prepend ' ' to a piece not starting with one
};

class PreTokenizer {
 public:
  PreTokenizer() = default;
  // The last stage must be ByteLevel and no other stage may be (checked by the JSON reader).
  explicit PreTokenizer(std::vector<PreTokenizerStage> stages);

  // Splits `text` into words and appends each in byte-level form to `out`. Invalid UTF-8 bytes
  // never reach a regex: each run of them is a word of its own.
  void run(std::string_view text, std::vector<std::string>& out) const;

 private:
  std::vector<PreTokenizerStage> stages_;
};

// GPT-2's pre-tokenizer pattern, used by ByteLevel(use_regex=true).
extern const char* const kGpt2Pattern;
// Qwen2 / Qwen2.5's Split pattern (digits one by one).
extern const char* const kQwen2Pattern;
// Llama-3's Split pattern (digits in groups of up to three).
extern const char* const kLlama3Pattern;

}  // namespace strata::agent::impl
