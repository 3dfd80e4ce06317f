#include "agent/tokenizer/impl/tokenizer_wordpiece.h"

#include <algorithm>

#include "agent/tokenizer/impl/tokenizer_byte_level.h"
#include "core/error.h"

namespace strata::agent::impl {

WordPieceModel::WordPieceModel(std::unordered_map<std::string, int32_t> vocab,
                               std::string unk_token, std::string continuing_subword_prefix,
                               size_t max_input_chars_per_word)
    : vocab_(std::move(vocab)),
      prefix_(std::move(continuing_subword_prefix)),
      max_chars_(max_input_chars_per_word) {
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab_) {
    STRATA_CHECK(id >= 0, "vocab token \"" << tok << "\" has a negative id " << id);
    max_id = std::max(max_id, id);
  }
  id_to_token_.resize(static_cast<size_t>(max_id + 1));
  has_id_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [tok, id] : vocab_) {
    STRATA_CHECK(!has_id_[id], "vocab id " << id << " is given to both \"" << id_to_token_[id]
                                           << "\" and \"" << tok << "\"");
    id_to_token_[id] = tok;
    has_id_[id] = true;
    const bool cont = !prefix_.empty() && tok.size() > prefix_.size() &&
                      tok.compare(0, prefix_.size(), prefix_) == 0;
    longest_ = std::max(longest_, cont ? tok.size() - prefix_.size() : tok.size());
  }
  unk_id_ = token_to_id(unk_token);
  STRATA_CHECK(unk_id_ >= 0, "unk_token \"" << unk_token << "\" is not in the vocabulary");
}

int32_t WordPieceModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* WordPieceModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_end() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void WordPieceModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  // Code points, counted as tokenizers does (an invalid byte counts as one).
  size_t chars = 0;
  for (size_t pos = 0; pos < word.size(); ++chars) {
    uint32_t cp = 0;
    const int len = decode_utf8(word, pos, cp);
    pos += len > 0 ? static_cast<size_t>(len) : 1;
  }
  if (chars > max_chars_) {
    out.push_back(unk_id_);
    return;
  }
  const size_t mark = out.size();
  std::string candidate;
  size_t start = 0;
  while (start < word.size()) {
    // Longest match first: shrink the end one code point at a time.
    size_t end = std::min(word.size(), start + longest_);
    auto on_boundary = [&](size_t e) {
      return e == word.size() || (static_cast<uint8_t>(word[e]) & 0xC0) != 0x80;
    };
    while (end > start && !on_boundary(end)) --end;
    int32_t found = -1;
    while (end > start) {
      candidate.clear();
      if (start > 0) candidate = prefix_;
      candidate.append(word.substr(start, end - start));
      found = token_to_id(candidate);
      if (found >= 0) break;
      do {
        --end;
      } while (end > start && !on_boundary(end));
    }
    if (found < 0) {
      out.resize(mark);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

}  // namespace strata::agent::impl
