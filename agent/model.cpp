// Over 450 lines: the forward, the gradient-checkpointed layer and the int8 rollout copy (quantise,
// refresh) all work on the private layer layout, which is best kept in one file.
#include "agent/model.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <functional>
#include <sstream>

#include "agent/bf16_gemm.h"
#include "agent/fused_decode.h"
#include "agent/int8_gemm.h"
#include "agent/kv_cache.h"
#include "core/error.h"

namespace strata::agent {
namespace {

using torch::Tensor;
namespace F = torch::nn::functional;

std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

Tensor rms_norm(const Tensor& x, const Tensor& w, double eps) {
  Tensor xf = x.to(torch::kFloat32);
  Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  xf = xf * torch::rsqrt(var + eps);
  return w * xf.to(x.scalar_type());
}

Tensor rotate_half(const Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  return b.defined() ? torch::nn::functional::linear(x, w, b) : torch::nn::functional::linear(x, w);
}

// Layer-weight suffixes in Model::W order, with whether each exists for `c`.
struct WSpec {
  const char* suffix;
  bool present;
  std::vector<int64_t> shape;
};

std::vector<WSpec> layer_specs(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, QD = c.num_attention_heads * c.head_dim,
                KD = c.kv_dim();
  const bool qb = c.qkv_bias(), ob = c.o_bias(), mb = c.mlp_bias;
  return {
      {"input_layernorm.weight", true, {H}},
      {"self_attn.q_proj.weight", true, {QD, H}},
      {"self_attn.q_proj.bias", qb, {QD}},
      {"self_attn.k_proj.weight", true, {KD, H}},
      {"self_attn.k_proj.bias", qb, {KD}},
      {"self_attn.v_proj.weight", true, {KD, H}},
      {"self_attn.v_proj.bias", qb, {KD}},
      {"self_attn.o_proj.weight", true, {H, QD}},
      {"self_attn.o_proj.bias", ob, {H}},
      {"post_attention_layernorm.weight", true, {H}},
      {"mlp.gate_proj.weight", true, {I, H}},
      {"mlp.gate_proj.bias", mb, {I}},
      {"mlp.up_proj.weight", true, {I, H}},
      {"mlp.up_proj.bias", mb, {I}},
      {"mlp.down_proj.weight", true, {H, I}},
      {"mlp.down_proj.bias", mb, {H}},
  };
}

std::string layer_prefix(int64_t l) { return "model.layers." + std::to_string(l) + "."; }

// Gradient checkpointing: the layer output is computed without a graph in forward and
// recomputed (with one) in backward. inputs = [x, cos, sin, mask, layer weights...].
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static Tensor forward(torch::autograd::AutogradContext* ctx, at::TensorList inputs, int64_t model_ptr,
                        int64_t layer) {
    ctx->saved_data["model"] = model_ptr;
    ctx->saved_data["layer"] = layer;
    ctx->save_for_backward(inputs.vec());
    const auto* model = reinterpret_cast<const Model*>(model_ptr);
    std::vector<Tensor> w(inputs.begin() + 4, inputs.end());
    return model->layer_forward(layer, w, inputs[0], inputs[1], inputs[2], inputs[3]);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto* model = reinterpret_cast<const Model*>(ctx->saved_data["model"].toInt());
    const int64_t layer = ctx->saved_data["layer"].toInt();
    auto saved = ctx->get_saved_variables();
    torch::AutoGradMode grad_on(true);
    std::vector<Tensor> leaves;
    Tensor x = saved[0].detach().requires_grad_(true);
    leaves.push_back(x);
    std::vector<Tensor> w;
    for (size_t i = 4; i < saved.size(); ++i) {
      w.push_back(saved[i].detach().requires_grad_(true));
      leaves.push_back(w.back());
    }
    Tensor out = model->layer_forward(layer, w, x, saved[1], saved[2], saved[3]);
    auto grads = torch::autograd::grad({out}, leaves, {grad_out[0]}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    torch::autograd::variable_list result;
    result.push_back(grads[0]);
    result.push_back(Tensor());  // cos
    result.push_back(Tensor());  // sin
    result.push_back(Tensor());  // mask
    for (size_t i = 1; i < grads.size(); ++i) result.push_back(saved[i + 3].requires_grad() ? grads[i] : Tensor());
    result.push_back(Tensor());  // model_ptr
    result.push_back(Tensor());  // layer
    return result;
  }
};

}  // namespace

Model::Model(ModelConfig config, const std::map<std::string, Tensor>& weights) : config_(std::move(config)) {
  config_.validate();
  const auto& c = config_;
  std::map<std::string, bool> used;
  for (const auto& kv : weights) used[kv.first] = false;
  auto take = [&](const std::string& name, const std::vector<int64_t>& shape) -> Tensor {
    auto it = weights.find(name);
    STRATA_CHECK(it != weights.end(), "checkpoint is missing tensor '" << name << "' (expected shape "
                                                                       << shape_str(shape) << ")");
    STRATA_CHECK(it->second.sizes().vec() == shape, "tensor '" << name << "' has shape " << shape_str(it->second.sizes())
                                                               << " but the config needs " << shape_str(shape));
    used[name] = true;
    return it->second;
  };
  embed_ = take("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  norm_ = take("model.norm.weight", {c.hidden_size});
  if (!c.tie_word_embeddings) {
    lm_head_ = take("lm_head.weight", {c.vocab_size, c.hidden_size});
  } else if (weights.count("lm_head.weight")) {
    used["lm_head.weight"] = true;  // some tied checkpoints store a copy; the embedding wins
  }
  const auto specs = layer_specs(c);
  layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    for (size_t i = 0; i < specs.size(); ++i) {
      if (!specs[i].present) continue;
      layers_[static_cast<size_t>(l)].w[i] = take(layer_prefix(l) + specs[i].suffix, specs[i].shape);
    }
  }
  for (const auto& [name, was_used] : used) {
    if (was_used) continue;
    if (name.size() >= 19 && name.compare(name.size() - 19, 19, "rotary_emb.inv_freq") == 0) continue;
    STRATA_FAIL("checkpoint has unexpected tensor '" << name << "' with shape " << shape_str(weights.at(name).sizes())
                                                     << " (model_type " << c.model_type << ", "
                                                     << c.num_hidden_layers << " layers)");
  }
  inv_freq_ = rotary_inv_freq(c).to(embed_.device());
}

std::map<std::string, Tensor> Model::named_parameters() const {
  std::map<std::string, Tensor> out;
  out["model.embed_tokens.weight"] = embed_;
  out["model.norm.weight"] = norm_;
  if (!config_.tie_word_embeddings && lm_head_.defined()) out["lm_head.weight"] = lm_head_;  // int8 copies: in head_q_
  const auto specs = layer_specs(config_);
  for (size_t l = 0; l < layers_.size(); ++l)
    for (size_t i = 0; i < specs.size(); ++i)
      if (layers_[l].w[i].defined()) out[layer_prefix(static_cast<int64_t>(l)) + specs[i].suffix] = layers_[l].w[i];
  return out;
}

std::vector<Tensor> Model::parameters() const {
  std::vector<Tensor> out;
  for (auto& kv : named_parameters()) out.push_back(kv.second);
  return out;
}

void Model::to(torch::Device device, torch::Dtype dtype) {
  auto conv = [&](Tensor& t) {
    if (t.defined()) t = t.to(device, dtype);
  };
  conv(embed_);
  conv(norm_);
  conv(lm_head_);
  for (auto& l : layers_)
    for (auto& w : l.w) conv(w);
  auto conv_q = [&](Int8Weight& q) {
    if (!q.defined()) return;
    q.q = q.q.to(device);
    q.scale = q.scale.to(device, dtype);
    repack_int8(q);
  };
  conv_q(head_q_);
  for (auto& l : layers_)
    for (auto& q : l.q) conv_q(q);
  inv_freq_ = inv_freq_.to(device);
  bf16_packs_ = std::make_shared<Bf16Packs>();  // other tensors now; a copy of this model keeps the old ones
}

void Model::set_requires_grad(bool on) {
  auto set = [&](Tensor& t) {
    if (t.defined()) t.set_requires_grad(on);
  };
  set(embed_);
  set(norm_);
  set(lm_head_);
  for (auto& l : layers_)
    for (auto& w : l.w) set(w);
}

std::pair<Tensor, Tensor> Model::rotary(const Tensor& positions) const {
  // freqs: [B, T, D/2] in float32, as transformers computes them
  Tensor freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_;
  Tensor emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype()).unsqueeze(1), emb.sin().to(dtype()).unsqueeze(1)};
}

