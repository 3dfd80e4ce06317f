// The policy model: a Qwen2 / Llama decoder-only transformer as plain weight tensors and
// functional LibTorch ops (RMSNorm, rotary embeddings with optional Llama-3 scaling, grouped-query
// attention through scaled_dot_product_attention, SwiGLU MLP, tied or separate lm_head).
// Weight names are Hugging Face's (model.layers.0.self_attn.q_proj.weight, ...).
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/bf16_packs.h"
#include "agent/int8_linear.h"
#include "agent/model_config.h"

namespace strata::agent {

class KVCache;

// Options for a full (uncached) forward over a padded batch.
struct ForwardOptions {
  bool gradient_checkpointing = false;  // recompute each layer in backward instead of storing it
};

class Model {
 public:
  Model() = default;
  // Takes HF-named weights. Missing, unexpected or mis-shaped tensors are a strata::Error that
  // names the tensor and both shapes. `lm_head.weight` is accepted and ignored when tied.
  Model(ModelConfig config, const std::map<std::string, torch::Tensor>& weights);

  const ModelConfig& config() const { return config_; }
  bool defined() const { return embed_.defined(); }
  torch::Device device() const { return embed_.device(); }
  torch::Dtype dtype() const { return embed_.scalar_type(); }

  // Every weight under its HF name (lm_head.weight only when untied). Shares storage.
  std::map<std::string, torch::Tensor> named_parameters() const;
  std::vector<torch::Tensor> parameters() const;
  // Converts (copies) every weight; a no-op for weights already there.
  void to(torch::Device device, torch::Dtype dtype);
  void set_requires_grad(bool on);

  // input_ids, attention_mask (1 = token, 0 = padding; may be undefined = all ones),
  // position_ids (undefined = cumsum(mask) - 1): [B, T]. Returns hidden states [B, T, H]
  // after the final norm. Padded positions produce finite garbage.
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                              const torch::Tensor& position_ids = {},
                              const ForwardOptions& options = {}) const;
  // logits: [B, T, V] in the model dtype.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        const torch::Tensor& position_ids = {}, const ForwardOptions& options = {}) const;
  // hidden: [..., H] -> logits [..., V]
  torch::Tensor lm_head(const torch::Tensor& hidden) const;
  const torch::Tensor& lm_head_weight() const { return config_.tie_word_embeddings ? embed_ : lm_head_; }

  // Incremental forward against a KV cache. input_ids: [B, T] (no padding), slots: [B] cache
  // slots, start: [B] number of positions already cached for each row. Writes the new keys and
  // values at start..start+T-1 and returns hidden states [B, T, H].
  torch::Tensor forward_cached(const torch::Tensor& input_ids, KVCache& cache,
                               const std::vector<int64_t>& slots, const std::vector<int64_t>& start) const;

  // Recomputes decoder layer `layer` (used by gradient checkpointing). x: [B, T, H];
  // cos, sin: [B, 1, T, D]; mask: [B, 1, T, S] bool.
  torch::Tensor layer_forward(int64_t layer, const std::vector<torch::Tensor>& weights,
                              const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                              const torch::Tensor& mask) const;
  // The weights layer_forward takes for `layer`, in its order (undefined biases left out).
  std::vector<torch::Tensor> layer_weights(int64_t layer) const;

  // Rotary tables for positions [B, T]: cos, sin [B, 1, T, D] in the model dtype.
  std::pair<torch::Tensor, torch::Tensor> rotary(const torch::Tensor& positions) const;

  // Rollout copies (rl's rollout_precision). quantize_int8() turns every linear layer's weight
  // and the lm_head into int8 with per-output-channel scales in dtype() (agent/int8_linear.h) and
  // drops their float copies; the embedding, norms, biases and activations stay in dtype() (a
  // tied lm_head gets its own int8 copy of the embedding). Such a model is for inference only:
  // forward, forward_cached, lm_head and log-probs, without gradients or checkpointing;
  // named_parameters() lists only its float weights.
  void quantize_int8();
  bool is_int8() const { return head_q_.defined(); }
  // Copies every weight of `trained` (a model of the same config, any dtype or device) into this
  // one's tensors in place: cast to this model's dtype, or re-quantised where this model holds
  // int8 (equal to a fresh quantize_int8 of the trained weights).
  void refresh_from(const Model& trained);
  // The int8 matrices under their HF names ("lm_head.weight" for the head, tied or not).
  std::map<std::string, Int8Weight> int8_weights() const;

