// GGUF <-> Hugging Face folder conversion for the causal LMs strata runs (Llama, Qwen2).
//
// Import: dequantises every tensor, renames it to the transformers layout, undoes llama.cpp's
// rotary row permutation of attn_q/attn_k (Llama only: llama.cpp's converter interleaves the two
// rotary halves of each head; Qwen2 is stored unpermuted), and writes config.json,
// model.safetensors, tokenizer.json, tokenizer_config.json and generation_config.json.
// Export: the reverse, with F32, F16, BF16 or Q8_0 matrices (norms and biases stay F32, as
// llama.cpp keeps them).
#pragma once

#include <string>

namespace strata::agent {

struct GgufImportReport {
  std::string architecture;  // llama, qwen2
  int64_t n_tensors = 0;
  int64_t n_parameters = 0;
  std::string tensor_types;  // e.g. "F32 x61, Q4_1 x210, Q8_0 x1"
};

// `dtype`: float32 or bfloat16. Throws strata::Error naming the file, key or tensor at fault.
GgufImportReport import_gguf(const std::string& gguf_path, const std::string& out_dir,
                             const std::string& dtype = "float32");

// `type`: f32, f16, bf16 or q8_0.
void export_gguf(const std::string& model_dir, const std::string& out_path, const std::string& type);

}  // namespace strata::agent
