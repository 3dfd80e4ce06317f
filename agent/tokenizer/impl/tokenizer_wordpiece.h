// The WordPiece model of a tokenizer.json (BERT and its family): greedy longest-match-first over
// a vocabulary, pieces after the first spelled with a continuation prefix ("##"). Follows
// `tokenizers`: a word longer than max_input_chars_per_word code points, or one with a stretch
// no vocabulary entry covers, becomes the single unk token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/tokenizer/impl/tokenizer_model.h"

namespace strata::agent::impl {

class WordPieceModel : public SubwordModel {
 public:
  // Throws strata::Error when unk_token is not in `vocab` or ids repeat.
  WordPieceModel(std::unordered_map<std::string, int32_t> vocab, std::string unk_token,
                 std::string continuing_subword_prefix, size_t max_input_chars_per_word);

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  int32_t token_to_id(std::string_view token) const override;
  const std::string* id_to_token(int32_t id) const override;
  int32_t id_end() const override { return static_cast<int32_t>(id_to_token_.size()); }

  const std::string& prefix() const { return prefix_; }

 private:
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::string prefix_;
  int32_t unk_id_ = -1;
  size_t max_chars_ = 100;
  // Longest vocabulary entry in bytes (continuations counted without their prefix): no longer
  // candidate needs a lookup.
  size_t longest_ = 0;
};

}  // namespace strata::agent::impl