Tensor Model::attention(const Layer& L, const Tensor& x, const Tensor& cos, const Tensor& sin, const Tensor& mask,
                        KVCache* cache, int64_t layer, const Tensor& slot_idx, const Tensor& pos_idx,
                        int64_t kv_len, int64_t slot_first) const {
  const int64_t B = x.size(0), T = x.size(1), D = config_.head_dim, Hq = config_.num_attention_heads,
                Hk = config_.num_key_value_heads;
  // q: [B, Hq, T, D]; k, v: [B, Hk, T, D]
  Tensor q = proj(L, kQ, kQb, x).view({B, T, Hq, D}).transpose(1, 2);
  Tensor k = proj(L, kK, kKb, x).view({B, T, Hk, D}).transpose(1, 2);
  Tensor v = proj(L, kV, kVb, x).view({B, T, Hk, D}).transpose(1, 2);
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
  if (cache != nullptr) {
    using torch::indexing::Slice;
    Tensor& kc = cache->k(layer);
    Tensor& vc = cache->v(layer);
    if (slot_first >= 0) {
      // Fast path: the rows are the contiguous slots slot_first.., so the cache is read through
      // a view instead of a gathered copy.
      Tensor kv_k = kc.narrow(0, slot_first, B), kv_v = vc.narrow(0, slot_first, B);
      Tensor rows = torch::arange(B, pos_idx.options()).view({B, 1});
      kv_k.index_put_({rows, Slice(), pos_idx}, k.transpose(1, 2));
      kv_v.index_put_({rows, Slice(), pos_idx}, v.transpose(1, 2));
      k = kv_k.narrow(2, 0, kv_len);
      v = kv_v.narrow(2, 0, kv_len);
    } else {
      Tensor rows = slot_idx.view({B, 1});
      // index_put with [B,1] slots and [B,T] positions takes values [B, T, Hk, D]
      kc.index_put_({rows, Slice(), pos_idx}, k.transpose(1, 2));
      vc.index_put_({rows, Slice(), pos_idx}, v.transpose(1, 2));
      k = kc.narrow(2, 0, kv_len).index_select(0, slot_idx);
      v = vc.narrow(2, 0, kv_len).index_select(0, slot_idx);
    }
  }
  Tensor out = at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, std::nullopt, /*enable_gqa=*/Hq != Hk);
  out = out.transpose(1, 2).reshape({B, T, Hq * D});
  return proj(L, kO, kOb, out);
}

