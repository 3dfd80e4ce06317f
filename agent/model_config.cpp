#include "agent/model_config.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace strata::agent {
namespace {

using nlohmann::json;

const json& require(const json& j, const char* key) {
  STRATA_CHECK(j.contains(key) && !j.at(key).is_null(),
               "config.json: required key '" << key << "' is missing");
  return j.at(key);
}

int64_t require_int(const json& j, const char* key) {
  const json& v = require(j, key);
  STRATA_CHECK(v.is_number_integer(), "config.json: '" << key << "' must be an integer, got " << v.dump());
  return v.get<int64_t>();
}

double number_or(const json& j, const char* key, double dflt) {
  if (!j.contains(key) || j.at(key).is_null()) return dflt;
  STRATA_CHECK(j.at(key).is_number(), "config.json: '" << key << "' must be a number, got " << j.at(key).dump());
  return j.at(key).get<double>();
}

bool bool_or(const json& j, const char* key, bool dflt) {
  if (!j.contains(key) || j.at(key).is_null()) return dflt;
  STRATA_CHECK(j.at(key).is_boolean(), "config.json: '" << key << "' must be true/false, got " << j.at(key).dump());
  return j.at(key).get<bool>();
}

void parse_rope(const json& r, ModelConfig& c) {
  STRATA_CHECK(r.is_object(), "config.json: rope parameters must be an object, got " << r.dump());
  std::string type = "default";
  if (r.contains("rope_type") && r.at("rope_type").is_string()) type = r.at("rope_type").get<std::string>();
  else if (r.contains("type") && r.at("type").is_string()) type = r.at("type").get<std::string>();
  if (r.contains("rope_theta")) c.rope_theta = number_or(r, "rope_theta", c.rope_theta);
  STRATA_CHECK(type == "default" || type == "llama3",
               "config.json: rope type '" << type << "' is not supported (default, llama3)");
  c.rope_scaling.type = type;
  if (type == "llama3") {
    c.rope_scaling.factor = number_or(r, "factor", c.rope_scaling.factor);
    c.rope_scaling.low_freq_factor = number_or(r, "low_freq_factor", c.rope_scaling.low_freq_factor);
    c.rope_scaling.high_freq_factor = number_or(r, "high_freq_factor", c.rope_scaling.high_freq_factor);
    c.rope_scaling.original_max_position_embeddings =
        require_int(r, "original_max_position_embeddings");
  }
}

}  // namespace

void ModelConfig::validate() const {
  STRATA_CHECK(model_type == "qwen2" || model_type == "llama",
               "model_type '" << model_type << "' is not supported (qwen2, llama)");
  STRATA_CHECK(hidden_size > 0, "hidden_size must be positive, got " << hidden_size);
  STRATA_CHECK(intermediate_size > 0, "intermediate_size must be positive, got " << intermediate_size);
  STRATA_CHECK(num_hidden_layers > 0, "num_hidden_layers must be positive, got " << num_hidden_layers);
  STRATA_CHECK(num_attention_heads > 0, "num_attention_heads must be positive, got " << num_attention_heads);
  STRATA_CHECK(num_key_value_heads > 0 && num_attention_heads % num_key_value_heads == 0,
               "num_key_value_heads (" << num_key_value_heads << ") must divide num_attention_heads ("
                                       << num_attention_heads << ")");
  STRATA_CHECK(head_dim > 0 && head_dim % 2 == 0, "head_dim must be positive and even, got " << head_dim);
  STRATA_CHECK(vocab_size > 0, "vocab_size must be positive, got " << vocab_size);
  STRATA_CHECK(rms_norm_eps > 0, "rms_norm_eps must be positive, got " << rms_norm_eps);
  STRATA_CHECK(rope_theta > 0, "rope_theta must be positive, got " << rope_theta);
  STRATA_CHECK(torch_dtype == "float32" || torch_dtype == "bfloat16" || torch_dtype == "float16",
               "torch_dtype '" << torch_dtype << "' is not supported (float32, bfloat16, float16)");
  if (rope_scaling.type == "llama3") {
    STRATA_CHECK(rope_scaling.factor >= 1.0, "rope_scaling.factor must be >= 1, got " << rope_scaling.factor);
    STRATA_CHECK(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor,
                 "rope_scaling.high_freq_factor (" << rope_scaling.high_freq_factor
                                                   << ") must exceed low_freq_factor ("
                                                   << rope_scaling.low_freq_factor << ")");
  }
}

