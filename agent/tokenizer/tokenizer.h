// Tokenizer read from a Hugging Face `tokenizer.json`: byte-level BPE (GPT-2, Qwen2/Qwen2.5,
// Llama-3 and strata's own train_tokenizer output) and WordPiece (BERT, MiniLM, E5, bge),
// giving the same ids as the Python `tokenizers` library (docs/TOKENIZER.md).
//
//   auto tok = strata::agent::Tokenizer::from_file("models/qwen/tokenizer.json");
//   std::vector<int32_t> ids = tok.encode("<|im_start|>user\nHi<|im_end|>\n");
//   std::string text = tok.decode(ids);
//
// Supported in tokenizer.json (anything else is a strata::Error naming the file and the field):
//   model          BPE: vocab, merges ("a b" strings or ["a", "b"] pairs), ignore_merges,
//                  unk_token; not byte_fallback, dropout, continuing_subword_prefix or
//                  end_of_word_suffix. WordPiece: vocab, unk_token, continuing_subword_prefix,
//                  max_input_chars_per_word.
//   normalizer     null, NFC, NFD, NFKC, NFKD (ICU), BertNormalizer, Lowercase, StripAccents, or
//                  a Sequence of those.
//   pre_tokenizer  BPE: ByteLevel (use_regex: GPT-2's pattern; add_prefix_space), or a Sequence
//                  of Split (Regex or String pattern, behavior Isolated or Removed, invert false)
//                  ending in ByteLevel. Regexes run through PCRE2 (UTF, UCP, JIT).
//                  WordPiece: BertPreTokenizer, WhitespaceSplit, or a Sequence of those/Split.
//   added_tokens   special or not, with single_word, lstrip, rstrip, normalized.
//   post_processor null, ByteLevel, TemplateProcessing (its `single` template, see wrap_single),
//                  BertProcessing ([CLS] ... [SEP]).
//   decoder        ByteLevel for BPE; WordPiece (prefix, cleanup) for WordPiece.
//   truncation     ignored (like transformers, the caller chooses: encode_single's max_length).
// BPE text is bytes: invalid UTF-8 is encoded byte by byte and decode() gives the bytes back, so
// decode(encode(s)) == s for every string s. WordPiece text is normalized (lower-cased, accents
// stripped, invalid bytes dropped as U+FFFD), so decode() gives the normalized words back.
//
// eos/bos/pad come from tokenizer_config.json beside the file when it exists, else from the
// usual token names (<|endoftext|>, <|end_of_text|>, <|begin_of_text|>, <s>, </s>, <pad>).
//
// A Tokenizer is immutable after loading; encode() and decode() may be called from several
// threads at once (the per-word cache is guarded).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::agent {

namespace impl {
class TokenizerImpl;
}

class Tokenizer {
 public:
  // Reads `path` (a tokenizer.json) and, if present, tokenizer_config.json in the same folder.
  static Tokenizer from_file(const std::string& path);
  // Parses tokenizer.json text; `source` names it in error messages.
  static Tokenizer from_json(const std::string& json_text, const std::string& source = "<string>");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text`, without a post-processor template (like `tokenizers`' encode with
  // add_special_tokens=False). With allow_special=false, special added tokens in the text are
  // tokenized as ordinary text (non-special added tokens still match).
  std::vector<int32_t> encode(std::string_view text, bool allow_special = true) const;
  // Adds the post-processor's single-sequence template (e.g. Llama-3's <|begin_of_text|>) around
  // `ids`; a no-op for tokenizers without TemplateProcessing.
  std::vector<int32_t> wrap_single(const std::vector<int32_t>& ids) const;
  // The model's input for one text: encode(text) truncated on the right so that, with the
  // post-processor's template added (BERT's [CLS] ... [SEP]), it has at most `max_length` ids
  // (0: no limit). Like `tokenizers` with truncation max_length and add_special_tokens=True.
  std::vector<int32_t> encode_single(std::string_view text, size_t max_length = 0) const;
  // The bytes of `ids`; unknown ids are skipped, special tokens too when skip_special.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // -1 when absent. Looks at added tokens first, then the model vocabulary.
  int32_t token_to_id(std::string_view token) const;
  // The vocabulary string of `id` (byte-level form, e.g. "Ġthe"); empty when absent.
  std::string id_to_token(int32_t id) const;
  // One past the largest id (model vocabulary plus added tokens): the embedding rows needed.
  int32_t vocab_size() const;
  bool is_special(int32_t id) const;
  // The contents of all special added tokens, in id order.
  std::vector<std::string> special_tokens() const;

  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> pad_id() const;

  // Where it was loaded from ("<string>" for from_json without a name).
  const std::string& source() const;

 private:
  explicit Tokenizer(std::unique_ptr<impl::TokenizerImpl> impl);
  std::unique_ptr<impl::TokenizerImpl> impl_;
};

}  // namespace strata::agent