Tensor Model::block(const Layer& L, const Tensor& x, const Tensor& cos, const Tensor& sin, const Tensor& mask,
                    KVCache* cache, int64_t layer, const Tensor& slot_idx, const Tensor& pos_idx,
                    int64_t kv_len, int64_t slot_first) const {
  const double eps = config_.rms_norm_eps;
  Tensor h = x + attention(L, rms_norm(x, L.w[kInNorm], eps), cos, sin, mask, cache, layer, slot_idx, pos_idx, kv_len,
                         slot_first);
  Tensor n = rms_norm(h, L.w[kPostNorm], eps);
  Tensor act = torch::silu(proj(L, kGate, kGateB, n)) * proj(L, kUp, kUpB, n);
  return h + proj(L, kDown, kDownB, act);
}

std::vector<Tensor> Model::layer_weights(int64_t layer) const {
  std::vector<Tensor> out;
  for (const auto& w : layers_.at(static_cast<size_t>(layer)).w)
    if (w.defined()) out.push_back(w);
  return out;
}

Model::Layer Model::layer_from(int64_t layer, const std::vector<Tensor>& weights) const {
  Layer L;
  size_t j = 0;
  const auto& orig = layers_.at(static_cast<size_t>(layer));
  for (int i = 0; i < kCount; ++i)
    if (orig.w[i].defined()) L.w[i] = weights.at(j++);
  STRATA_ASSERT(j == weights.size(), "layer_from: " << weights.size() << " weights for " << j << " slots");
  return L;
}

