// tokenizer.json and tokenizer_config.json -> TokenizerImpl. The only place that sees JSON.
#include <nlohmann/json.hpp>

#include "agent/tokenizer/impl/tokenizer_bpe.h"
#include "agent/tokenizer/impl/tokenizer_impl.h"
#include "agent/tokenizer/impl/tokenizer_wordpiece.h"
#include "core/error.h"

namespace strata::agent::impl {

namespace {

using nlohmann::json;

// Error context: "tokenizer.json: model.type \"Unigram\" is not supported".
#define TOK_CHECK(cond, msg) STRATA_CHECK(cond, source << ": " << msg)

const json* field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool is_null_or_absent(const json* j) { return j == nullptr || j->is_null(); }

bool get_bool(const json& obj, const char* key, bool fallback, const std::string& where,
              const std::string& source) {
  const json* j = field(obj, key);
  if (is_null_or_absent(j)) return fallback;
  TOK_CHECK(j->is_boolean(), where << "." << key << " must be true or false, got " << j->dump());
  return j->get<bool>();
}

std::string get_type(const json& obj, const std::string& where, const std::string& source) {
  const json* t = field(obj, "type");
  TOK_CHECK(t != nullptr && t->is_string(), where << ".type is missing");
  return t->get<std::string>();
}

std::vector<NormalizerStage> read_normalizer(const json* j, const std::string& where,
                                             const std::string& source) {
  if (is_null_or_absent(j)) return {};
  TOK_CHECK(j->is_object(), where << " must be an object or null");
  const std::string type = get_type(*j, where, source);
  NormalizerStage st;
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    st.form = type == "NFC"    ? NormalForm::kNFC
              : type == "NFD"  ? NormalForm::kNFD
              : type == "NFKC" ? NormalForm::kNFKC
                               : NormalForm::kNFKD;
    return {st};
  }
  if (type == "BertNormalizer") {
    st.kind = NormalizerStage::Kind::kBert;
    st.bert.clean_text = get_bool(*j, "clean_text", true, where, source);
    st.bert.handle_chinese_chars = get_bool(*j, "handle_chinese_chars", true, where, source);
    st.bert.lowercase = get_bool(*j, "lowercase", true, where, source);
    // null: strip accents exactly when lower-casing (BERT's uncased models).
    st.bert.strip_accents = get_bool(*j, "strip_accents", st.bert.lowercase, where, source);
    return {st};
  }
  if (type == "Lowercase") {
    st.kind = NormalizerStage::Kind::kLowercase;
    return {st};
  }
  if (type == "StripAccents") {
    st.kind = NormalizerStage::Kind::kStripAccents;
    return {st};
  }
  if (type == "Sequence") {
    const json* list = field(*j, "normalizers");
    TOK_CHECK(list != nullptr && list->is_array(), where << ".normalizers is missing");
    std::vector<NormalizerStage> stages;
    for (size_t i = 0; i < list->size(); ++i) {
      auto part =
          read_normalizer(&(*list)[i], where + ".normalizers[" + std::to_string(i) + "]", source);
      stages.insert(stages.end(), part.begin(), part.end());
    }
    return stages;
  }
  TOK_CHECK(false, where << ".type \"" << type
                         << "\" is not supported (supported: null, NFC, NFD, NFKC, NFKD, "
                            "BertNormalizer, Lowercase, StripAccents, Sequence of those)");
  return {};
}

void read_pre_tokenizer(const json& j, const std::string& where, const std::string& source,
                        std::vector<PreTokenizerStage>& stages) {
  TOK_CHECK(j.is_object(), where << " must be an object");
  const std::string type = get_type(j, where, source);
  if (type == "Sequence") {
    const json* list = field(j, "pretokenizers");
    TOK_CHECK(list != nullptr && list->is_array(), where << ".pretokenizers is missing");
    for (size_t i = 0; i < list->size(); ++i) {
      read_pre_tokenizer((*list)[i], where + ".pretokenizers[" + std::to_string(i) + "]", source,
                         stages);
    }
    return;
  }
  if (type == "ByteLevel") {
    PreTokenizerStage st;
    st.kind = PreTokenizerStage::Kind::kByteLevel;
    st.add_prefix_space = get_bool(j, "add_prefix_space", true, where, source);
    if (get_bool(j, "use_regex", true, where, source)) {
      st.regex = std::make_shared<Regex>(kGpt2Pattern);
    }
    stages.push_back(std::move(st));
    return;
  }
  if (type == "BertPreTokenizer" || type == "WhitespaceSplit") {
    PreTokenizerStage st;
    st.kind = type == "BertPreTokenizer" ? PreTokenizerStage::Kind::kBert
                                         : PreTokenizerStage::Kind::kWhitespaceSplit;
    stages.push_back(std::move(st));
    return;
  }
  if (type == "Split") {
    PreTokenizerStage st;
    st.kind = PreTokenizerStage::Kind::kSplit;
    const json* pat = field(j, "pattern");
    TOK_CHECK(pat != nullptr && pat->is_object(), where << ".pattern is missing");
    if (const json* re = field(*pat, "Regex"); re != nullptr && re->is_string()) {
      st.regex = std::make_shared<Regex>(re->get<std::string>());
    } else if (const json* lit = field(*pat, "String"); lit != nullptr && lit->is_string()) {
      st.regex = std::make_shared<Regex>(regex_escape(lit->get<std::string>()));
    } else {
      TOK_CHECK(false, where << ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
    }
    const json* beh = field(j, "behavior");
    TOK_CHECK(beh != nullptr && beh->is_string(), where << ".behavior is missing");
    const std::string b = beh->get<std::string>();
    if (b == "Isolated") {
      st.behavior = SplitBehavior::kIsolated;
    } else if (b == "Removed") {
      st.behavior = SplitBehavior::kRemoved;
    } else {
      TOK_CHECK(false, where << ".behavior \"" << b
                             << "\" is not supported (supported: Isolated, Removed)");
    }
    TOK_CHECK(!get_bool(j, "invert", false, where, source),
              where << ".invert true is not supported");
    stages.push_back(std::move(st));
    return;
  }
  TOK_CHECK(false, where << ".type \"" << type
                         << "\" is not supported (supported: ByteLevel, Split, BertPreTokenizer, "
                            "WhitespaceSplit, Sequence)");
}

std::vector<std::pair<std::string, std::string>> read_merges(const json& list,
                                                             const std::string& source) {
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      TOK_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos,
                "model.merges[" << i << "] \"" << s << "\" is not two tokens split by one space");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      TOK_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                "model.merges[" << i << "] must be \"a b\" or [\"a\", \"b\"], got " << m.dump());
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    }
  }
  return merges;
}

