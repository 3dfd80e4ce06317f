// Hugging Face checkpoints in and out: config.json + model.safetensors (or a sharded
// model.safetensors.index.json). Loading memory-maps the files; weights already in the wanted
// dtype on CPU are views of the mapping (no second copy in RAM).
#pragma once

#include <string>

#include "agent/model.h"

namespace strata::agent {

struct LoadOptions {
  std::string device = "cpu";  // "auto", "cpu", "cuda" or "cuda:N" (see pick_device)
  // "auto" (float32 on CPU, bfloat16 on CUDA), float32, bfloat16, float16, or int8 (bf16 weights
  // turned into an int8 inference copy: Model::quantize_int8). Programs resolve their "auto" with
  // auto_inference_dtype (agent/runtime.h) first.
  std::string dtype = "auto";
};

// Loads `dir` (config.json + weights). Errors name the file, or the tensor and both shapes.
Model load_model(const std::string& dir, const LoadOptions& options = {});

// All tensors of a checkpoint directory by name (sharded or not), as mapped CPU tensors.
std::map<std::string, torch::Tensor> load_safetensors_dir(const std::string& dir);

// Writes `model` to `dir` as config.json + model.safetensors in the model's dtype (config's
// torch_dtype is updated to match), copying tokenizer.json, tokenizer_config.json,
// special_tokens_map.json and generation_config.json from `tokenizer_dir` when they exist there.
void save_model(const Model& model, const std::string& dir, const std::string& tokenizer_dir = "");

torch::Dtype parse_dtype(const std::string& name);  // float32, bfloat16, float16
std::string dtype_name(torch::Dtype dtype);

}  // namespace strata::agent
