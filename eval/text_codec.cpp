#include "eval/text_codec.h"

#include "core/error.h"

namespace strata::eval {

namespace {
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
}  // namespace

std::vector<int32_t> WordCodec::encode(std::string_view text) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    while (i < text.size() && is_space(text[i])) ++i;
    while (i < text.size() && !is_space(text[i])) ++i;
    const std::string word(text.substr(start, i - start));
    auto it = ids_.find(word);
    if (it == ids_.end()) {
      it = ids_.emplace(word, static_cast<int32_t>(words_.size())).first;
      words_.push_back(word);
    }
    out.push_back(it->second);
  }
  return out;
}

std::string WordCodec::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    STRATA_ASSERT(id >= 0 && static_cast<size_t>(id) < words_.size(), "unknown word id " << id);
    out += words_[static_cast<size_t>(id)];
  }
  return out;
}

}  // namespace strata::eval
