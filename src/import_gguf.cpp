// import_gguf: a GGUF file (llama.cpp, Ollama, LM Studio) -> a Hugging Face folder that strata and
// transformers load:
//   import_gguf --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out DIR [--dtype float32|bfloat16]
#include <cstdio>

#include "agent/gguf_convert.h"
#include "core/cli.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Convert a GGUF model (Llama or Qwen2 architecture; F32/F16/BF16, Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 and "
      "Q2_K-Q6_K tensors) to a Hugging Face folder: config.json, model.safetensors (dequantised), "
      "tokenizer.json rebuilt from the GGUF vocabulary, tokenizer_config.json with the chat template, "
      "generation_config.json."};
  app.name("import_gguf");
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  std::string gguf, out, dtype = "float32";
  app.add_option("--gguf", gguf, "the .gguf file")->required();
  app.add_option("--out", out, "output folder (created)")->required();
  app.add_option("--dtype", dtype, "dtype of the written weights: float32 or bfloat16")->capture_default_str();
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    const auto r = strata::agent::import_gguf(gguf, out, dtype);
    std::fprintf(stderr, "imported %s: %s, %lld tensors (%s), %lld parameters -> %s (%s)\n", gguf.c_str(),
                 r.architecture.c_str(), static_cast<long long>(r.n_tensors), r.tensor_types.c_str(),
                 static_cast<long long>(r.n_parameters), out.c_str(), dtype.c_str());
    return 0;
  });
}