ModelConfig parse_model_config(const std::string& json_text) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    STRATA_FAIL("config.json is not valid JSON: " << e.what());
  }
  STRATA_CHECK(j.is_object(), "config.json must hold a JSON object");
  ModelConfig c;
  c.model_type = require(j, "model_type").get<std::string>();
  STRATA_CHECK(c.model_type == "qwen2" || c.model_type == "llama",
               "config.json: model_type '" << c.model_type << "' is not supported (qwen2, llama)");
  c.hidden_size = require_int(j, "hidden_size");
  c.intermediate_size = require_int(j, "intermediate_size");
  c.num_hidden_layers = require_int(j, "num_hidden_layers");
  c.num_attention_heads = require_int(j, "num_attention_heads");
  c.num_key_value_heads = (j.contains("num_key_value_heads") && !j.at("num_key_value_heads").is_null())
                              ? require_int(j, "num_key_value_heads")
                              : c.num_attention_heads;
  c.head_dim = (j.contains("head_dim") && !j.at("head_dim").is_null())
                   ? require_int(j, "head_dim")
                   : (c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  c.vocab_size = require_int(j, "vocab_size");
  c.max_position_embeddings = require_int(j, "max_position_embeddings");
  c.rms_norm_eps = number_or(j, "rms_norm_eps", c.rms_norm_eps);
  c.rope_theta = number_or(j, "rope_theta", c.rope_theta);
  if (j.contains("rope_parameters") && !j.at("rope_parameters").is_null()) parse_rope(j.at("rope_parameters"), c);
  if (j.contains("rope_scaling") && !j.at("rope_scaling").is_null()) parse_rope(j.at("rope_scaling"), c);
  c.tie_word_embeddings = bool_or(j, "tie_word_embeddings", false);  // transformers' default for both
  if (c.model_type == "qwen2") {
    c.attention_bias = true;  // Qwen2 always has q/k/v biases
  } else {
    c.attention_bias = bool_or(j, "attention_bias", false);
    c.mlp_bias = bool_or(j, "mlp_bias", false);
  }
  if (j.contains("hidden_act") && j.at("hidden_act").is_string()) {
    const auto act = j.at("hidden_act").get<std::string>();
    STRATA_CHECK(act == "silu", "config.json: hidden_act '" << act << "' is not supported (silu)");
  }
  if (c.model_type == "qwen2") {
    STRATA_CHECK(!bool_or(j, "use_sliding_window", false),
                 "config.json: use_sliding_window=true is not supported");
  }
  if (j.contains("bos_token_id") && j.at("bos_token_id").is_number_integer())
    c.bos_token_id = j.at("bos_token_id").get<int64_t>();
  if (j.contains("eos_token_id")) {
    const json& e = j.at("eos_token_id");
    if (e.is_number_integer()) c.eos_token_ids = {e.get<int64_t>()};
    else if (e.is_array())
      for (const auto& x : e) c.eos_token_ids.push_back(x.get<int64_t>());
  }
  for (const char* key : {"dtype", "torch_dtype"}) {
    if (j.contains(key) && j.at(key).is_string()) {
      c.torch_dtype = j.at(key).get<std::string>();
      break;
    }
  }
  c.validate();
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (fs::is_directory(p)) p /= "config.json";
  std::ifstream in(p, std::ios::binary);
  STRATA_CHECK(in, "cannot open model config '" << p.string() << "'");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse_model_config(ss.str());
  } catch (const Error& e) {
    STRATA_FAIL(p.string() << ": " << e.what());
  }
}

std::string model_config_to_json(const ModelConfig& c) {
  c.validate();
  json j;
  const bool qwen = c.model_type == "qwen2";
  j["architectures"] = {qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = c.model_type;
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  json rope = {{"rope_type", c.rope_scaling.type}, {"rope_theta", c.rope_theta}};
  if (c.rope_scaling.type == "llama3") {
    rope["factor"] = c.rope_scaling.factor;
    rope["low_freq_factor"] = c.rope_scaling.low_freq_factor;
    rope["high_freq_factor"] = c.rope_scaling.high_freq_factor;
    rope["original_max_position_embeddings"] = c.rope_scaling.original_max_position_embeddings;
  }
  j["rope_parameters"] = rope;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (qwen) {
    j["use_sliding_window"] = false;
    j["sliding_window"] = nullptr;
  } else {
    j["attention_bias"] = c.attention_bias;
    j["mlp_bias"] = c.mlp_bias;
  }
  j["bos_token_id"] = c.bos_token_id >= 0 ? json(c.bos_token_id) : json(nullptr);
  if (c.eos_token_ids.empty()) j["eos_token_id"] = nullptr;
  else if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else j["eos_token_id"] = c.eos_token_ids;
  j["dtype"] = c.torch_dtype;
  j["use_cache"] = true;
  return j.dump(2) + "\n";
}

ModelConfig make_tiny_config(int64_t vocab_size) {
  ModelConfig c;
  c.model_type = "qwen2";
  c.hidden_size = 256;
  c.intermediate_size = 768;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.vocab_size = vocab_size;
  c.max_position_embeddings = 4096;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.tie_word_embeddings = true;
  c.attention_bias = true;
  c.torch_dtype = "float32";
  c.validate();
  return c;
}

}  // namespace strata::agent