std::unordered_map<std::string, int32_t> read_vocab(const json& j, const std::string& source) {
  const json* vocab = field(j, "vocab");
  TOK_CHECK(vocab != nullptr && vocab->is_object(), "model.vocab is missing or not an object");
  std::unordered_map<std::string, int32_t> v;
  v.reserve(vocab->size());
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    TOK_CHECK(it.value().is_number_integer(),
              "model.vocab[\"" << it.key() << "\"] must be an integer id");
    v.emplace(it.key(), it.value().get<int32_t>());
  }
  return v;
}

std::unique_ptr<SubwordModel> read_wordpiece(const json& j, const std::string& source) {
  const json* unk = field(j, "unk_token");
  TOK_CHECK(unk != nullptr && unk->is_string(), "model.unk_token is missing (WordPiece needs one)");
  std::string prefix = "##";
  if (const json* p = field(j, "continuing_subword_prefix"); !is_null_or_absent(p)) {
    TOK_CHECK(p->is_string(), "model.continuing_subword_prefix must be a string");
    prefix = p->get<std::string>();
  }
  size_t max_chars = 100;
  if (const json* m = field(j, "max_input_chars_per_word"); !is_null_or_absent(m)) {
    TOK_CHECK(m->is_number_unsigned(), "model.max_input_chars_per_word must be a count");
    max_chars = m->get<size_t>();
  }
  try {
    return std::make_unique<WordPieceModel>(read_vocab(j, source), unk->get<std::string>(), prefix,
                                            max_chars);
  } catch (const Error& e) {
    TOK_CHECK(false, "model: " << e.what());
  }
  return nullptr;
}

