// A BERT-family text encoder (BertModel: all-MiniLM-L6-v2, e5-small/base-v2, bge-*-en-v1.5) run
// in LibTorch, for dense retrieval: a Hugging Face folder in, one L2-normalised vector per text
// out.
//
//   auto enc = strata::agent::TextEncoder::load("models/e5-base-v2", strata::agent::e5_preset());
//   std::vector<float> q = enc->encode_queries({"who wrote hamlet"});   // 1 x enc->dim()
//
// The folder holds config.json (model_type "bert"), model.safetensors and tokenizer.json (a
// WordPiece model, see agent/tokenizer/tokenizer.h), and optionally 1_Pooling/config.json
// (sentence-transformers' pooling choice). load() checks all of them before any weight is read:
// a folder that is not BERT is a strata::Error naming the file and the key.
//
// This header stays free of <torch/torch.h> so that torch-free code (indexes, daemons, programs)
// can hold an encoder; only agent/encoder.cpp and agent/bert.* see LibTorch.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace strata::agent {

// How token states become one vector: the mean over the non-padding tokens, or the [CLS] state.
enum class Pooling { kMean, kCls };

// "mean" / "cls"; parse_pooling throws a strata::Error listing the names on anything else.
const char* pooling_name(Pooling p);
Pooling parse_pooling(const std::string& name);

struct EncoderOptions {
  std::string query_prefix;            // put before every query, e.g. "query: " for E5
  std::string passage_prefix;          // put before every passage, e.g. "passage: " for E5
  std::optional<Pooling> pooling;      // empty: 1_Pooling/config.json if present, else mean
  bool normalize = true;               // L2-normalise each output vector
  int max_length = 512;                // tokens incl. [CLS]/[SEP]; longer inputs are truncated
                                       // (also capped by the model's max_position_embeddings)
  std::string device = "cpu";          // cpu, cuda, cuda:N (agent/runtime.h's pick_device names)
  bool bf16 = false;                   // bf16 weights and matmuls (CUDA, or CPUs with AVX512-BF16)
  int batch_size = 64;                 // texts per forward; batches are formed by sorted length
};

// E5 (e5-small/base/large-v2): "query: " / "passage: " prefixes, mean pooling, L2 norm.
EncoderOptions e5_preset();

class TextEncoder {
 public:
  // Loads the folder `dir` (see above). Errors (not BERT, missing files or keys, bad options)
  // are strata::Error and come before the weights are read.
  static std::unique_ptr<TextEncoder> load(const std::string& dir, const EncoderOptions& opts);
  ~TextEncoder();
  TextEncoder(const TextEncoder&) = delete;
  TextEncoder& operator=(const TextEncoder&) = delete;

  // Length of each output vector (the model's hidden_size).
  int dim() const;
  // One line for logs and index manifests: model type, layers, dim, pooling, prefixes, device,
  // precision, e.g. `bert layers=6 dim=384 pooling=mean normalize=1 query_prefix="" ...`.
  std::string describe() const;

  // Row-major [texts.size() x dim()] float32, in the order of `texts`. Not thread-safe: one
  // caller at a time per encoder (the forward itself uses LibTorch's intra-op threads).
  std::vector<float> encode_queries(const std::vector<std::string>& texts);
  std::vector<float> encode_passages(const std::vector<std::string>& texts);

  struct Impl;

 private:
  explicit TextEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::agent
