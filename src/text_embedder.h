// The encoder options of build_index --dense and retrieval_server, and the one place a program
// turns them into a retrieval::Embedder: "hash:DIM" is the model-free test embedder
// (retrieval/hash_embedder.h); anything else is a Hugging Face BERT folder run by
// agent::TextEncoder (LibTorch), adapted here to the torch-free interface the dense index uses.
// Shared by the two programs, included by nothing else.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/encoder.h"  // torch-free header; its code links only with STRATA_WITH_TORCH
#include "core/error.h"
#include "retrieval/embedder.h"
#include "retrieval/hash_embedder.h"

namespace strata::programs {

struct EncoderCli {
  std::string encoder;         // folder or hash:DIM
  bool e5 = false;             // E5's prefixes
  std::string query_prefix, passage_prefix;
  std::string pooling;         // "" = the folder's 1_Pooling/config.json, else mean
  std::string device = "cpu";
  bool bf16 = false;
  int batch_size = 64;
  int max_length = 512;
  int hash_delay_ms = 0;       // TESTING AID for hash:DIM
};

inline void add_encoder_options(CLI::App& app, EncoderCli& o, bool required) {
  auto* e = app.add_option("--encoder", o.encoder,
                           "BERT-family Hugging Face folder (all-MiniLM-L6-v2, e5-*-v2, bge-*) or "
                           "hash:DIM (a model-free bag-of-words embedder for tests)");
  if (required) e->required();
  app.add_flag("--e5", o.e5, "E5's \"query: \" / \"passage: \" prefixes (and mean pooling)");
  app.add_option("--query-prefix", o.query_prefix, "text put before every query");
  app.add_option("--passage-prefix", o.passage_prefix, "text put before every passage");
  app.add_option("--pooling", o.pooling, "mean or cls (default: the folder's 1_Pooling, else mean)");
  app.add_option("--device", o.device, "encoder device: cpu, cuda, cuda:N")->capture_default_str();
  app.add_flag("--bf16", o.bf16, "bf16 encoder weights and matmuls (CUDA, or AVX512-BF16 CPUs)");
  app.add_option("--encoder-batch", o.batch_size, "texts per encoder forward")
      ->capture_default_str();
  app.add_option("--max-length", o.max_length, "tokens per text, longer ones are truncated")
      ->capture_default_str();
  app.add_option("--hash-delay-ms", o.hash_delay_ms,
                 "TESTING AID: with --encoder hash:DIM, sleep this long per encoder call")
      ->capture_default_str();
}

// The vector length an encoder folder will produce, from its config.json, without loading it
// (so that a dimension mismatch with an index is an error before any weight is read).
inline int peek_encoder_dim(const EncoderCli& o) {
  if (const int d = retrieval::HashEmbedder::parse_spec(o.encoder)) return d;
  const auto cfg = std::filesystem::path(o.encoder) / "config.json";
  std::ifstream in(cfg);
  STRATA_CHECK(in.good(), "--encoder " << o.encoder
                                       << ": no config.json (give a Hugging Face BERT folder or "
                                          "hash:DIM)");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    STRATA_FAIL(cfg.string() << " is not valid JSON: " << e.what());
  }
  STRATA_CHECK(j.contains("hidden_size") && j["hidden_size"].is_number_integer(),
               cfg.string() << " lacks an integer hidden_size (not a BERT-family model?)");
  return j["hidden_size"].get<int>();
}

#if STRATA_HAVE_TEXT_ENCODER
class TextEncoderEmbedder final : public retrieval::Embedder {
 public:
  explicit TextEncoderEmbedder(std::unique_ptr<agent::TextEncoder> enc) : enc_(std::move(enc)) {}
  int dim() const override { return enc_->dim(); }
  std::string describe() const override { return enc_->describe(); }
  std::vector<float> embed(const std::vector<std::string>& texts, bool is_query) override {
    return is_query ? enc_->encode_queries(texts) : enc_->encode_passages(texts);
  }

 private:
  std::unique_ptr<agent::TextEncoder> enc_;
};
#endif

inline std::unique_ptr<retrieval::Embedder> open_embedder(const EncoderCli& o) {
  if (const int d = retrieval::HashEmbedder::parse_spec(o.encoder))
    return std::make_unique<retrieval::HashEmbedder>(d, o.hash_delay_ms);
#if STRATA_HAVE_TEXT_ENCODER
  agent::EncoderOptions eo = o.e5 ? agent::e5_preset() : agent::EncoderOptions{};
  if (!o.query_prefix.empty()) eo.query_prefix = o.query_prefix;
  if (!o.passage_prefix.empty()) eo.passage_prefix = o.passage_prefix;
  if (!o.pooling.empty()) eo.pooling = agent::parse_pooling(o.pooling);
  eo.device = o.device;
  eo.bf16 = o.bf16;
  eo.batch_size = o.batch_size;
  eo.max_length = o.max_length;
  return std::make_unique<TextEncoderEmbedder>(agent::TextEncoder::load(o.encoder, eo));
#else
  STRATA_FAIL("--encoder " << o.encoder
                           << ": this build has no BERT encoder (built without LibTorch); use "
                              "hash:DIM or rebuild with STRATA_WITH_TORCH=ON");
#endif
}

}  // namespace strata::programs