std::unique_ptr<SubwordModel> read_model(const json* j, const std::string& source) {
  TOK_CHECK(j != nullptr && j->is_object(), "model is missing");
  const json* type = field(*j, "type");
  // Old files leave the type out; a model with merges is BPE.
  const std::string t = type != nullptr && type->is_string() ? type->get<std::string>()
                        : field(*j, "merges") != nullptr     ? "BPE"
                                                             : "";
  TOK_CHECK(!t.empty(), "model.type is missing");
  if (t == "WordPiece") return read_wordpiece(*j, source);
  TOK_CHECK(t == "BPE", "model.type \"" << t << "\" is not supported (BPE or WordPiece)");
  const json* dropout = field(*j, "dropout");
  TOK_CHECK(is_null_or_absent(dropout) || (dropout->is_number() && dropout->get<double>() == 0.0),
            "model.dropout " << dropout->dump() << " is not supported (only null)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* s = field(*j, key);
    TOK_CHECK(is_null_or_absent(s) || (s->is_string() && s->get<std::string>().empty()),
              "model." << key << " " << s->dump() << " is not supported (only null or \"\")");
  }
  TOK_CHECK(!get_bool(*j, "byte_fallback", false, "model", source),
            "model.byte_fallback true is not supported");
  std::unordered_map<std::string, int32_t> v = read_vocab(*j, source);
  const json* merges = field(*j, "merges");
  TOK_CHECK(merges != nullptr && merges->is_array(), "model.merges is missing or not a list");
  std::string unk;
  if (const json* u = field(*j, "unk_token"); !is_null_or_absent(u)) {
    TOK_CHECK(u->is_string(), "model.unk_token must be a string or null");
    unk = u->get<std::string>();
  }
  const bool ignore_merges = get_bool(*j, "ignore_merges", false, "model", source);
  const bool fuse_unk = get_bool(*j, "fuse_unk", false, "model", source);
  try {
    return std::make_unique<BpeModel>(std::move(v), read_merges(*merges, source), ignore_merges,
                                      unk, fuse_unk);
  } catch (const Error& e) {
    TOK_CHECK(false, "model: " << e.what());
  }
  return nullptr;
}

std::vector<AddedToken> read_added_tokens(const json* j, const std::string& source) {
  std::vector<AddedToken> out;
  if (is_null_or_absent(j)) return out;
  TOK_CHECK(j->is_array(), "added_tokens must be a list");
  for (size_t i = 0; i < j->size(); ++i) {
    const json& t = (*j)[i];
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    const json* id = field(t, "id");
    const json* content = field(t, "content");
    TOK_CHECK(id != nullptr && id->is_number_integer() && id->get<int64_t>() >= 0,
              where << ".id is missing or not a non-negative integer");
    TOK_CHECK(content != nullptr && content->is_string() && !content->get<std::string>().empty(),
              where << ".content is missing or empty");
    AddedToken a;
    a.id = id->get<int32_t>();
    a.content = content->get<std::string>();
    a.special = get_bool(t, "special", false, where, source);
    a.single_word = get_bool(t, "single_word", false, where, source);
    a.lstrip = get_bool(t, "lstrip", false, where, source);
    a.rstrip = get_bool(t, "rstrip", false, where, source);
    // tokenizers' default: special tokens are not normalized, others are.
    a.normalized = get_bool(t, "normalized", !a.special, where, source);
    out.push_back(std::move(a));
  }
  return out;
}