Tensor Model::layer_forward(int64_t layer, const std::vector<Tensor>& weights, const Tensor& x, const Tensor& cos,
                            const Tensor& sin, const Tensor& mask) const {
  return block(layer_from(layer, weights), x, cos, sin, mask, nullptr, layer, {}, {}, 0, -1);
}

Tensor Model::hidden_states(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& position_ids,
                            const ForwardOptions& options) const {
  STRATA_CHECK(defined(), "Model::hidden_states on an empty model");
  STRATA_CHECK(input_ids.dim() == 2, "input_ids must be [B, T], got " << shape_str(input_ids.sizes()));
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const auto dev = device();
  Tensor ids = input_ids.to(dev, torch::kInt64);
  Tensor keep = attention_mask.defined() ? attention_mask.to(dev).to(torch::kBool)
                                         : torch::ones({B, T}, torch::TensorOptions().dtype(torch::kBool).device(dev));
  STRATA_CHECK(keep.sizes() == ids.sizes(), "attention_mask " << shape_str(keep.sizes()) << " must match input_ids "
                                                              << shape_str(ids.sizes()));
  Tensor pos = position_ids.defined() ? position_ids.to(dev, torch::kInt64)
                                      : (keep.to(torch::kInt64).cumsum(-1) - 1).clamp_min(0);
  auto [cos, sin] = rotary(pos);
  // mask: [B, 1, T, T] bool; causal, padding keys hidden, the diagonal always visible so that
  // padded query rows stay finite.
  auto bopt = torch::TensorOptions().dtype(torch::kBool).device(dev);
  Tensor causal = torch::ones({T, T}, bopt).tril();
  Tensor mask = causal.unsqueeze(0).logical_and(keep.unsqueeze(1)).logical_or(torch::eye(T, bopt).unsqueeze(0));
  mask = mask.unsqueeze(1);
  Tensor x = torch::embedding(embed_, ids);
  const bool ckpt = options.gradient_checkpointing && torch::GradMode::is_enabled();
  STRATA_CHECK(!(ckpt && is_int8()), "gradient checkpointing needs float weights; this model is an int8 rollout copy");
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    if (ckpt) {
      std::vector<Tensor> inputs = {x, cos, sin, mask};
      for (auto& w : layer_weights(l)) inputs.push_back(w);
      x = CheckpointedLayer::apply(at::TensorList(inputs), reinterpret_cast<int64_t>(this), l);
    } else {
      x = block(layers_[static_cast<size_t>(l)], x, cos, sin, mask, nullptr, l, {}, {}, 0, -1);
    }
  }
  return rms_norm(x, norm_, config_.rms_norm_eps);
}

Tensor Model::lm_head(const Tensor& hidden) const {
  if (head_q_.defined()) return int8_linear(hidden, head_q_);
  const Tensor& w = lm_head_weight();
  const int64_t rows = hidden.numel() / std::max<int64_t>(1, hidden.size(-1));
  if (rows <= kBf16GemmMaxRows && bf16_kernel_applies() && !(torch::GradMode::is_enabled() && w.requires_grad())) {
    std::vector<int64_t> shape = hidden.sizes().vec();
    shape.back() = w.size(0);
    return bf16_gemm(hidden.reshape({rows, hidden.size(-1)}), packed_matrices().back(), w.size(0), dtype())
        .view(shape);
  }
  return torch::nn::functional::linear(hidden, w);
}

