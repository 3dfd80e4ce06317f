#include "agent/bert.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace strata::agent {

namespace {

using nlohmann::json;
using torch::Tensor;
namespace F = torch::nn::functional;

int64_t int_key(const json& j, const char* key, const std::string& path, int64_t dflt = -1) {
  if (!j.contains(key) || j.at(key).is_null()) {
    STRATA_CHECK(dflt >= 0, path << ": required key '" << key << "' is missing");
    return dflt;
  }
  STRATA_CHECK(j.at(key).is_number_integer() && j.at(key).get<int64_t>() > 0,
               path << ": '" << key << "' must be a positive integer, got " << j.at(key).dump());
  return j.at(key).get<int64_t>();
}

}  // namespace

BertConfig read_bert_config(const std::string& path) {
  std::ifstream in(path);
  STRATA_CHECK(in.good(), path << ": cannot open (an encoder folder needs config.json)");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    STRATA_FAIL(path << ": not valid JSON: " << e.what());
  }
  STRATA_CHECK(j.is_object(), path << ": the top level must be a JSON object");
  const std::string type =
      j.contains("model_type") && j.at("model_type").is_string() ? j.at("model_type").get<std::string>() : "";
  STRATA_CHECK(type == "bert", path << ": model_type " << (type.empty() ? "is missing" : "\"" + type + "\"")
                                    << "; the text encoder runs BERT models only (model_type \"bert\": "
                                       "all-MiniLM-L6-v2, e5-*-v2, bge-*-en-v1.5)");
  if (j.contains("position_embedding_type") && !j.at("position_embedding_type").is_null()) {
    const json& p = j.at("position_embedding_type");
    STRATA_CHECK(p.is_string() && p.get<std::string>() == "absolute",
                 path << ": position_embedding_type " << p.dump() << " is not supported (only \"absolute\")");
  }
  BertConfig c;
  c.vocab_size = int_key(j, "vocab_size", path);
  c.hidden_size = int_key(j, "hidden_size", path);
  c.num_hidden_layers = int_key(j, "num_hidden_layers", path);
  c.num_attention_heads = int_key(j, "num_attention_heads", path);
  c.intermediate_size = int_key(j, "intermediate_size", path);
  c.max_position_embeddings = int_key(j, "max_position_embeddings", path, 512);
  c.type_vocab_size = int_key(j, "type_vocab_size", path, 2);
  if (j.contains("pad_token_id") && j.at("pad_token_id").is_number_integer()) {
    c.pad_token_id = j.at("pad_token_id").get<int64_t>();
  }
  if (j.contains("layer_norm_eps") && !j.at("layer_norm_eps").is_null()) {
    STRATA_CHECK(j.at("layer_norm_eps").is_number(),
                 path << ": 'layer_norm_eps' must be a number, got " << j.at("layer_norm_eps").dump());
    c.layer_norm_eps = j.at("layer_norm_eps").get<double>();
  }
  const std::string act =
      j.contains("hidden_act") && j.at("hidden_act").is_string() ? j.at("hidden_act").get<std::string>() : "gelu";
  STRATA_CHECK(act == "gelu" || act == "gelu_new" || act == "gelu_pytorch_tanh",
               path << ": hidden_act \"" << act << "\" is not supported (gelu, gelu_new, gelu_pytorch_tanh)");
  c.gelu_tanh = act != "gelu";
  STRATA_CHECK(c.hidden_size % c.num_attention_heads == 0,
               path << ": hidden_size " << c.hidden_size << " is not a multiple of num_attention_heads "
                    << c.num_attention_heads);
  return c;
}