// TemplateProcessing's `single`: [SpecialToken..., Sequence A, SpecialToken...].
void read_post_processor(const json* j, const std::string& source, TokenizerImpl& tok) {
  if (is_null_or_absent(j)) return;
  const std::string type = get_type(*j, "post_processor", source);
  if (type == "ByteLevel") return;  // only moves offsets
  if (type == "Sequence") {
    const json* list = field(*j, "processors");
    TOK_CHECK(list != nullptr && list->is_array(), "post_processor.processors is missing");
    for (const json& p : *list) read_post_processor(&p, source, tok);
    return;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    // {"cls": ["[CLS]", 101], "sep": ["[SEP]", 102]}: [CLS] $A [SEP].
    auto special = [&](const char* key) {
      const json* p = field(*j, key);
      TOK_CHECK(p != nullptr && p->is_array() && p->size() == 2 && (*p)[1].is_number_integer(),
                "post_processor." << key << " must be [token, id]");
      return (*p)[1].get<int32_t>();
    };
    TOK_CHECK(type == "BertProcessing", "post_processor.type \"RobertaProcessing\" is not supported");
    tok.template_prefix.push_back(special("cls"));
    tok.template_suffix.push_back(special("sep"));
    return;
  }
  TOK_CHECK(type == "TemplateProcessing", "post_processor.type \""
                                              << type
                                              << "\" is not supported (supported: null, ByteLevel, "
                                                 "TemplateProcessing, BertProcessing, Sequence of "
                                                 "those)");
  const json* single = field(*j, "single");
  TOK_CHECK(single != nullptr && single->is_array(), "post_processor.single is missing");
  const json* specials = field(*j, "special_tokens");
  bool seen_a = false;
  for (const json& item : *single) {
    if (field(item, "Sequence") != nullptr) {
      TOK_CHECK(!seen_a, "post_processor.single names the sequence twice");
      seen_a = true;
      continue;
    }
    const json* sp = field(item, "SpecialToken");
    TOK_CHECK(sp != nullptr && field(*sp, "id") != nullptr,
              "post_processor.single item " << item.dump() << " is not understood");
    const std::string name = (*field(*sp, "id")).get<std::string>();
    std::vector<int32_t> ids;
    const json* entry = specials != nullptr ? field(*specials, name.c_str()) : nullptr;
    if (entry != nullptr && field(*entry, "ids") != nullptr) {
      for (const json& id : *field(*entry, "ids")) ids.push_back(id.get<int32_t>());
    } else {
      const int32_t id = tok.token_to_id(name);
      TOK_CHECK(id >= 0, "post_processor special token \"" << name << "\" is unknown");
      ids.push_back(id);
    }
    auto& dst = seen_a ? tok.template_suffix : tok.template_prefix;
    dst.insert(dst.end(), ids.begin(), ids.end());
  }
}

std::optional<int32_t> config_token(const json& cfg, const char* key, const TokenizerImpl& tok,
                                    const std::string& source) {
  const json* j = field(cfg, key);
  if (is_null_or_absent(j)) return std::nullopt;
  std::string name;
  if (j->is_string()) {
    name = j->get<std::string>();
  } else if (const json* c = field(*j, "content"); c != nullptr && c->is_string()) {
    name = c->get<std::string>();
  } else {
    TOK_CHECK(false, key << " must be a string or {\"content\": ...}");
  }
  const int32_t id = tok.token_to_id(name);
  TOK_CHECK(id >= 0, key << " \"" << name << "\" is not in the tokenizer's vocabulary");
  return id;
}

std::optional<int32_t> first_known(const TokenizerImpl& tok,
                                   std::initializer_list<const char*> names) {
  for (const char* n : names) {
    const int32_t id = tok.token_to_id(n);
    if (id >= 0) return id;
  }
  return std::nullopt;
}

}  // namespace