bool Model::bf16_kernel_applies() const {
  return defined() && !is_int8() && dtype() == torch::kBFloat16 && device().is_cpu() && bf16_gemm_available();
}

namespace {
// Position of a matrix among a layer's packed copies (Model::packed_matrices).
constexpr int kPackedPerLayer = 7;
}  // namespace

std::vector<Tensor> Model::packed_matrices() const {
  std::vector<Tensor> sources;
  sources.reserve(layers_.size() * kPackedPerLayer + 1);
  for (const auto& L : layers_)
    for (W i : {kQ, kK, kV, kO, kGate, kUp, kDown}) sources.push_back(L.w[i]);
  sources.push_back(lm_head_weight());
  return bf16_packs_->get(sources);
}

Tensor Model::proj(const Layer& L, W w, W b, const Tensor& x) const {
  if (L.q[w].defined()) return int8_linear(x, L.q[w], L.w[b]);
  return linear(x, L.w[w], L.w[b]);
}

void Model::quantize_int8() {
  STRATA_CHECK(defined(), "quantize_int8 on an empty model");
  STRATA_CHECK(!is_int8(), "quantize_int8: the model is int8 already");
  const auto dtype = this->dtype();
  STRATA_CHECK(dtype == torch::kBFloat16 || dtype == torch::kFloat32,
               "quantize_int8: the activations must be bfloat16 or float32, the model is " << c10::toString(dtype));
  torch::NoGradGuard ng;
  for (auto& L : layers_)
    for (W i : {kQ, kK, kV, kO, kGate, kUp, kDown}) {
      L.q[i] = agent::quantize_int8(L.w[i], dtype);
      L.w[i] = Tensor();
    }
  head_q_ = agent::quantize_int8(lm_head_weight(), dtype);
  lm_head_ = Tensor();
  bf16_packs_ = std::make_shared<Bf16Packs>();
}

void Model::refresh_from(const Model& trained) {
  STRATA_CHECK(trained.defined() && defined(), "refresh_from: an empty model");
  STRATA_CHECK(trained.config_.hidden_size == config_.hidden_size && trained.layers_.size() == layers_.size() &&
                   trained.config_.vocab_size == config_.vocab_size &&
                   trained.config_.tie_word_embeddings == config_.tie_word_embeddings,
               "refresh_from: the trained model has another shape");
  STRATA_CHECK(!trained.is_int8(), "refresh_from: the source must hold float weights");
  torch::NoGradGuard ng;
  auto copy = [](Tensor& dst, const Tensor& src) {
    if (dst.defined()) dst.copy_(src);
  };
  copy(embed_, trained.embed_);
  copy(norm_, trained.norm_);
  copy(lm_head_, trained.lm_head_);
  for (size_t l = 0; l < layers_.size(); ++l)
    for (int i = 0; i < kCount; ++i) {
      copy(layers_[l].w[i], trained.layers_[l].w[i]);
      if (layers_[l].q[i].defined()) requantize_int8(layers_[l].q[i], trained.layers_[l].w[i]);
    }
  if (head_q_.defined()) requantize_int8(head_q_, trained.lm_head_weight());
}

std::map<std::string, Int8Weight> Model::int8_weights() const {
  std::map<std::string, Int8Weight> out;
  if (head_q_.defined()) out["lm_head.weight"] = head_q_;
  const auto specs = layer_specs(config_);
  for (size_t l = 0; l < layers_.size(); ++l)
    for (size_t i = 0; i < specs.size(); ++i)
      if (layers_[l].q[i].defined()) out[layer_prefix(static_cast<int64_t>(l)) + specs[i].suffix] = layers_[l].q[i];
  return out;
}

Tensor Model::forward(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& position_ids,
                      const ForwardOptions& options) const {
  return lm_head(hidden_states(input_ids, attention_mask, position_ids, options));
}

