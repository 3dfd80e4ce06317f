#include "agent/checkpoint.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/runtime.h"
#include "agent/safetensors.h"
#include "core/error.h"

namespace strata::agent {

namespace fs = std::filesystem;

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16") return torch::kFloat16;
  STRATA_FAIL("unsupported dtype '" << name << "' (float32, bfloat16, float16; int8 where an inference copy is meant)");
}

std::string dtype_name(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: break;
  }
  STRATA_FAIL("dtype " << c10::toString(dtype) << " has no config.json name");
}

std::map<std::string, torch::Tensor> load_safetensors_dir(const std::string& dir) {
  const fs::path d(dir);
  STRATA_CHECK(fs::is_directory(d), "model directory '" << dir << "' does not exist");
  std::map<std::string, torch::Tensor> out;
  const fs::path index = d / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream in(index);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      STRATA_FAIL("'" << index.string() << "' is not valid JSON: " << e.what());
    }
    STRATA_CHECK(j.contains("weight_map") && j.at("weight_map").is_object(),
                 "'" << index.string() << "' has no weight_map object");
    std::map<std::string, std::unique_ptr<SafetensorsFile>> files;
    for (const auto& [name, file] : j.at("weight_map").items()) {
      const std::string f = file.get<std::string>();
      auto it = files.find(f);
      if (it == files.end()) it = files.emplace(f, std::make_unique<SafetensorsFile>((d / f).string())).first;
      STRATA_CHECK(it->second->contains(name),
                   "'" << index.string() << "' maps tensor '" << name << "' to '" << f << "', which lacks it");
      out[name] = it->second->get(name);
    }
    return out;
  }
  const fs::path single = d / "model.safetensors";
  STRATA_CHECK(fs::exists(single), "'" << dir << "' has neither model.safetensors nor model.safetensors.index.json");
  SafetensorsFile file(single.string());
  for (const auto& name : file.names()) out[name] = file.get(name);
  return out;
}

Model load_model(const std::string& dir, const LoadOptions& options) {
  ModelConfig config = load_model_config(dir);
  const std::string dev = pick_device(options.device);
  const bool int8 = options.dtype == "int8";
  const torch::Dtype dtype = options.dtype == "auto" ? (dev != "cpu" ? torch::kBFloat16 : torch::kFloat32)
                             : int8                 ? torch::kBFloat16
                                                    : parse_dtype(options.dtype);
  auto weights = load_safetensors_dir(dir);
  for (auto& kv : weights) {
    // A view of the mapping when dtype and device already match; otherwise one converted copy.
    if (!kv.second.is_floating_point()) continue;
    kv.second = kv.second.to(torch::Device(dev), dtype);
    // A diverged or damaged checkpoint would otherwise load silently and fail much later (NaN
    // log-probs in the first step, or a policy that only ever emits one token).
    const int64_t bad = (~torch::isfinite(kv.second)).sum().item<int64_t>();
    STRATA_CHECK(bad == 0, "cannot load model '" << dir << "': tensor '" << kv.first << "' has "
                                                 << bad << " non-finite values (NaN or Inf) of "
                                                 << kv.second.numel()
                                                 << " (a diverged or damaged checkpoint)");
  }
  try {
    Model model(config, weights);
    if (int8) model.quantize_int8();
    return model;
  } catch (const Error& e) {
    STRATA_FAIL("cannot load model '" << dir << "': " << e.what());
  }
}

void save_model(const Model& model, const std::string& dir, const std::string& tokenizer_dir) {
  STRATA_CHECK(model.defined(), "save_model: empty model");
  STRATA_CHECK(!model.is_int8(), "save_model: an int8 inference copy is not a checkpoint; save the float model");
  fs::create_directories(dir);
  ModelConfig config = model.config();
  config.torch_dtype = dtype_name(model.dtype());
  {
    std::ofstream out(fs::path(dir) / "config.json", std::ios::trunc);
    STRATA_CHECK(out, "cannot write config.json in '" << dir << "'");
    out << model_config_to_json(config);
  }
  save_safetensors((fs::path(dir) / "model.safetensors").string(), model.named_parameters());
  // A stale index from an earlier sharded save would shadow the new single file.
  std::error_code ec;
  fs::remove(fs::path(dir) / "model.safetensors.index.json", ec);
  if (!tokenizer_dir.empty() && fs::path(tokenizer_dir) != fs::path(dir)) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                             "generation_config.json", "vocab.json", "merges.txt"}) {
      const fs::path src = fs::path(tokenizer_dir) / name;
      if (fs::exists(src)) fs::copy_file(src, fs::path(dir) / name, fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace strata::agent