  // A bf16 model on a CPU with AVX-512 BF16 (bf16_gemm_available()) decodes through strata's own
  // bf16 kernel (agent/bf16_gemm.h): the fused decoding step's products and lm_head() of at most
  // kBf16GemmMaxRows rows without gradients use packed copies of the matrices (as much memory
  // again as the matrices), built when first needed and rebuilt after any weight changed (another
  // tensor, or an in-place update: agent/bf16_packs.h). Copies of a Model share them until to().
  bool bf16_kernel_applies() const;
  // Drops the packed copies: call after writing into the weights' memory without a LibTorch op
  // (a collective's raw write), which no version counter sees.
  void weights_changed() const { bf16_packs_->clear(); }
  // Packed copies built so far (tests).
  int64_t bf16_packs_built() const { return bf16_packs_->builds(); }

 private:
  enum W { kInNorm, kQ, kQb, kK, kKb, kV, kVb, kO, kOb, kPostNorm, kGate, kGateB, kUp, kUpB, kDown, kDownB, kCount };
  struct Layer {
    torch::Tensor w[kCount];
    Int8Weight q[kCount];  // int8 copies of the matrices (quantize_int8), else undefined
  };
  torch::Tensor proj(const Layer& l, W w, W b, const torch::Tensor& x) const;
  std::vector<std::pair<std::string, torch::Tensor*>> slots_();
  torch::Tensor attention(const Layer& l, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                          const torch::Tensor& mask, KVCache* cache, int64_t layer, const torch::Tensor& slot_idx,
                          const torch::Tensor& pos_idx, int64_t kv_len, int64_t slot_first) const;
  torch::Tensor block(const Layer& l, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                      const torch::Tensor& mask, KVCache* cache, int64_t layer, const torch::Tensor& slot_idx,
                      const torch::Tensor& pos_idx, int64_t kv_len, int64_t slot_first) const;
  Layer layer_from(int64_t layer, const std::vector<torch::Tensor>& weights) const;
  // forward_cached for one new token per row on a CPU with AVX-512 (decode::available()): the whole
  // step on float32 rows through agent/fused_decode.h, the products through int8_gemm (an int8
  // copy; it needs VNNI), bf16_gemm (bf16 weights where
  // bf16_kernel_applies()) or one LibTorch matmul each (fp32 weights, bf16 elsewhere), without
  // LibTorch's ~45 dispatched ops per layer.
  bool fused_decode_applies(const torch::Tensor& input_ids, KVCache& cache) const;
  // The packed bf16 copies: every layer's q, k, v, o, gate, up and down (7 each), then
  // the lm_head; fresh.
  std::vector<torch::Tensor> packed_matrices() const;
  torch::Tensor decode_fused(const torch::Tensor& input_ids, KVCache& cache, const std::vector<int64_t>& slots,
                             const std::vector<int64_t>& start) const;

  ModelConfig config_;
  torch::Tensor embed_;    // [V, H]
  torch::Tensor norm_;     // [H]
  torch::Tensor lm_head_;  // [V, H] when untied
  Int8Weight head_q_;      // int8 lm_head (quantize_int8), tied or not
  torch::Tensor inv_freq_; // [D/2] float32, rope scaling applied
  std::vector<Layer> layers_;
  std::shared_ptr<Bf16Packs> bf16_packs_ = std::make_shared<Bf16Packs>();
};

// Random initialisation in the HF style (normal(0, 0.02) matrices, zero biases, unit norms),
// deterministic for a seed. Weights are float32 on CPU.
Model init_random_model(const ModelConfig& config, uint64_t seed);

// Rotary inverse frequencies [head_dim / 2] (float32, CPU) with the config's scaling applied
// (none or llama3); what the model rotates queries and keys by.
torch::Tensor rotary_inv_freq(const ModelConfig& config);

}  // namespace strata::agent
