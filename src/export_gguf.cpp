// export_gguf: a Hugging Face folder (a policy trained by strata, or any Llama/Qwen2 checkpoint) ->
// one GGUF file that llama.cpp, Ollama and LM Studio run:
//   export_gguf --model runs/demo/grpo/final --out policy.gguf [--type f32|f16|bf16|q8_0]
#include <cstdio>

#include "agent/gguf_convert.h"
#include "core/cli.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Write a Hugging Face folder (config.json, model.safetensors, tokenizer.json) as a GGUF v3 file. "
      "Matrices take --type; norms and biases stay F32. The tokenizer and chat template travel with it."};
  app.name("export_gguf");
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  std::string model, out, type = "f16";
  app.add_option("--model", model, "the model folder")->required();
  app.add_option("--out", out, "the .gguf file to write")->required();
  app.add_option("--type", type, "tensor type of the matrices: f32, f16, bf16 or q8_0")->capture_default_str();
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    strata::agent::export_gguf(model, out, type);
    std::fprintf(stderr, "wrote %s (%s)\n", out.c_str(), type.c_str());
    return 0;
  });
}
