// The model stage of a tokenizer.json: one pre-tokenized word in, token ids out. BPE
// (tokenizer_bpe.h) and WordPiece (tokenizer_wordpiece.h) implement it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::agent::impl {

class SubwordModel {
 public:
  virtual ~SubwordModel() = default;
  // Appends the ids of `word` (one piece of the pre-tokenizer's output) to `out`.
  virtual void tokenize(std::string_view word, std::vector<int32_t>& out) const = 0;
  virtual int32_t token_to_id(std::string_view token) const = 0;  // -1 when absent
  virtual const std::string* id_to_token(int32_t id) const = 0;   // nullptr when absent
  // One past the largest id in the vocabulary.
  virtual int32_t id_end() const = 0;
};

}  // namespace strata::agent::impl