BertModel::BertModel(const BertConfig& config, const SafetensorsFile& weights) : config_(config) {
  // "bert." prefix (BertForMaskedLM & co.) or none (BertModel, sentence-transformers).
  const std::string prefix =
      weights.contains("bert.embeddings.word_embeddings.weight") ? "bert." : "";
  auto get = [&](const std::string& name, std::vector<int64_t> shape) {
    const std::string full = prefix + name;
    STRATA_CHECK(weights.contains(full), weights.path() << ": tensor '" << full << "' is missing");
    const std::vector<int64_t> got = weights.shape(full);
    STRATA_CHECK(got == shape, weights.path() << ": tensor '" << full << "' has shape "
                                              << c10::IntArrayRef(got) << ", config.json gives "
                                              << c10::IntArrayRef(shape));
    return weights.get(full);
  };
  const int64_t H = config.hidden_size, I = config.intermediate_size;
  word_ = get("embeddings.word_embeddings.weight", {config.vocab_size, H});
  position_ = get("embeddings.position_embeddings.weight", {config.max_position_embeddings, H});
  token_type_ = get("embeddings.token_type_embeddings.weight", {config.type_vocab_size, H});
  emb_ln_w_ = get("embeddings.LayerNorm.weight", {H});
  emb_ln_b_ = get("embeddings.LayerNorm.bias", {H});
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    Layer l;
    l.qkv_w = torch::cat({get(p + "attention.self.query.weight", {H, H}),
                          get(p + "attention.self.key.weight", {H, H}),
                          get(p + "attention.self.value.weight", {H, H})});
    l.qkv_b = torch::cat({get(p + "attention.self.query.bias", {H}),
                          get(p + "attention.self.key.bias", {H}),
                          get(p + "attention.self.value.bias", {H})});
    l.out_w = get(p + "attention.output.dense.weight", {H, H});
    l.out_b = get(p + "attention.output.dense.bias", {H});
    l.ln1_w = get(p + "attention.output.LayerNorm.weight", {H});
    l.ln1_b = get(p + "attention.output.LayerNorm.bias", {H});
    l.inter_w = get(p + "intermediate.dense.weight", {I, H});
    l.inter_b = get(p + "intermediate.dense.bias", {I});
    l.down_w = get(p + "output.dense.weight", {H, I});
    l.down_b = get(p + "output.dense.bias", {H});
    l.ln2_w = get(p + "output.LayerNorm.weight", {H});
    l.ln2_b = get(p + "output.LayerNorm.bias", {H});
    layers_.push_back(std::move(l));
  }
  to(torch::kCPU, torch::kFloat32);
}

void BertModel::to(torch::Device device, torch::Dtype dtype) {
  auto move = [&](Tensor& t) { t = t.to(device, dtype).contiguous(); };
  for (Tensor* t : {&word_, &position_, &token_type_, &emb_ln_w_, &emb_ln_b_}) move(*t);
  for (Layer& l : layers_) {
    for (Tensor* t : {&l.qkv_w, &l.qkv_b, &l.out_w, &l.out_b, &l.ln1_w, &l.ln1_b, &l.inter_w,
                      &l.inter_b, &l.down_w, &l.down_b, &l.ln2_w, &l.ln2_b}) {
      move(*t);
    }
  }
}

Tensor BertModel::forward(const Tensor& input_ids, const Tensor& attention_mask) const {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int64_t H = config_.hidden_size, NH = config_.num_attention_heads, D = H / NH;
  STRATA_CHECK(T <= config_.max_position_embeddings,
               "BERT input of " << T << " tokens exceeds max_position_embeddings "
                                << config_.max_position_embeddings);
  const std::vector<int64_t> norm_shape{H};
  const double eps = config_.layer_norm_eps;
  // Embeddings: word + absolute position + token type 0 (single-sequence input).
  Tensor x = F::embedding(input_ids, word_) + position_.slice(0, 0, T).unsqueeze(0) + token_type_[0];
  x = torch::layer_norm(x, norm_shape, emb_ln_w_, emb_ln_b_, eps);
  // Padding mask for every query: [B, 1, 1, T], true = attend.
  const Tensor mask = attention_mask.to(torch::kBool).view({B, 1, 1, T});
  for (const Layer& l : layers_) {
    const Tensor qkv = torch::linear(x, l.qkv_w, l.qkv_b).view({B, T, 3, NH, D}).permute({2, 0, 3, 1, 4});
    Tensor ctx = at::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], mask);
    ctx = ctx.transpose(1, 2).reshape({B, T, H});
    x = torch::layer_norm(torch::linear(ctx, l.out_w, l.out_b) + x, norm_shape, l.ln1_w, l.ln1_b, eps);
    Tensor inter = torch::gelu(torch::linear(x, l.inter_w, l.inter_b), config_.gelu_tanh ? "tanh" : "none");
    x = torch::layer_norm(torch::linear(inter, l.down_w, l.down_b) + x, norm_shape, l.ln2_w, l.ln2_b, eps);
  }
  return x;
}

}  // namespace strata::agent
