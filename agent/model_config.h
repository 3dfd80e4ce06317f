// ModelConfig: the shape of a Qwen2/Qwen2.5 or Llama(-3) causal LM, read from a Hugging Face
// `config.json` at the edge and written back in the same layout. Free of <torch/torch.h>.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::agent {

// Rotary-embedding frequency scaling. Only "default" (none) and "llama3" are supported.
struct RopeScaling {
  std::string type = "default";                    // "default" or "llama3"
  double factor = 1.0;                             // llama3: long-context stretch factor
  double low_freq_factor = 1.0;                    // llama3: wavelengths above ctx/low are scaled
  double high_freq_factor = 4.0;                   // llama3: wavelengths below ctx/high are kept
  int64_t original_max_position_embeddings = 8192; // llama3: pre-training context length
};

struct ModelConfig {
  std::string model_type = "qwen2";     // "qwen2" or "llama"
  int64_t hidden_size = 0;              // d_model
  int64_t intermediate_size = 0;        // SwiGLU inner width
  int64_t num_hidden_layers = 0;        // decoder layers
  int64_t num_attention_heads = 0;      // query heads
  int64_t num_key_value_heads = 0;      // KV heads (GQA); divides num_attention_heads
  int64_t head_dim = 0;                 // per-head width; 0 in JSON = hidden / heads
  int64_t vocab_size = 0;               // rows of the embedding and lm_head
  int64_t max_position_embeddings = 0;  // longest context the model was trained for
  double rms_norm_eps = 1e-6;           // RMSNorm epsilon
  double rope_theta = 10000.0;          // rotary base
  RopeScaling rope_scaling;             // frequency scaling (llama3) or none
  bool tie_word_embeddings = false;     // lm_head shares the embedding matrix
  bool attention_bias = false;          // biases on q/k/v (Qwen2: always true), and o (Llama)
  bool mlp_bias = false;                // Llama `mlp_bias`: biases on gate/up/down
  int64_t bos_token_id = -1;            // -1: none
  std::vector<int64_t> eos_token_ids;   // may be empty
  std::string torch_dtype = "float32";  // dtype of the saved weights: float32, bfloat16, float16

  // Qwen2 puts biases on q/k/v only; Llama's attention_bias covers q/k/v/o.
  bool qkv_bias() const { return attention_bias; }
  bool o_bias() const { return attention_bias && model_type == "llama"; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }

  // Throws strata::Error naming the first inconsistent field.
  void validate() const;
};

// Parses the text of a HF config.json (transformers 4.x `rope_theta`/`rope_scaling`/
// `torch_dtype` and 5.x `rope_parameters`/`dtype` layouts). An unknown model_type or a missing
// required key is a strata::Error that names it.
ModelConfig parse_model_config(const std::string& json_text);
// Reads `path` (a config.json file, or a directory holding one).
ModelConfig load_model_config(const std::string& path);
// HF config.json text (transformers 5.x layout: rope_parameters, dtype) that transformers loads.
std::string model_config_to_json(const ModelConfig& config);

// A small Qwen2-shaped default policy (4 layers, hidden 256, 4 heads, 2 KV heads, tied).
ModelConfig make_tiny_config(int64_t vocab_size);

}  // namespace strata::agent
