// The loaded parts of a Tokenizer (see agent/tokenizer/tokenizer.h). Built once by
// read_tokenizer_json().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/tokenizer/impl/tokenizer_added.h"
#include "agent/tokenizer/impl/tokenizer_model.h"
#include "agent/tokenizer/impl/tokenizer_pipeline.h"

namespace strata::agent::impl {

class TokenizerImpl {
 public:
  std::string source;
  std::unique_ptr<SubwordModel> model;  // BpeModel or WordPieceModel
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::vector<AddedToken> added;  // as listed in the file
  std::unordered_map<std::string, int32_t> added_ids;
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index into `added`
  AddedTokenMatcher raw_matcher;                    // added tokens with normalized=false
  AddedTokenMatcher normalized_matcher;             // added tokens with normalized=true
  std::vector<int32_t> template_prefix;             // TemplateProcessing `single` around $A
  std::vector<int32_t> template_suffix;
  std::optional<int32_t> eos, bos, pad;
  // The decoder: ByteLevel (byte-level BPE) or WordPiece (join words with spaces, glue
  // continuations without their prefix, and with `cleanup` tokenizers' English clean-up).
  enum class Decoder { kByteLevel, kWordPiece } decoder = Decoder::kByteLevel;
  std::string decoder_prefix = "##";
  bool decoder_cleanup = true;

  // Call after `added` is filled.
  void index_added_tokens();
  void encode(std::string_view text, bool allow_special, std::vector<int32_t>& out) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const;
  int32_t token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;
  int32_t id_end() const;
};

// Parses tokenizer.json text. Throws strata::Error naming `source` and the offending field.
std::unique_ptr<TokenizerImpl> read_tokenizer_json(const std::string& json_text,
                                                   const std::string& source);
// Fills eos/bos/pad from tokenizer_config.json text (empty text: name-based guesses only).
void read_tokenizer_config(TokenizerImpl& tok, const std::string& config_text,
                           const std::string& source);

}  // namespace strata::agent::impl