Tensor Model::forward_cached(const Tensor& input_ids, KVCache& cache, const std::vector<int64_t>& slots,
                             const std::vector<int64_t>& start) const {
  torch::NoGradGuard no_grad;
  STRATA_CHECK(input_ids.dim() == 2, "input_ids must be [B, T], got " << shape_str(input_ids.sizes()));
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  STRATA_CHECK(static_cast<int64_t>(slots.size()) == B && static_cast<int64_t>(start.size()) == B,
               "forward_cached: " << slots.size() << " slots and " << start.size() << " starts for batch " << B);
  const auto dev = device();
  int64_t max_start = 0;
  for (int64_t s : start) max_start = std::max(max_start, s);
  const int64_t kv_len = max_start + T;
  STRATA_CHECK(kv_len <= cache.capacity(),
               "KV cache capacity " << cache.capacity() << " exceeded: a sequence needs " << kv_len << " positions");
  if (fused_decode_applies(input_ids, cache)) return decode_fused(input_ids, cache, slots, start);
  auto lopt = torch::TensorOptions().dtype(torch::kInt64);
  Tensor slot_idx = torch::tensor(slots, lopt).to(dev);
  Tensor pos = (torch::tensor(start, lopt).view({B, 1}) + torch::arange(T, lopt).view({1, T})).to(dev);  // [B, T]
  // mask: [B, 1, T, S]: key j is visible to the query at position p when j <= p
  Tensor mask = torch::arange(kv_len, lopt.device(dev)).view({1, 1, kv_len}).le(pos.unsqueeze(-1)).unsqueeze(1);
  auto [cos, sin] = rotary(pos);
  Tensor x = torch::embedding(embed_, input_ids.to(dev, torch::kInt64));
  int64_t slot_first = slots[0];
  for (int64_t b = 1; b < B; ++b)
    if (slots[static_cast<size_t>(b)] != slots[0] + b) slot_first = -1;
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l)
    x = block(layers_[static_cast<size_t>(l)], x, cos, sin, mask, &cache, l, slot_idx, pos, kv_len, slot_first);
  return rms_norm(x, norm_, config_.rms_norm_eps);
}

bool Model::fused_decode_applies(const Tensor& input_ids, KVCache& cache) const {
  if (input_ids.size(1) != 1 || !device().is_cpu() || !decode::available()) return false;
  if (is_int8() && int8_path(head_q_.q, input_ids.size(0)) != Int8Path::kVnni) return false;
  const auto dt = dtype();
  if (dt != torch::kBFloat16 && dt != torch::kFloat32) return false;
  if (config_.num_attention_heads % config_.num_key_value_heads != 0 || config_.head_dim % 2 != 0) return false;
  for (int64_t l = 0; l < cache.num_layers(); ++l)
    if (cache.k(l).scalar_type() != dt || !cache.k(l).is_contiguous() || !cache.v(l).is_contiguous()) return false;
  return true;
}

