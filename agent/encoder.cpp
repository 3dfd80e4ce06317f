#include "agent/encoder.h"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "agent/bert.h"
#include "agent/runtime.h"
#include "agent/safetensors.h"
#include "agent/tokenizer/tokenizer.h"
#include "core/error.h"

namespace strata::agent {

namespace fs = std::filesystem;
using torch::Tensor;

const char* pooling_name(Pooling p) { return p == Pooling::kCls ? "cls" : "mean"; }

Pooling parse_pooling(const std::string& name) {
  if (name == "mean") return Pooling::kMean;
  if (name == "cls") return Pooling::kCls;
  STRATA_FAIL("pooling: unknown value \"" << name << "\" (expected mean or cls)");
}

EncoderOptions e5_preset() {
  EncoderOptions o;
  o.query_prefix = "query: ";
  o.passage_prefix = "passage: ";
  o.pooling = Pooling::kMean;
  return o;
}

namespace {

// sentence-transformers' 1_Pooling/config.json: mean or CLS; the other modes are refused.
Pooling read_pooling_config(const std::string& path) {
  std::ifstream in(path);
  STRATA_CHECK(in.good(), path << ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    STRATA_FAIL(path << ": not valid JSON: " << e.what());
  }
  auto on = [&](const char* key) {
    return j.contains(key) && j.at(key).is_boolean() && j.at(key).get<bool>();
  };
  for (const char* key : {"pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                          "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"}) {
    STRATA_CHECK(!on(key), path << ": " << key
                                << " is not supported (mean or CLS pooling; set the pooling option "
                                   "to override)");
  }
  const bool cls = on("pooling_mode_cls_token"), mean = on("pooling_mode_mean_tokens");
  STRATA_CHECK(cls != mean, path << ": exactly one of pooling_mode_cls_token and "
                                    "pooling_mode_mean_tokens must be true");
  return cls ? Pooling::kCls : Pooling::kMean;
}

std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

struct TextEncoder::Impl {
  std::string dir;
  EncoderOptions opts;
  Pooling pooling = Pooling::kMean;
  int64_t max_length = 512;
  BertConfig config;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<BertModel> model;
  torch::Device device{torch::kCPU};
  torch::Dtype dtype = torch::kFloat32;
  int64_t pad_id = 0;

  std::vector<float> encode(const std::vector<std::string>& texts, const std::string& prefix);
};

std::vector<float> TextEncoder::Impl::encode(const std::vector<std::string>& texts,
                                             const std::string& prefix) {
  const int64_t n = static_cast<int64_t>(texts.size());
  const int64_t H = config.hidden_size;
  std::vector<float> out(static_cast<size_t>(n * H));
  if (n == 0) return out;
  // Tokenize in parallel (the tokenizer is thread-safe).
  std::vector<std::vector<int32_t>> ids(static_cast<size_t>(n));
  at::parallel_for(0, n, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      ids[i] = tokenizer->encode_single(prefix + texts[i], static_cast<size_t>(max_length));
    }
  });
  // Longest first, so that each batch pads little.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });
  torch::InferenceMode guard;
  const int64_t bs = opts.batch_size;
  for (int64_t start = 0; start < n; start += bs) {
    const int64_t B = std::min(bs, n - start);
    const int64_t T = std::max<int64_t>(1, static_cast<int64_t>(ids[order[start]].size()));
    Tensor input = torch::full({B, T}, pad_id, torch::kInt64);
    Tensor mask = torch::zeros({B, T}, torch::kInt64);
    auto in_a = input.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (int64_t r = 0; r < B; ++r) {
      const std::vector<int32_t>& row = ids[order[start + r]];
      for (size_t t = 0; t < row.size(); ++t) {
        in_a[r][static_cast<int64_t>(t)] = row[t];
        mask_a[r][static_cast<int64_t>(t)] = 1;
      }
    }
    input = input.to(device);
    mask = mask.to(device);
    const Tensor hidden = model->forward(input, mask).to(torch::kFloat32);
    Tensor pooled;
    if (pooling == Pooling::kCls) {
      pooled = hidden.select(1, 0);
    } else {
      const Tensor m = mask.unsqueeze(-1).to(torch::kFloat32);
      pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9);
    }
    if (opts.normalize) {
      pooled = torch::nn::functional::normalize(
          pooled, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
    }
    pooled = pooled.to(torch::kCPU).contiguous();
    const float* src = pooled.data_ptr<float>();
    for (int64_t r = 0; r < B; ++r) {
      std::copy(src + r * H, src + (r + 1) * H, out.data() + order[start + r] * H);
    }
  }
  return out;
}

TextEncoder::TextEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TextEncoder::~TextEncoder() = default;

std::unique_ptr<TextEncoder> TextEncoder::load(const std::string& dir, const EncoderOptions& opts) {
  STRATA_CHECK(fs::is_directory(dir), "encoder: " << dir << " is not a folder");
  STRATA_CHECK(opts.max_length >= 2,
               "encoder: max_length " << opts.max_length << " leaves no room for [CLS] and [SEP]");
  STRATA_CHECK(opts.batch_size >= 1, "encoder: batch_size must be at least 1, got " << opts.batch_size);
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->opts = opts;
  // Every file and key first; weights last.
  impl->config = read_bert_config((fs::path(dir) / "config.json").string());
  const std::string tok_path = (fs::path(dir) / "tokenizer.json").string();
  STRATA_CHECK(fs::is_regular_file(tok_path),
               tok_path << ": not found (the encoder needs the model's tokenizer.json)");
  impl->tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_file(tok_path));
  STRATA_CHECK(impl->tokenizer->vocab_size() <= impl->config.vocab_size,
               tok_path << ": " << impl->tokenizer->vocab_size()
                        << " token ids, more than config.json's vocab_size " << impl->config.vocab_size);
  STRATA_CHECK(!impl->tokenizer->encode_single("").empty(),
               tok_path << ": post_processor adds no [CLS]/[SEP] (not a BERT tokenizer)");
  impl->pad_id = impl->tokenizer->pad_id().value_or(impl->config.pad_token_id);
  const std::string pool_path = (fs::path(dir) / "1_Pooling" / "config.json").string();
  impl->pooling = opts.pooling ? *opts.pooling
                  : fs::is_regular_file(pool_path) ? read_pooling_config(pool_path)
                                                   : Pooling::kMean;
  impl->max_length = std::min<int64_t>(opts.max_length, impl->config.max_position_embeddings);
  impl->device = torch::Device(pick_device(opts.device));
  impl->dtype = opts.bf16 ? torch::kBFloat16 : torch::kFloat32;
  const std::string weights_path = (fs::path(dir) / "model.safetensors").string();
  STRATA_CHECK(fs::is_regular_file(weights_path),
               weights_path << ": not found (the encoder reads safetensors weights)");
  SafetensorsFile weights(weights_path);
  impl->model = std::make_unique<BertModel>(impl->config, weights);
  impl->model->to(impl->device, impl->dtype);
  return std::unique_ptr<TextEncoder>(new TextEncoder(std::move(impl)));
}

int TextEncoder::dim() const { return static_cast<int>(impl_->config.hidden_size); }

std::string TextEncoder::describe() const {
  std::ostringstream os;
  os << "bert layers=" << impl_->config.num_hidden_layers << " dim=" << impl_->config.hidden_size
     << " heads=" << impl_->config.num_attention_heads << " pooling=" << pooling_name(impl_->pooling)
     << " normalize=" << (impl_->opts.normalize ? 1 : 0) << " max_length=" << impl_->max_length
     << " query_prefix=" << quoted(impl_->opts.query_prefix)
     << " passage_prefix=" << quoted(impl_->opts.passage_prefix) << " device=" << impl_->device.str()
     << " dtype=" << (impl_->dtype == torch::kBFloat16 ? "bf16" : "fp32")
     << " model=" << quoted(fs::path(impl_->dir).filename().string());
  return os.str();
}

std::vector<float> TextEncoder::encode_queries(const std::vector<std::string>& texts) {
  return impl_->encode(texts, impl_->opts.query_prefix);
}

std::vector<float> TextEncoder::encode_passages(const std::vector<std::string>& texts) {
  return impl_->encode(texts, impl_->opts.passage_prefix);
}

}  // namespace strata::agent
