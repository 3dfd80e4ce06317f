// make_tiny_model: a randomly initialised Qwen2-shaped policy in Hugging Face layout, sized to a
// tokenizer, for tests and smoke runs:
//   make_tiny_model --tokenizer DIR_OR_tokenizer.json --out DIR [--hidden 256 --layers 4] --seed 1
#include <filesystem>

#include "agent/checkpoint.h"
#include "agent/model.h"
#include "agent/tokenizer/tokenizer.h"
#include "core/cli.h"
#include "core/error.h"
#include <cstdio>

int main(int argc, char** argv) {
  using namespace strata::agent;
  namespace fs = std::filesystem;
  CLI::App app{"Write a random tiny Qwen2-shaped model (config.json + model.safetensors + tokenizer files)."};
  app.name("make_tiny_model");
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  std::string tokenizer, out;
  int64_t vocab = 0, hidden = 256, layers = 4, heads = 4, kv_heads = 2, intermediate = 0, max_pos = 4096;
  uint64_t seed = 0;
  app.add_option("--tokenizer", tokenizer, "tokenizer.json or the folder holding it (sets vocab size and eos)");
  app.add_option("--vocab-size", vocab, "vocabulary size when no --tokenizer is given");
  app.add_option("--out", out, "output directory")->required();
  app.add_option("--hidden", hidden, "hidden size")->capture_default_str();
  app.add_option("--layers", layers, "decoder layers")->capture_default_str();
  app.add_option("--heads", heads, "attention heads")->capture_default_str();
  app.add_option("--kv-heads", kv_heads, "key/value heads")->capture_default_str();
  app.add_option("--intermediate", intermediate, "MLP width (0 = 3 x hidden)")->capture_default_str();
  app.add_option("--max-positions", max_pos, "max_position_embeddings")->capture_default_str();
  app.add_option("--seed", seed, "initialisation seed")->capture_default_str();
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    std::string tok_dir;
    std::vector<int64_t> eos;
    int64_t bos = -1;
    if (!tokenizer.empty()) {
      const fs::path p = fs::is_directory(tokenizer) ? fs::path(tokenizer) / "tokenizer.json" : fs::path(tokenizer);
      const Tokenizer tok = Tokenizer::from_file(p.string());
      vocab = tok.vocab_size();
      if (auto e = tok.eos_id()) eos.push_back(*e);
      if (auto b = tok.bos_id()) bos = *b;
      tok_dir = p.parent_path().string();
    }
    STRATA_CHECK(vocab > 0, "give --tokenizer or a positive --vocab-size");
    ModelConfig c = make_tiny_config(vocab);
    c.hidden_size = hidden;
    c.num_hidden_layers = layers;
    c.num_attention_heads = heads;
    c.num_key_value_heads = kv_heads;
    STRATA_CHECK(heads > 0 && hidden % heads == 0, "--hidden " << hidden << " must be a multiple of --heads " << heads);
    c.head_dim = hidden / heads;
    c.intermediate_size = intermediate > 0 ? intermediate : 3 * hidden;
    c.max_position_embeddings = max_pos;
    c.eos_token_ids = eos;
    c.bos_token_id = bos;
    c.validate();
    Model m = init_random_model(c, seed);
    save_model(m, out, tok_dir);
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel();
    // (fmt-based STRATA_LOG_* cannot be used here: LibTorch's headers bring their own fmt.)
    std::fprintf(stderr, "wrote %s (%lld parameters, vocab %lld, hidden %lld, %lld layers)\n", out.c_str(),
                 static_cast<long long>(n), static_cast<long long>(vocab), static_cast<long long>(hidden),
                 static_cast<long long>(layers));
    return 0;
  });
}