namespace {

template <typename T>
void add_bias_rows(float* y, const Tensor& bias, int64_t B, int64_t N) {
  const T* b = bias.data_ptr<T>();
  for (int64_t r = 0; r < B; ++r)
    for (int64_t n = 0; n < N; ++n) y[r * N + n] += static_cast<float>(b[n]);
}

// The fused step. product(l, w, in, out) writes rows in [B, K] times matrix w of layer l into out
// [B, N] (float32, no bias); idx: positions of the W enum the caller passes (kInNorm, kQ, kQb, kK,
// kKb, kV, kVb, kO, kOb, kPostNorm, kGate, kGateB, kUp, kUpB, kDown, kDownB).
template <typename T>
Tensor decode_fused_impl(const Tensor& ids_in, KVCache& cache, const std::vector<int64_t>& slots,
                         const std::vector<int64_t>& start, const ModelConfig& c, const Tensor& embed,
                         const Tensor& norm, const Tensor& inv_freq,
                         const std::function<const Tensor&(int64_t, int)>& weight,
                         const std::function<void(int64_t, int, const float*, float*)>& product, const int* idx) {
  const int64_t B = ids_in.size(0), H = c.hidden_size, D = c.head_dim, Hq = c.num_attention_heads,
                Hk = c.num_key_value_heads, I = c.intermediate_size, QD = Hq * D, KD = Hk * D, h2 = D / 2;
  const Tensor ids = ids_in.to(torch::kCPU, torch::kInt64).contiguous();
  std::vector<float> x(B * H), hn(B * H), q(B * QD), k(B * KD), v(B * KD), att(B * QD), o(B * H), g(B * I),
      u(B * I), cs(B * h2), sn(B * h2);
  const T* emb = embed.data_ptr<T>();
  const int64_t* idp = ids.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < H; ++i) x[b * H + i] = static_cast<float>(emb[idp[b] * H + i]);
  // Rotary angles in float32 as rotary() computes them: position * inv_freq.
  const float* inv = inv_freq.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < h2; ++i) {
      const float a = static_cast<float>(start[b]) * inv[i];
      cs[b * h2 + i] = std::cos(a);
      sn[b * h2 + i] = std::sin(a);
    }
  const int64_t C = cache.capacity();
  auto proj = [&](int64_t l, int w, int bias, const float* in, float* out, int64_t N) {
    product(l, idx[w], in, out);
    const Tensor& bt = weight(l, idx[bias]);
    if (bt.defined()) add_bias_rows<T>(out, bt, B, N);
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    decode::rms_norm(x.data(), weight(l, idx[0]).data_ptr<T>(), B, H, c.rms_norm_eps, hn.data());
    proj(l, 1, 2, hn.data(), q.data(), QD);
    proj(l, 3, 4, hn.data(), k.data(), KD);
    proj(l, 5, 6, hn.data(), v.data(), KD);
    decode::rope(q.data(), B, Hq, D, cs.data(), sn.data());
    decode::rope(k.data(), B, Hk, D, cs.data(), sn.data());
    T* kc = cache.k(l).data_ptr<T>();
    T* vc = cache.v(l).data_ptr<T>();
    decode::store_kv(k.data(), v.data(), kc, vc, Hk, C, D, slots.data(), start.data(), B);
    decode::attention(q.data(), kc, vc, Hq, Hk, C, D, slots.data(), start.data(), B, att.data());
    proj(l, 7, 8, att.data(), o.data(), H);
    for (int64_t i = 0; i < B * H; ++i) x[i] += o[i];
    decode::rms_norm(x.data(), weight(l, idx[9]).data_ptr<T>(), B, H, c.rms_norm_eps, hn.data());
    proj(l, 10, 11, hn.data(), g.data(), I);
    proj(l, 12, 13, hn.data(), u.data(), I);
    decode::silu_mul(g.data(), u.data(), B * I, g.data());
    proj(l, 14, 15, g.data(), o.data(), H);
    for (int64_t i = 0; i < B * H; ++i) x[i] += o[i];
  }
  decode::rms_norm(x.data(), norm.data_ptr<T>(), B, H, c.rms_norm_eps, hn.data());
  Tensor out = torch::empty({B, 1, H}, torch::TensorOptions().dtype(embed.scalar_type()));
  T* op = out.data_ptr<T>();
  for (int64_t i = 0; i < B * H; ++i) op[i] = static_cast<T>(hn[i]);
  return out;
}

}  // namespace

