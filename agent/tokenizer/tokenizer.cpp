#include "agent/tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/tokenizer/impl/tokenizer_byte_level.h"
#include "agent/tokenizer/impl/tokenizer_impl.h"
#include "core/error.h"

namespace strata::agent {

namespace impl {

void TokenizerImpl::index_added_tokens() {
  std::vector<AddedToken> raw, normalized;
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& a = added[i];
    added_ids[a.content] = a.id;
    added_by_id[a.id] = i;
    (a.normalized ? normalized : raw).push_back(a);
  }
  raw_matcher = AddedTokenMatcher(std::move(raw));
  normalized_matcher = AddedTokenMatcher(std::move(normalized));
}

void TokenizerImpl::encode(std::string_view text, bool allow_special,
                           std::vector<int32_t>& out) const {
  std::vector<TextSpan> spans, inner;
  std::vector<std::string> words;
  raw_matcher.split(text, allow_special, spans);
  for (const TextSpan& span : spans) {
    if (span.id >= 0) {
      out.push_back(span.id);
      continue;
    }
    const std::string normalized = normalizer.apply(text.substr(span.begin, span.end - span.begin));
    normalized_matcher.split(normalized, allow_special, inner);
    for (const TextSpan& piece : inner) {
      if (piece.id >= 0) {
        out.push_back(piece.id);
        continue;
      }
      words.clear();
      pre_tokenizer.run(std::string_view(normalized).substr(piece.begin, piece.end - piece.begin),
                        words);
      for (const std::string& w : words) model->tokenize(w, out);
    }
  }
}

namespace {

// tokenizers' WordPiece decoder clean-up (spaces before punctuation and English contractions).
void wordpiece_cleanup(std::string& s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},       {" ?", "?"},        {" !", "!"},   {" ,", ","},
      {" ' ", "'"},      {" n't", "n't"},    {" 'm", "'m"}, {" do not", " don't"},
      {" 's", "'s"},     {" 've", "'ve"},    {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    const std::string_view f(from), t(to);
    std::string out;
    size_t pos = 0, hit;
    bool changed = false;
    while ((hit = s.find(f, pos)) != std::string::npos) {
      out.append(s, pos, hit - pos);
      out.append(t);
      pos = hit + f.size();
      changed = true;
    }
    if (!changed) continue;
    out.append(s, pos, std::string::npos);
    s.swap(out);
  }
}

}  // namespace

std::string TokenizerImpl::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  std::string out;
  size_t n = 0;  // tokens decoded so far
  for (int32_t id : ids) {
    const std::string* tok = nullptr;
    auto it = added_by_id.find(id);
    if (it != added_by_id.end()) {
      const AddedToken& a = added[it->second];
      if (skip_special && a.special) continue;
      tok = &a.content;
    } else {
      tok = model->id_to_token(id);
    }
    if (tok == nullptr) continue;
    if (decoder == Decoder::kWordPiece) {
      std::string piece;
      if (n > 0 && !decoder_prefix.empty() && tok->compare(0, decoder_prefix.size(),
                                                           decoder_prefix) == 0) {
        piece = tok->substr(decoder_prefix.size());
      } else {
        piece = n > 0 ? " " + *tok : *tok;
      }
      if (decoder_cleanup) wordpiece_cleanup(piece);
      out.append(piece);
      ++n;
      continue;
    }
    // ByteLevel decoder: a token whose characters are all in the alphabet is turned back into
    // bytes; any other token (e.g. an added token with a plain space) stands for its own bytes.
    const size_t mark = out.size();
    if (!alphabet.decode(*tok, out)) {
      out.resize(mark);
      out.append(*tok);
    }
    ++n;
  }
  return out;
}

int32_t TokenizerImpl::token_to_id(std::string_view token) const {
  auto it = added_ids.find(std::string(token));
  if (it != added_ids.end()) return it->second;
  return model->token_to_id(token);
}

const std::string* TokenizerImpl::id_to_token(int32_t id) const {
  auto it = added_by_id.find(id);
  if (it != added_by_id.end()) return &added[it->second].content;
  return model->id_to_token(id);
}

int32_t TokenizerImpl::id_end() const {
  int32_t end = model->id_end();
  for (const AddedToken& a : added) end = std::max(end, a.id + 1);
  return end;
}

}  // namespace impl

namespace {
std::string slurp(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "cannot open " << what << " " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<impl::TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  auto impl = impl::read_tokenizer_json(slurp(path, "tokenizer file"), path);
  const std::filesystem::path config =
      std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config)) {
    impl::read_tokenizer_config(*impl, slurp(config.string(), "tokenizer config"), config.string());
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_json(const std::string& json_text, const std::string& source) {
  return Tokenizer(impl::read_tokenizer_json(json_text, source));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  impl_->encode(text, allow_special, ids);
  return ids;
}

std::vector<int32_t> Tokenizer::wrap_single(const std::vector<int32_t>& ids) const {
  std::vector<int32_t> out(impl_->template_prefix);
  out.insert(out.end(), ids.begin(), ids.end());
  out.insert(out.end(), impl_->template_suffix.begin(), impl_->template_suffix.end());
  return out;
}

std::vector<int32_t> Tokenizer::encode_single(std::string_view text, size_t max_length) const {
  std::vector<int32_t> ids = encode(text);
  const size_t added = impl_->template_prefix.size() + impl_->template_suffix.size();
  if (max_length > 0 && ids.size() + added > max_length) {
    ids.resize(max_length > added ? max_length - added : 0);
  }
  return wrap_single(ids);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  return impl_->decode(ids, skip_special);
}

int32_t Tokenizer::token_to_id(std::string_view token) const { return impl_->token_to_id(token); }

std::string Tokenizer::id_to_token(int32_t id) const {
  const std::string* t = impl_->id_to_token(id);
  return t == nullptr ? std::string() : *t;
}

int32_t Tokenizer::vocab_size() const { return impl_->id_end(); }

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

std::vector<std::string> Tokenizer::special_tokens() const {
  std::vector<const impl::AddedToken*> specials;
  for (const auto& a : impl_->added) {
    if (a.special) specials.push_back(&a);
  }
  std::sort(specials.begin(), specials.end(),
            [](const impl::AddedToken* a, const impl::AddedToken* b) { return a->id < b->id; });
  std::vector<std::string> out;
  for (const auto* a : specials) out.push_back(a->content);
  return out;
}

std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad; }
const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace strata::agent
