// generate: run the policy model on prompts with the KV-cache generation engine.
//   generate --model DIR --prompt "Who wrote Hamlet?" [--prompt ...] [--max-new-tokens 64]
//   generate --model DIR --prompt-ids 1,2,3 [--prompt-ids 4,5] --temperature 0.7 --top-p 0.9
// Prints one JSON line per prompt: {"index", "prompt_ids", "ids", "logprobs", "finish", "text"}.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/checkpoint.h"
#include "agent/generation.h"
#include "agent/runtime.h"
#include "agent/tokenizer/tokenizer.h"
#include "core/cli.h"
#include "core/error.h"

namespace {

std::vector<int64_t> parse_ids(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    size_t pos = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    STRATA_CHECK(pos == item.size() && v >= 0, "bad token id '" << item << "' in '" << s << "'");
    out.push_back(v);
  }
  STRATA_CHECK(!out.empty(), "empty id list '" << s << "'");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace strata::agent;
  CLI::App app{"Generate continuations with the strata policy model (KV cache, continuous batching)."};
  app.name("generate");
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  std::string model_dir, tokenizer_path, device = "auto", dtype = "auto";
  std::vector<std::string> prompts, prompt_ids, stops, stop_ids;
  GenerationOptions gen;
  gen.max_new_tokens = 64;
  gen.sampling.temperature = 0.0;
  int64_t max_slots = 16, max_seq_len = 2048;
  int threads = 0;
  bool chat = false;
  app.add_option("--model", model_dir, "model directory (config.json + safetensors)")->required();
  app.add_option("--tokenizer", tokenizer_path, "tokenizer.json (default: MODEL/tokenizer.json)");
  app.add_option("--prompt", prompts, "prompt text (repeatable)");
  app.add_option("--prompt-ids", prompt_ids, "prompt as comma-separated token ids (repeatable)");
  app.add_option("--max-new-tokens", gen.max_new_tokens, "tokens to generate per prompt")->capture_default_str();
  app.add_option("--temperature", gen.sampling.temperature, "0 = greedy")->capture_default_str();
  app.add_option("--top-p", gen.sampling.top_p, "nucleus mass (1 = off)")->capture_default_str();
  app.add_option("--top-k", gen.sampling.top_k, "keep the k most likely tokens (0 = off)")->capture_default_str();
  app.add_option("--seed", gen.seed, "sampling seed (prompt i uses seed + i)")->capture_default_str();
  app.add_option("--stop", stops, "stop text, tokenized (repeatable), e.g. '</search>'");
  app.add_option("--stop-ids", stop_ids, "stop token-id sequence, comma-separated (repeatable)");
  app.add_option("--device", device, "auto, cpu or cuda")->capture_default_str();
  app.add_option("--dtype", dtype,
                 "auto (bfloat16 on CUDA and on CPUs with AVX512-BF16/AMX, else float32), float32, bfloat16, "
                 "float16, or int8 (weight-only int8 matrices, bf16 activations)")
      ->capture_default_str();
  app.add_option("--max-slots", max_slots, "sequences decoded together")->capture_default_str();
  app.add_option("--max-seq-len", max_seq_len, "KV-cache positions per sequence")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (0 = LibTorch default)")->capture_default_str();
  app.add_flag("--chat", chat, "wrap each --prompt in a Qwen-style <|im_start|>user ... <|im_start|>assistant turn");
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    if (threads > 0) torch::set_num_threads(threads);
    STRATA_CHECK(!prompts.empty() || !prompt_ids.empty(), "give at least one --prompt or --prompt-ids");
    LoadOptions lo;
    lo.device = device;
    lo.dtype = dtype;
    if (dtype == "auto") {
      const std::string dev = pick_device(device);
      lo.dtype = auto_inference_dtype(dev);
      std::fprintf(stderr, "generate: --dtype auto: %s on %s (set --dtype float32 to override)\n", lo.dtype.c_str(),
                   dev.c_str());
    }
    Model model = load_model(model_dir, lo);
    std::optional<Tokenizer> tok;
    const std::string tpath = tokenizer_path.empty() ? model_dir + "/tokenizer.json" : tokenizer_path;
    if (!prompts.empty() || !stops.empty() || std::filesystem::exists(tpath)) {
      STRATA_CHECK(std::filesystem::exists(tpath), "--prompt/--stop need a tokenizer; '" << tpath << "' does not exist");
      tok.emplace(Tokenizer::from_file(tpath));
    }
    auto to64 = [](const std::vector<int32_t>& v) { return std::vector<int64_t>(v.begin(), v.end()); };
    std::vector<std::vector<int64_t>> inputs;
    for (const auto& p : prompts) {
      const std::string text = chat ? "<|im_start|>user\n" + p + "<|im_end|>\n<|im_start|>assistant\n" : p;
      inputs.push_back(to64(tok->encode(text)));
    }
    for (const auto& p : prompt_ids) inputs.push_back(parse_ids(p));
    for (const auto& s : stops) gen.stop_sequences.push_back(to64(tok->encode(s)));
    for (const auto& s : stop_ids) gen.stop_sequences.push_back(parse_ids(s));
    const auto t0 = std::chrono::steady_clock::now();
    auto results = generate(model, inputs, gen, EngineOptions{max_slots, max_seq_len});
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int64_t total = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      nlohmann::json j;
      j["index"] = i;
      j["prompt_ids"] = inputs[i];
      j["ids"] = results[i].tokens;
      j["logprobs"] = results[i].logprobs;
      j["finish"] = finish_reason_name(results[i].reason);
      if (tok) j["text"] = tok->decode(std::vector<int32_t>(results[i].tokens.begin(), results[i].tokens.end()));
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      total += static_cast<int64_t>(results[i].tokens.size());
    }
    // (fmt-based STRATA_LOG_* cannot be used here: LibTorch's headers bring their own fmt.)
    std::fprintf(stderr, "generated %lld tokens for %zu prompts in %.2fs (%.1f tokens/s) on %s\n",
                 static_cast<long long>(total), results.size(), secs, total / std::max(secs, 1e-9),
                 model.device().str().c_str());
    return 0;
  });
}