std::unique_ptr<TokenizerImpl> read_tokenizer_json(const std::string& json_text,
                                                   const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    TOK_CHECK(false, "not valid JSON: " << e.what());
  }
  TOK_CHECK(root.is_object(), "the top level must be a JSON object");
  auto tok = std::make_unique<TokenizerImpl>();
  tok->source = source;
  tok->model = read_model(field(root, "model"), source);
  tok->normalizer = Normalizer(read_normalizer(field(root, "normalizer"), "normalizer", source));

  const bool wordpiece = dynamic_cast<const WordPieceModel*>(tok->model.get()) != nullptr;
  const json* pre = field(root, "pre_tokenizer");
  std::vector<PreTokenizerStage> stages;
  if (!is_null_or_absent(pre)) {
    try {
      read_pre_tokenizer(*pre, "pre_tokenizer", source, stages);
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.rfind(source, 0) == 0) throw;
      TOK_CHECK(false, "pre_tokenizer: " << what);
    }
  }
  for (size_t i = 0; i + 1 < stages.size(); ++i) {
    TOK_CHECK(stages[i].kind != PreTokenizerStage::Kind::kByteLevel,
              "pre_tokenizer: ByteLevel must be the last pre-tokenizer of the Sequence");
  }
  const bool byte_level = !stages.empty() && stages.back().kind == PreTokenizerStage::Kind::kByteLevel;
  if (wordpiece) {
    TOK_CHECK(!byte_level, "pre_tokenizer ByteLevel with a WordPiece model is not supported");
  } else {
    TOK_CHECK(!is_null_or_absent(pre),
              "pre_tokenizer null is not supported (a byte-level BPE "
              "tokenizer needs a ByteLevel pre-tokenizer)");
    TOK_CHECK(byte_level, "pre_tokenizer without ByteLevel is not supported (only byte-level BPE)");
  }
  tok->pre_tokenizer = PreTokenizer(std::move(stages));

  const json* dec = field(root, "decoder");
  if (wordpiece) {
    tok->decoder = TokenizerImpl::Decoder::kWordPiece;
    if (!is_null_or_absent(dec)) {
      const std::string dec_type = get_type(*dec, "decoder", source);
      TOK_CHECK(dec_type == "WordPiece",
                "decoder.type \"" << dec_type << "\" is not supported with WordPiece (only WordPiece)");
      if (const json* p = field(*dec, "prefix"); !is_null_or_absent(p)) {
        TOK_CHECK(p->is_string(), "decoder.prefix must be a string");
        tok->decoder_prefix = p->get<std::string>();
      }
      tok->decoder_cleanup = get_bool(*dec, "cleanup", true, "decoder", source);
    }
  } else {
    TOK_CHECK(!is_null_or_absent(dec), "decoder null is not supported (only ByteLevel)");
    const std::string dec_type = get_type(*dec, "decoder", source);
    TOK_CHECK(dec_type == "ByteLevel",
              "decoder.type \"" << dec_type << "\" is not supported (only ByteLevel)");
  }

  tok->added = read_added_tokens(field(root, "added_tokens"), source);
  tok->index_added_tokens();
  read_post_processor(field(root, "post_processor"), source, *tok);
  read_tokenizer_config(*tok, "", source);
  return tok;
}

void read_tokenizer_config(TokenizerImpl& tok, const std::string& config_text,
                           const std::string& source) {
  tok.eos = first_known(tok, {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"});
  tok.bos = first_known(tok, {"<|begin_of_text|>", "<s>", "<bos>"});
  tok.pad = first_known(tok, {"<pad>", "<|pad|>", "[PAD]"});
  if (config_text.empty()) return;
  json cfg;
  try {
    cfg = json::parse(config_text);
  } catch (const json::exception& e) {
    TOK_CHECK(false, "not valid JSON: " << e.what());
  }
  TOK_CHECK(cfg.is_object(), "the top level must be a JSON object");
  // A key present with null means "none"; an absent key keeps the guess.
  if (field(cfg, "eos_token") != nullptr) tok.eos = config_token(cfg, "eos_token", tok, source);
  if (field(cfg, "bos_token") != nullptr) tok.bos = config_token(cfg, "bos_token", tok, source);
  if (field(cfg, "pad_token") != nullptr) tok.pad = config_token(cfg, "pad_token", tok, source);
}

}  // namespace strata::agent::impl

#undef TOK_CHECK
