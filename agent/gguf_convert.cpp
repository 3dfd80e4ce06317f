#include "agent/gguf_convert.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "agent/checkpoint.h"
#include "agent/gguf/gguf.h"
#include "agent/gguf/gguf_tokenizer.h"
#include "agent/model.h"
#include "agent/model_config.h"
#include "agent/safetensors.h"
#include "core/error.h"

namespace strata::agent {

namespace {

namespace fs = std::filesystem;
using gguf::GgufFile;
using gguf::TensorInfo;
using gguf::Value;
using gguf::ValueType;
using nlohmann::json;

// GGUF block tensor suffix -> transformers module path inside model.layers.N.
const std::pair<const char*, const char*> kLayerNames[] = {
    {"attn_norm", "input_layernorm"},        {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},          {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},          {"attn_output", "self_attn.o_proj"},
    {"ffn_gate", "mlp.gate_proj"},           {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

std::string hf_name(const std::string& g, const std::string& path) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  if (g.rfind("blk.", 0) == 0) {
    const size_t dot = g.find('.', 4);
    const size_t last = g.rfind('.');
    if (dot != std::string::npos && last > dot) {
      const std::string layer = g.substr(4, dot - 4);
      const std::string mod = g.substr(dot + 1, last - dot - 1);
      const std::string kind = g.substr(last + 1);  // weight or bias
      for (const auto& [gg, hf] : kLayerNames)
        if (mod == gg) return "model.layers." + layer + "." + hf + "." + kind;
    }
  }
  STRATA_FAIL(path << ": tensor '" << g << "' has no counterpart in a Llama/Qwen2 checkpoint");
}

std::string gguf_name(const std::string& h) {
  if (h == "model.embed_tokens.weight") return "token_embd.weight";
  if (h == "model.norm.weight") return "output_norm.weight";
  if (h == "lm_head.weight") return "output.weight";
  const std::string pre = "model.layers.";
  if (h.rfind(pre, 0) == 0) {
    const size_t dot = h.find('.', pre.size());
    const size_t last = h.rfind('.');
    const std::string layer = h.substr(pre.size(), dot - pre.size());
    const std::string mod = h.substr(dot + 1, last - dot - 1);
    for (const auto& [gg, hf] : kLayerNames)
      if (mod == hf) return "blk." + layer + "." + gg + h.substr(last);
  }
  return "";
}

// llama.cpp stores the rows of each Llama q/k head as [d/2][2] (interleaved rotary pairs) where
// transformers has [2][d/2] (rotate-half). `to_hf` undoes that; the other direction applies it.
torch::Tensor permute_rotary(const torch::Tensor& w, int64_t n_head, bool to_hf) {
  const int64_t rows = w.size(0);
  STRATA_CHECK(rows % (2 * n_head) == 0, "cannot permute " << rows << " rows over " << n_head << " heads");
  std::vector<int64_t> shape = {n_head, 0, 0};
  if (to_hf) shape = {n_head, rows / n_head / 2, 2};
  else shape = {n_head, 2, rows / n_head / 2};
  for (int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(1, 2).reshape(w.sizes()).contiguous();
}

int64_t meta_int(const GgufFile& f, const std::string& key) {
  const Value& v = f.get(key);
  STRATA_CHECK(v.is_integer(), f.path() << ": metadata '" << key << "' must be an integer");
  return v.as_int();
}
int64_t meta_int_or(const GgufFile& f, const std::string& key, int64_t dflt) {
  return f.has(key) ? meta_int(f, key) : dflt;
}
double meta_num_or(const GgufFile& f, const std::string& key, double dflt) {
  const Value* v = f.find(key);
  if (v == nullptr) return dflt;
  STRATA_CHECK(v->is_number(), f.path() << ": metadata '" << key << "' must be a number");
  return v->as_double();
}

// Llama-3 rotary scaling as GGUF stores it: the divisor of each inverse frequency (the model's
// unscaled frequencies over its scaled ones).
std::vector<double> llama3_rope_factors(const ModelConfig& c) {
  ModelConfig plain = c;
  plain.rope_scaling = RopeScaling{};
  const torch::Tensor f = (rotary_inv_freq(plain) / rotary_inv_freq(c)).to(torch::kFloat64).contiguous();
  return {f.data_ptr<double>(), f.data_ptr<double>() + f.numel()};
}

// A GGUF with a rope_freqs tensor stores Llama-3 scaling only as factors: find the llama3
// parameters that produce them (Meta's releases use low 1, high 4, original context 8192).
void fit_llama3_rope(const GgufFile& f, const TensorInfo& t, ModelConfig& c) {
  const std::vector<float> got = f.to_float(t);
  STRATA_CHECK(static_cast<int64_t>(got.size()) == c.head_dim / 2,
               f.path() << ": rope_freqs has " << got.size() << " values for head_dim " << c.head_dim);
  for (double factor : {8.0, 32.0, 16.0, 4.0, 2.0}) {
    ModelConfig trial = c;
    trial.rope_scaling.type = "llama3";
    trial.rope_scaling.factor = factor;
    trial.rope_scaling.low_freq_factor = 1.0;
    trial.rope_scaling.high_freq_factor = 4.0;
    trial.rope_scaling.original_max_position_embeddings = 8192;
    const std::vector<double> want = llama3_rope_factors(trial);
    bool ok = true;
    for (size_t i = 0; i < want.size() && ok; ++i) ok = std::fabs(want[i] - got[i]) <= 1e-3 * want[i];
    if (ok) {
      c.rope_scaling = trial.rope_scaling;
      return;
    }
  }
  STRATA_FAIL(f.path() << ": rope_freqs does not match Llama-3 rotary scaling with any common factor; "
                          "this rotary scaling is not supported");
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  STRATA_CHECK(out, "cannot write '" << p.string() << "'");
  out << text;
  out.flush();
  STRATA_CHECK(out, "writing '" << p.string() << "' failed");
}

std::string read_text_if(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

GgufImportReport import_gguf(const std::string& gguf_path, const std::string& out_dir, const std::string& dtype) {
  STRATA_CHECK(dtype == "float32" || dtype == "bfloat16", "--dtype: expected float32 or bfloat16, got '" << dtype << "'");
  GgufFile f(gguf_path);
  GgufImportReport report;
  const std::string arch = f.get("general.architecture").s;
  STRATA_CHECK(arch == "llama" || arch == "qwen2",
               gguf_path << ": general.architecture '" << arch << "' is not supported (llama, qwen2)");
  report.architecture = arch;

  ModelConfig c;
  c.model_type = arch;
  c.hidden_size = meta_int(f, arch + ".embedding_length");
  c.intermediate_size = meta_int(f, arch + ".feed_forward_length");
  c.num_hidden_layers = meta_int(f, arch + ".block_count");
  c.num_attention_heads = meta_int(f, arch + ".attention.head_count");
  c.num_key_value_heads = meta_int_or(f, arch + ".attention.head_count_kv", c.num_attention_heads);
  c.head_dim = meta_int_or(f, arch + ".attention.key_length",
                           meta_int_or(f, arch + ".rope.dimension_count",
                                       c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0));
  c.max_position_embeddings = meta_int(f, arch + ".context_length");
  c.rms_norm_eps = meta_num_or(f, arch + ".attention.layer_norm_rms_epsilon", 1e-6);
  c.rope_theta = meta_num_or(f, arch + ".rope.freq_base", 10000.0);
  if (const Value* s = f.find(arch + ".rope.scaling.type")) {
    STRATA_CHECK(s->s == "none", gguf_path << ": rope scaling '" << s->s << "' is not supported");
  }
  const TensorInfo* embd = f.find_tensor("token_embd.weight");
  STRATA_CHECK(embd != nullptr && embd->dims.size() == 2, gguf_path << ": tensor 'token_embd.weight' is missing");
  c.vocab_size = meta_int_or(f, arch + ".vocab_size", embd->dims[1]);
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.attention_bias = arch == "qwen2" || f.find_tensor("blk.0.attn_q.bias") != nullptr;
  const int64_t n_tokens = f.has("tokenizer.ggml.tokens") ? static_cast<int64_t>(f.get("tokenizer.ggml.tokens").array.size()) : 0;
  if (const Value* v = f.find("tokenizer.ggml.bos_token_id")) c.bos_token_id = v->as_int();
  if (const Value* v = f.find("tokenizer.ggml.eos_token_id")) c.eos_token_ids = {v->as_int()};
  c.torch_dtype = dtype;
  if (const TensorInfo* rf = f.find_tensor("rope_freqs.weight")) fit_llama3_rope(f, *rf, c);
  try {
    c.validate();
  } catch (const Error& e) {
    STRATA_FAIL(gguf_path << ": the model's metadata is inconsistent: " << e.what());
  }
  STRATA_CHECK(n_tokens == 0 || n_tokens <= c.vocab_size,
               gguf_path << ": " << n_tokens << " tokens for a vocabulary of " << c.vocab_size);

  // Tensors: dequantise, rename, un-permute, convert.
  const torch::Dtype out_dtype = dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, int64_t> type_counts;
  for (const TensorInfo& t : f.tensors()) {
    if (t.name == "rope_freqs.weight") continue;  // folded into the config above
    const std::string name = hf_name(t.name, gguf_path);
    std::vector<float> values = f.to_float(t);
    ++type_counts[gguf::tensor_type_name(t.type)];
    std::vector<int64_t> shape = t.shape();
    torch::Tensor w = torch::from_blob(values.data(), shape, torch::kFloat32).clone();
    if (arch == "llama") {
      const bool q = t.name.find(".attn_q.") != std::string::npos;
      const bool k = t.name.find(".attn_k.") != std::string::npos;
      if (q || k) w = permute_rotary(w, q ? c.num_attention_heads : c.num_key_value_heads, /*to_hf=*/true);
    }
    report.n_parameters += w.numel();
    tensors[name] = w.to(out_dtype).contiguous();
  }
  report.n_tensors = static_cast<int64_t>(tensors.size());
  for (const auto& [type, count] : type_counts) {
    if (!report.tensor_types.empty()) report.tensor_types += ", ";
    report.tensor_types += type + " x" + std::to_string(count);
  }

  fs::create_directories(out_dir);
  const fs::path dir(out_dir);
  write_text(dir / "config.json", model_config_to_json(c));
  save_safetensors((dir / "model.safetensors").string(), tensors);
  if (f.has("tokenizer.ggml.tokens")) {
    const gguf::HfTokenizerFiles tok = gguf::tokenizer_from_gguf(f, c.max_position_embeddings);
    write_text(dir / "tokenizer.json", tok.tokenizer_json);
    write_text(dir / "tokenizer_config.json", tok.tokenizer_config_json);
  } else {
    std::fprintf(stderr, "warning: %s has no tokenizer; %s has the model only\n", gguf_path.c_str(), out_dir.c_str());
  }
  json gen = {{"_from_model_config", true}};
  if (c.bos_token_id >= 0) gen["bos_token_id"] = c.bos_token_id;
  if (!c.eos_token_ids.empty()) gen["eos_token_id"] = c.eos_token_ids.size() == 1 ? json(c.eos_token_ids[0]) : json(c.eos_token_ids);
  if (const Value* v = f.find("tokenizer.ggml.padding_token_id")) gen["pad_token_id"] = v->as_int();
  write_text(dir / "generation_config.json", gen.dump(2) + "\n");
  return report;
}

void export_gguf(const std::string& model_dir, const std::string& out_path, const std::string& type) {
  uint32_t code = 0, file_type = 0;
  if (type == "f32") code = 0, file_type = 0;
  else if (type == "f16") code = 1, file_type = 1;
  else if (type == "q8_0") code = 8, file_type = 7;
  else if (type == "bf16") code = 30, file_type = 32;
  else STRATA_FAIL("--type: expected f32, f16, bf16 or q8_0, got '" << type << "'");

  const ModelConfig c = load_model_config(model_dir);
  STRATA_CHECK(c.rope_scaling.type == "default" || c.rope_scaling.type == "llama3",
               model_dir << ": rope scaling '" << c.rope_scaling.type << "' cannot be exported");
  const std::string arch = c.model_type;
  const fs::path dir(model_dir);
  const std::string tok_json = read_text_if(dir / "tokenizer.json");
  STRATA_CHECK(!tok_json.empty(), model_dir << ": tokenizer.json is missing (a GGUF file carries its tokenizer)");
  std::string tok_cfg = read_text_if(dir / "tokenizer_config.json");
  const std::string jinja = read_text_if(dir / "chat_template.jinja");  // transformers 5 keeps it apart
  if (!jinja.empty()) {
    json cfg = tok_cfg.empty() ? json::object() : json::parse(tok_cfg, nullptr, false);
    if (cfg.is_object() && !cfg.contains("chat_template")) {
      cfg["chat_template"] = jinja;
      tok_cfg = cfg.dump();
    }
  }

  std::vector<std::pair<std::string, Value>> meta;
  meta.emplace_back("general.architecture", Value::of_string(arch));
  meta.emplace_back("general.name", Value::of_string(dir.filename().string()));
  meta.emplace_back("general.file_type", Value::of_u32(file_type));
  meta.emplace_back("general.quantization_version", Value::of_u32(2));
  meta.emplace_back(arch + ".block_count", Value::of_u32(static_cast<uint32_t>(c.num_hidden_layers)));
  meta.emplace_back(arch + ".context_length", Value::of_u32(static_cast<uint32_t>(c.max_position_embeddings)));
  meta.emplace_back(arch + ".embedding_length", Value::of_u32(static_cast<uint32_t>(c.hidden_size)));
  meta.emplace_back(arch + ".feed_forward_length", Value::of_u32(static_cast<uint32_t>(c.intermediate_size)));
  meta.emplace_back(arch + ".attention.head_count", Value::of_u32(static_cast<uint32_t>(c.num_attention_heads)));
  meta.emplace_back(arch + ".attention.head_count_kv", Value::of_u32(static_cast<uint32_t>(c.num_key_value_heads)));
  meta.emplace_back(arch + ".attention.key_length", Value::of_u32(static_cast<uint32_t>(c.head_dim)));
  meta.emplace_back(arch + ".attention.value_length", Value::of_u32(static_cast<uint32_t>(c.head_dim)));
  meta.emplace_back(arch + ".rope.dimension_count", Value::of_u32(static_cast<uint32_t>(c.head_dim)));
  meta.emplace_back(arch + ".rope.freq_base", Value::of_f32(static_cast<float>(c.rope_theta)));
  meta.emplace_back(arch + ".attention.layer_norm_rms_epsilon", Value::of_f32(static_cast<float>(c.rms_norm_eps)));
  meta.emplace_back(arch + ".vocab_size", Value::of_u32(static_cast<uint32_t>(c.vocab_size)));
  for (auto& kv : gguf::tokenizer_to_gguf(tok_json, tok_cfg, model_dir)) meta.push_back(std::move(kv));

  const auto weights = load_safetensors_dir(model_dir);
  std::vector<gguf::WriteTensor> out;
  auto add = [&](const std::string& gname, torch::Tensor w) {
    w = w.to(torch::kFloat32).contiguous();
    gguf::WriteTensor t;
    t.name = gname;
    for (int64_t d = w.dim() - 1; d >= 0; --d) t.dims.push_back(w.size(d));
    // Norms and biases stay F32; Q8_0 needs rows that are whole blocks (else F16).
    t.type = w.dim() < 2 ? 0u : (code == 8 && t.dims[0] % 32 != 0 ? 1u : code);
    t.bytes = gguf::quantize(t.type, w.data_ptr<float>(), w.numel());
    out.push_back(std::move(t));
  };
  auto take = [&](const std::string& hname) -> torch::Tensor {
    auto it = weights.find(hname);
    STRATA_CHECK(it != weights.end(), model_dir << ": tensor '" << hname << "' is missing");
    return it->second;
  };
  add("token_embd.weight", take("model.embed_tokens.weight"));
  if (c.rope_scaling.type == "llama3") {
    const std::vector<double> rf = llama3_rope_factors(c);
    std::vector<float> f(rf.begin(), rf.end());
    add("rope_freqs.weight", torch::from_blob(f.data(), {static_cast<int64_t>(f.size())}, torch::kFloat32).clone());
  }
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const auto& [gg, hf] : kLayerNames) {
      for (const char* kind : {"weight", "bias"}) {
        const std::string hname = p + hf + "." + kind;
        auto it = weights.find(hname);
        if (it == weights.end()) {
          STRATA_CHECK(std::string(kind) == "bias", model_dir << ": tensor '" << hname << "' is missing");
          continue;
        }
        torch::Tensor w = it->second;
        if (arch == "llama" && (std::string(gg) == "attn_q" || std::string(gg) == "attn_k"))
          w = permute_rotary(w.to(torch::kFloat32), std::string(gg) == "attn_q" ? c.num_attention_heads : c.num_key_value_heads,
                             /*to_hf=*/false);
        add(gguf_name(hname), w);
      }
    }
  }
  add("output_norm.weight", take("model.norm.weight"));
  if (!c.tie_word_embeddings) add("output.weight", take("lm_head.weight"));
  fs::path parent = fs::path(out_path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  gguf::write_gguf(out_path, meta, out);
}

}  // namespace strata::agent