Tensor Model::decode_fused(const Tensor& input_ids, KVCache& cache, const std::vector<int64_t>& slots,
                           const std::vector<int64_t>& start) const {
  static const int idx[] = {kInNorm, kQ, kQb, kK, kKb, kV, kVb, kO, kOb, kPostNorm, kGate, kGateB, kUp, kUpB, kDown, kDownB};
  const int64_t B = input_ids.size(0);
  auto weight = [&](int64_t l, int w) -> const Tensor& { return layers_[static_cast<size_t>(l)].w[w]; };
  std::function<void(int64_t, int, const float*, float*)> product;
  std::vector<Tensor> packs;  // bf16_gemm's copies of the matrices (a bf16 model)
  if (is_int8()) {
    product = [&](int64_t l, int w, const float* in, float* out) {
      int8_gemm_f32(in, B, layers_[static_cast<size_t>(l)].q[w], out);
    };
  } else if (bf16_kernel_applies()) {
    packs = packed_matrices();
    product = [&](int64_t l, int w, const float* in, float* out) {
      const Tensor& m = layers_[static_cast<size_t>(l)].w[w];  // [N, K]
      const int j = w == kQ ? 0 : w == kK ? 1 : w == kV ? 2 : w == kO ? 3 : w == kGate ? 4 : w == kUp ? 5 : 6;
      bf16_gemm_f32(in, B, packs[static_cast<size_t>(l * kPackedPerLayer + j)], m.size(0), m.size(1), out);
    };
  } else {
    // One LibTorch matmul per product (oneDNN / MKL), on the rows cast to the weights' dtype.
    product = [&](int64_t l, int w, const float* in, float* out) {
      const Tensor& m = layers_[static_cast<size_t>(l)].w[w];  // [N, K]
      const int64_t N = m.size(0), K = m.size(1);
      const Tensor x = torch::from_blob(const_cast<float*>(in), {B, K}, torch::kFloat32);
      Tensor y = torch::from_blob(out, {B, N}, torch::kFloat32);
      if (m.scalar_type() == torch::kFloat32) at::mm_out(y, x, m.t());  // straight into out
      else y.copy_(at::linear(x.to(m.scalar_type()), m));
    };
  }
  if (dtype() == torch::kBFloat16)
    return decode_fused_impl<c10::BFloat16>(input_ids, cache, slots, start, config_, embed_, norm_, inv_freq_, weight,
                                            product, idx);
  return decode_fused_impl<float>(input_ids, cache, slots, start, config_, embed_, norm_, inv_freq_, weight, product,
                                  idx);
}

Tensor rotary_inv_freq(const ModelConfig& c) {
  // Computed in float32 as transformers does.
  const int64_t D = c.head_dim;
  Tensor inv = 1.0 / torch::pow(c.rope_theta, torch::arange(0, D, 2, torch::kInt64).to(torch::kFloat32) / D);
  if (c.rope_scaling.type == "llama3") {
    const double factor = c.rope_scaling.factor, lf = c.rope_scaling.low_freq_factor,
                 hf = c.rope_scaling.high_freq_factor;
    const double old_ctx = static_cast<double>(c.rope_scaling.original_max_position_embeddings);
    const double low_wl = old_ctx / lf, high_wl = old_ctx / hf;
    Tensor wavelen = 2 * M_PI / inv;
    Tensor scaled = torch::where(wavelen > low_wl, inv / factor, inv);
    Tensor smooth = (old_ctx / wavelen - lf) / (hf - lf);
    Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    Tensor medium = (wavelen >= high_wl).logical_and(wavelen <= low_wl);
    inv = torch::where(medium, smoothed, scaled);
  }
  return inv;
}

Model init_random_model(const ModelConfig& config, uint64_t seed) {
  config.validate();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const double std = 0.02;
  std::map<std::string, Tensor> w;
  auto normal = [&](const std::vector<int64_t>& shape) { return torch::randn(shape, gen) * std; };
  const int64_t V = config.vocab_size, H = config.hidden_size;
  w["model.embed_tokens.weight"] = normal({V, H});
  w["model.norm.weight"] = torch::ones({H});
  if (!config.tie_word_embeddings) w["lm_head.weight"] = normal({V, H});
  const auto specs = layer_specs(config);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    for (const auto& s : specs) {
      if (!s.present) continue;
      const std::string name = layer_prefix(l) + s.suffix;
      if (std::string(s.suffix).find("layernorm") != std::string::npos) w[name] = torch::ones(s.shape);
      else if (s.shape.size() == 1) w[name] = torch::zeros(s.shape);
      else w[name] = normal(s.shape);
    }
  }
  return Model(config, w);
}

}  // namespace strata::agent
