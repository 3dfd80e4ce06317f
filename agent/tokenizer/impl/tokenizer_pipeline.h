// The text stages of a tokenizer.json between the added-token split and the model: the
// normalizer (Unicode normal forms, BERT's) and the pre-tokenizer (regex splits then the
// byte-level mapping for BPE; BERT's whitespace/punctuation split for WordPiece).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/tokenizer/impl/tokenizer_bert.h"
#include "agent/tokenizer/impl/tokenizer_regex.h"

namespace strata::agent::impl {

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// One normalizer of a Sequence.
struct NormalizerStage {
  enum class Kind { kForm, kBert, kLowercase, kStripAccents } kind = Kind::kForm;
  NormalForm form = NormalForm::kNFC;  // kForm
  BertNormalizerOptions bert;          // kBert
};

// Applies its stages in order. Normal forms (ICU) keep invalid UTF-8 bytes as they are and
// normalize the valid runs between them; the BERT stages turn invalid bytes into U+FFFD (see
// tokenizer_bert.h).
class Normalizer {
 public:
  explicit Normalizer(std::vector<NormalForm> forms = {});
  explicit Normalizer(std::vector<NormalizerStage> stages);
  bool empty() const { return stages_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  std::vector<NormalizerStage> stages_;
};

enum class SplitBehavior { kIsolated, kRemoved };

// One stage of a pre-tokenizer Sequence.
struct PreTokenizerStage {
  enum class Kind { kSplit, kByteLevel, kBert, kWhitespaceSplit } kind = Kind::kSplit;
  std::shared_ptr<const Regex> regex;  // Split, or ByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool add_prefix_space = false;  // ByteLevel: prepend ' ' to a piece not starting with one
};

class PreTokenizer {
 public:
  PreTokenizer() = default;
  // ByteLevel may only be the last stage (checked by the JSON reader).
  explicit PreTokenizer(std::vector<PreTokenizerStage> stages);

  // Splits `text` into words and appends each to `out`, in byte-level form when the last stage
  // is ByteLevel. Invalid UTF-8 bytes never reach a regex: each run of them is a word of its own.
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
