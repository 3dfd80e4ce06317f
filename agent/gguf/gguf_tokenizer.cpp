#include "agent/gguf/gguf_tokenizer.h"

#include <nlohmann/json.hpp>

#include <map>

#include "core/error.h"

namespace strata::agent::gguf {

const char* const kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

namespace {

using nlohmann::json;

constexpr int kTypeNormal = 1;
constexpr int kTypeControl = 3;
constexpr int kTypeUserDefined = 4;

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

json split_isolated(const std::string& regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
}

std::vector<std::string> string_array(const GgufFile& f, const std::string& key) {
  const Value& v = f.get(key);
  STRATA_CHECK(v.type == ValueType::kArray && v.elem_type == ValueType::kString,
               f.path() << ": metadata '" << key << "' must be an array of strings");
  std::vector<std::string> out;
  out.reserve(v.array.size());
  for (const Value& e : v.array) out.push_back(e.s);
  return out;
}

int64_t optional_id(const GgufFile& f, const std::string& key, int64_t n_tokens) {
  const Value* v = f.find(key);
  if (v == nullptr) return -1;
  STRATA_CHECK(v->is_integer(), f.path() << ": metadata '" << key << "' must be an integer");
  const int64_t id = v->as_int();
  STRATA_CHECK(id >= 0 && id < n_tokens, f.path() << ": metadata '" << key << "' = " << id
                                                  << " is not a token id (vocabulary of " << n_tokens << ")");
  return id;
}

bool optional_bool(const GgufFile& f, const std::string& key, bool dflt) {
  const Value* v = f.find(key);
  if (v == nullptr) return dflt;
  STRATA_CHECK(v->type == ValueType::kBool, f.path() << ": metadata '" << key << "' must be a bool");
  return v->i != 0;
}

}  // namespace

HfTokenizerFiles tokenizer_from_gguf(const GgufFile& f, int64_t model_max_length) {
  const std::string model = f.get("tokenizer.ggml.model").s;
  STRATA_CHECK(model == "gpt2", f.path() << ": tokenizer.ggml.model '" << model
                                         << "' is not supported (only byte-level BPE, 'gpt2')");
  const std::string pre = f.has("tokenizer.ggml.pre") ? f.get("tokenizer.ggml.pre").s : "gpt2";
  const std::vector<std::string> tokens = string_array(f, "tokenizer.ggml.tokens");
  const std::vector<std::string> merges = string_array(f, "tokenizer.ggml.merges");
  const int64_t n = static_cast<int64_t>(tokens.size());
  STRATA_CHECK(n > 0, f.path() << ": tokenizer.ggml.tokens is empty");
  std::vector<int> types(tokens.size(), kTypeNormal);
  if (const Value* t = f.find("tokenizer.ggml.token_type")) {
    STRATA_CHECK(t->type == ValueType::kArray && t->array.size() == tokens.size() && t->elem_type != ValueType::kString &&
                     t->elem_type != ValueType::kArray,
                 f.path() << ": tokenizer.ggml.token_type must be " << n << " integers");
    for (size_t i = 0; i < types.size(); ++i) types[i] = static_cast<int>(t->array[i].as_int());
  }

  json pre_tok, normalizer = nullptr;
  if (pre == "gpt2" || pre == "default") {
    pre_tok = byte_level(true);
  } else if (pre == "smollm") {
    pre_tok = {{"type", "Sequence"}, {"pretokenizers", json::array({split_isolated("\\p{N}"), byte_level(true)})}};
  } else if (pre == "qwen2") {
    pre_tok = {{"type", "Sequence"}, {"pretokenizers", json::array({split_isolated(kQwen2Regex), byte_level(false)})}};
    normalizer = {{"type", "NFC"}};
  } else if (pre == "llama-bpe" || pre == "llama3") {
    pre_tok = {{"type", "Sequence"}, {"pretokenizers", json::array({split_isolated(kLlama3Regex), byte_level(false)})}};
  } else {
    STRATA_FAIL(f.path() << ": tokenizer.ggml.pre '" << pre
                         << "' is not supported (gpt2, smollm, qwen2, llama-bpe)");
  }

  json vocab = json::object();
  json added = json::array();
  for (int64_t i = 0; i < n; ++i) {
    const std::string& tok = tokens[static_cast<size_t>(i)];
    STRATA_CHECK(!tok.empty(), f.path() << ": token " << i << " is empty");
    STRATA_CHECK(!vocab.contains(tok), f.path() << ": token '" << tok << "' appears twice (ids "
                                                << vocab[tok].get<int64_t>() << " and " << i << ")");
    vocab[tok] = i;
    const int type = types[static_cast<size_t>(i)];
    if (type == kTypeControl || type == kTypeUserDefined) {
      added.push_back({{"id", i}, {"content", tok}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", type != kTypeControl}, {"special", type == kTypeControl}});
    }
  }
  const int64_t bos = optional_id(f, "tokenizer.ggml.bos_token_id", n);
  const int64_t eos = optional_id(f, "tokenizer.ggml.eos_token_id", n);
  const int64_t unk = optional_id(f, "tokenizer.ggml.unknown_token_id", n);
  const int64_t pad = optional_id(f, "tokenizer.ggml.padding_token_id", n);
  const bool add_bos = optional_bool(f, "tokenizer.ggml.add_bos_token", false) && bos >= 0;

  json post;
  if (add_bos) {
    const std::string b = tokens[static_cast<size_t>(bos)];
    post = {{"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", b}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"pair", json::array({{{"SpecialToken", {{"id", b}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                  {{"SpecialToken", {{"id", b}, {"type_id", 1}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
            {"special_tokens", {{b, {{"id", b}, {"ids", {bos}}, {"tokens", {b}}}}}}};
  } else {
    post = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  }
  json tj = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", normalizer},
      {"pre_tokenizer", pre_tok},
      {"post_processor", post},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", unk >= 0 ? json(tokens[static_cast<size_t>(unk)]) : json(nullptr)},
        {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false},
        {"ignore_merges", pre == "llama-bpe" || pre == "llama3"}, {"vocab", vocab}, {"merges", merges}}},
  };
  auto name_of = [&](int64_t id) { return id >= 0 ? json(tokens[static_cast<size_t>(id)]) : json(nullptr); };
  json cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
              {"add_bos_token", add_bos},
              {"add_eos_token", false},
              {"bos_token", name_of(bos)},
              {"eos_token", name_of(eos)},
              {"unk_token", name_of(unk)},
              {"pad_token", name_of(pad)},
              {"clean_up_tokenization_spaces", false},
              {"model_max_length", model_max_length}};
  if (const Value* t = f.find("tokenizer.chat_template")) cfg["chat_template"] = t->s;
  return {tj.dump(1, ' ', false, json::error_handler_t::replace) + "\n",
          cfg.dump(2, ' ', false, json::error_handler_t::replace) + "\n"};
}

namespace {

std::vector<std::pair<std::string, Value>> tokenizer_to_gguf_unchecked(const std::string& tokenizer_json,
                                                                       const std::string& tokenizer_config_json,
                                                                       const std::string& source) {
  json tj;
  try {
    tj = json::parse(tokenizer_json);
  } catch (const json::exception& e) {
    STRATA_FAIL(source << "/tokenizer.json is not valid JSON: " << e.what());
  }
  const json& model = tj.at("model");
  STRATA_CHECK(model.value("type", std::string("BPE")) == "BPE",
               source << "/tokenizer.json: only BPE tokenizers can be exported to GGUF");
  // Which named pre-tokenizer is this?
  std::string pre;
  const json& pt = tj.at("pre_tokenizer");
  const std::string pt_type = pt.is_object() ? pt.value("type", std::string()) : std::string();
  auto split_regex = [](const json& s) -> std::string {
    if (!s.is_object() || s.value("type", std::string()) != "Split") return "";
    const json& p = s.at("pattern");
    return p.contains("Regex") ? p.at("Regex").get<std::string>() : "";
  };
  if (pt_type == "ByteLevel") {
    pre = "gpt2";
  } else if (pt_type == "Sequence" && pt.at("pretokenizers").size() == 2) {
    const json& a = pt.at("pretokenizers")[0];
    const std::string re = split_regex(a);
    if (a.value("type", std::string()) == "Digits" || re == "\\p{N}") pre = "smollm";
    else if (re == kQwen2Regex) pre = "qwen2";
    else if (re == kLlama3Regex) pre = "llama-bpe";
  }
  STRATA_CHECK(!pre.empty(), source << "/tokenizer.json: the pre-tokenizer " << pt.dump().substr(0, 200)
                                    << " is not one GGUF can name (gpt2, smollm, qwen2, llama-bpe)");

  std::map<int64_t, std::string> by_id;
  std::map<int64_t, int> type_of;
  for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) by_id[it.value().get<int64_t>()] = it.key();
  if (tj.contains("added_tokens") && tj.at("added_tokens").is_array()) {
    for (const json& a : tj.at("added_tokens")) {
      const int64_t id = a.at("id").get<int64_t>();
      by_id[id] = a.at("content").get<std::string>();
      type_of[id] = a.value("special", false) ? kTypeControl : kTypeUserDefined;
    }
  }
  STRATA_CHECK(!by_id.empty() && by_id.begin()->first == 0 &&
                   by_id.rbegin()->first == static_cast<int64_t>(by_id.size()) - 1,
               source << "/tokenizer.json: token ids are not 0.." << by_id.size() - 1 << " without gaps");
  std::vector<Value> toks, types, merges;
  std::map<std::string, int64_t> id_of;
  for (const auto& [id, s] : by_id) {
    toks.push_back(Value::of_string(s));
    types.push_back(Value::of_i32(type_of.count(id) ? type_of[id] : kTypeNormal));
    id_of[s] = id;
  }
  for (const json& m : model.at("merges")) {
    merges.push_back(Value::of_string(m.is_string() ? m.get<std::string>()
                                                    : m[0].get<std::string>() + " " + m[1].get<std::string>()));
  }
  std::vector<std::pair<std::string, Value>> out;
  out.emplace_back("tokenizer.ggml.model", Value::of_string("gpt2"));
  out.emplace_back("tokenizer.ggml.pre", Value::of_string(pre));
  out.emplace_back("tokenizer.ggml.tokens", Value::of_array(ValueType::kString, std::move(toks)));
  out.emplace_back("tokenizer.ggml.token_type", Value::of_array(ValueType::kInt32, std::move(types)));
  out.emplace_back("tokenizer.ggml.merges", Value::of_array(ValueType::kString, std::move(merges)));

  json cfg = json::object();
  if (!tokenizer_config_json.empty()) {
    try {
      cfg = json::parse(tokenizer_config_json);
    } catch (const json::exception& e) {
      STRATA_FAIL(source << "/tokenizer_config.json is not valid JSON: " << e.what());
    }
  }
  auto token_id = [&](const char* key) -> int64_t {
    if (!cfg.contains(key) || cfg.at(key).is_null()) return -1;
    const json& t = cfg.at(key);
    const std::string s = t.is_string() ? t.get<std::string>() : t.value("content", std::string());
    auto it = id_of.find(s);
    STRATA_CHECK(it != id_of.end(), source << "/tokenizer_config.json: " << key << " '" << s << "' is not in the vocabulary");
    return it->second;
  };
  const std::pair<const char*, const char*> ids[] = {{"bos_token", "tokenizer.ggml.bos_token_id"},
                                                     {"eos_token", "tokenizer.ggml.eos_token_id"},
                                                     {"unk_token", "tokenizer.ggml.unknown_token_id"},
                                                     {"pad_token", "tokenizer.ggml.padding_token_id"}};
  for (const auto& [key, gkey] : ids) {
    const int64_t id = token_id(key);
    if (id >= 0) out.emplace_back(gkey, Value::of_u32(static_cast<uint32_t>(id)));
  }
  out.emplace_back("tokenizer.ggml.add_bos_token", Value::of_bool(cfg.value("add_bos_token", false)));
  if (cfg.contains("chat_template") && cfg.at("chat_template").is_string())
    out.emplace_back("tokenizer.chat_template", Value::of_string(cfg.at("chat_template").get<std::string>()));
  return out;
}

}  // namespace

std::vector<std::pair<std::string, Value>> tokenizer_to_gguf(const std::string& tokenizer_json,
                                                             const std::string& tokenizer_config_json,
                                                             const std::string& source) {
  try {
    return tokenizer_to_gguf_unchecked(tokenizer_json, tokenizer_config_json, source);
  } catch (const json::exception& e) {
    // A key missing or of the wrong type, e.g. a number for model.type.
    STRATA_FAIL(source << "/tokenizer.json or tokenizer_config.json has an unexpected layout: " << e.what());
  }
}

}  // namespace strata::agent::gguf
