// BertModel (Hugging Face's `BertModel`, the encoder of all-MiniLM-L6-v2, e5-*-v2 and
// bge-*-en-v1.5) as plain weight tensors and functional LibTorch ops: word + absolute position
// + token-type embeddings and LayerNorm, then post-LN encoder layers (self-attention through
// scaled_dot_product_attention with a padding mask, GELU feed-forward). Weight names are HF's,
// with or without the "bert." prefix of the task-head checkpoints; pooler.* and cls.* (task
// heads) are ignored. Inference only.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "agent/safetensors.h"

namespace strata::agent {

struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  int64_t pad_token_id = 0;
  double layer_norm_eps = 1e-12;
  bool gelu_tanh = false;  // hidden_act gelu_new / gelu_pytorch_tanh (else exact erf GELU)
};

// Reads a BERT config.json. Anything but model_type "bert", position_embedding_type "absolute"
// (or absent) and hidden_act gelu/gelu_new/gelu_pytorch_tanh is a strata::Error naming the file
// and the key.
BertConfig read_bert_config(const std::string& path);

class BertModel {
 public:
  // Checks every weight's presence and shape against `config` (errors name the tensor and both
  // shapes) and keeps views of the mapped file (no copy until to()).
  BertModel(const BertConfig& config, const SafetensorsFile& weights);

  const BertConfig& config() const { return config_; }
  torch::Device device() const { return word_.device(); }
  // Copies every weight to `device` in `dtype` (float32 or bfloat16).
  void to(torch::Device device, torch::Dtype dtype);

  // input_ids, attention_mask: [B, T] int64 (mask 1 = token, 0 = padding), on device().
  // Returns the last hidden states [B, T, H] in the model dtype; padded rows are finite garbage.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const;

 private:
  struct Layer {
    torch::Tensor qkv_w, qkv_b;  // query, key, value fused: [3H, H], [3H]
    torch::Tensor out_w, out_b, ln1_w, ln1_b;
    torch::Tensor inter_w, inter_b, down_w, down_b, ln2_w, ln2_b;
  };
  BertConfig config_;
  torch::Tensor word_, position_, token_type_, emb_ln_w_, emb_ln_b_;
  std::vector<Layer> layers_;
};

}  // namespace strata::agent
