// The BPE model of a tokenizer.json: a vocabulary of byte-level strings and ranked merges.
// Merging follows `tokenizers` exactly: a min-heap of (rank, position) over adjacent symbol
// pairs kept as a doubly linked list, so a word of n symbols costs O(n log n), and a stale heap
// entry is recognised by checking that its pair still merges into the same id.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agent/tokenizer/impl/tokenizer_model.h"

namespace strata::agent::impl {

struct BpeMerge {
  int32_t rank = 0;    // position in the merges list (lower merges first)
  int32_t new_id = 0;  // id of the merged token
};

class BpeModel : public SubwordModel {
 public:
  // vocab: token -> id. merges: pairs of tokens, in rank order. Throws strata::Error when a
  // merge names a token (or a merged token) missing from the vocabulary.
  BpeModel(std::unordered_map<std::string, int32_t> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
           std::string unk_token, bool fuse_unk);

  // Appends the ids of `word`, a string of byte-level characters (one pre-tokenized piece).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;

  int32_t token_to_id(std::string_view token) const override;  // -1 when absent
  const std::string* id_to_token(int32_t id) const override;   // nullptr when absent
  // One past the largest id in the vocabulary.
  int32_t id_end() const override { return static_cast<int32_t>(id_to_token_.size()); }
  size_t vocab_size() const { return vocab_.size(); }
  size_t merge_count() const { return merges_.size(); }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, BpeMerge> merges_;
  bool ignore_merges_ = false;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  // Id of the one-character token for code points below 512 (all byte-level characters), -1 if
  // absent: spares a hash lookup per character.
  std::vector<int32_t> small_char_id_;

  // Word -> ids. Guarded by a shared mutex so that one tokenizer can serve several threads;
  // cleared when it grows past kCacheMax entries.
  static constexpr size_t kCacheMax = 200000;
  static constexpr size_t kCacheWordMax = 256;  // longer words are not cached
  mutable std::shared_mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace strata::agent::impl
