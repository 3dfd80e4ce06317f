#include "agent/tokenizer/impl/tokenizer_bpe.h"

#include <mutex>
#include <queue>

#include "agent/tokenizer/impl/tokenizer_byte_level.h"
#include "core/error.h"

namespace strata::agent::impl {

BpeModel::BpeModel(std::unordered_map<std::string, int32_t> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges,
                   bool ignore_merges, std::string unk_token, bool fuse_unk)
    : vocab_(std::move(vocab)), ignore_merges_(ignore_merges), fuse_unk_(fuse_unk) {
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
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t ia = token_to_id(a), ib = token_to_id(b), im = token_to_id(a + b);
    STRATA_CHECK(ia >= 0, "merge " << rank << " (\"" << a << "\" \"" << b << "\"): \"" << a
                                   << "\" is not in the vocabulary");
    STRATA_CHECK(ib >= 0, "merge " << rank << " (\"" << a << "\" \"" << b << "\"): \"" << b
                                   << "\" is not in the vocabulary");
    STRATA_CHECK(im >= 0, "merge " << rank << " (\"" << a << "\" \"" << b << "\"): the merged \""
                                   << a << b << "\" is not in the vocabulary");
    // Like tokenizers, a repeated pair keeps its last rank.
    merges_[pair_key(ia, ib)] = BpeMerge{static_cast<int32_t>(rank), im};
  }
  small_char_id_.assign(512, -1);
  for (uint32_t cp = 0; cp < 512; ++cp) {
    std::string ch;
    append_utf8(ch, cp);
    small_char_id_[cp] = token_to_id(ch);
  }
  if (!unk_token.empty()) {
    unk_id_ = token_to_id(unk_token);
    STRATA_CHECK(unk_id_ >= 0, "unk_token \"" << unk_token << "\" is not in the vocabulary");
  }
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_end() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const int32_t whole = token_to_id(word);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  const bool cacheable = word.size() <= kCacheWordMax;
  if (cacheable) {
    std::shared_lock<std::shared_mutex> lock(cache_mu_);
    auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::unique_lock<std::shared_mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheMax) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  size_t pos = 0;
  bool last_was_unk = false;
  while (pos < word.size()) {
    uint32_t cp = 0;
    int len = decode_utf8(word, pos, cp);
    int32_t id = -1;
    if (len > 0 && cp < 512) {
      id = small_char_id_[cp];
    } else {
      if (len == 0) len = 1;  // not byte-level text: look the single byte up
      id = token_to_id(word.substr(pos, static_cast<size_t>(len)));
    }
    pos += static_cast<size_t>(len);
    if (id < 0) {
      // As tokenizers: an unknown character becomes unk (runs fused with fuse_unk), or is
      // dropped when there is no unk token.
      if (unk_id_ < 0 || (fuse_unk_ && last_was_unk)) continue;
      id = unk_id_;
      last_was_unk = true;
    } else {
      last_was_unk = false;
    }
    const auto n = static_cast<int32_t>(sym.size());
    sym.push_back(Symbol{id, n - 1, n + 1, true});
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  struct Entry {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto push_pair = [&](int32_t left) {
    const int32_t right = sym[left].next;
    if (right < 0) return;
    auto it = merges_.find(pair_key(sym[left].id, sym[right].id));
    if (it != merges_.end()) heap.push(Entry{it->second.rank, left, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) push_pair(i);

  while (!heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    const int32_t right_pos = left.next;
    auto it = merges_.find(pair_key(left.id, sym[right_pos].id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    sym[right_pos].alive = false;
    left.next = sym[right_pos].next;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace strata::agent::impl
