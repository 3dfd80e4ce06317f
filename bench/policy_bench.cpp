// policy_bench: strata's side of scripts/bench/policy.sh. Times, on a model directory,
//   gen:   greedy generation of --new tokens for --batch prompts of --prompt-len random ids
//          (engine with --batch slots; prefill + decode), reported as generated tokens/s; with
//          --group G the batch is batch/G distinct prompts, each G times (a GRPO group), whose
//          prefill the engine shares unless --no-share; --prompt-ids gives one prompt that every
//          sequence starts from instead (scripts/bench/decode.sh, the same ids as llama.cpp's);
//   peak:  the float32 GEMM rate of agent/runtime.h bench_matmul (n = 1024), GFLOP/s;
//          (--int8-path forces one int8 product for parity checks; --print-tokens adds the first
//          sequence's tokens and log-probs);
//   train: forward + backward of sequence_logprobs over [--batch, --seq] ids, tokens/s.
// Prints one JSON line per run.
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "agent/checkpoint.h"
#include "agent/generation.h"
#include "agent/logprobs.h"
#include "agent/runtime.h"
#include "core/cli.h"
#include "core/error.h"
#include "core/rng.h"

int main(int argc, char** argv) {
  using namespace strata::agent;
  CLI::App app{"Time strata's policy model: generation and training throughput."};
  app.name("policy_bench");
  std::string model_dir, mode = "gen";
  int64_t batch = 1, prompt_len = 128, new_tokens = 128, seq = 256, reps = 1;
  int threads = 0;
  int64_t group = 1;
  bool no_share = false;
  std::string dtype = "auto";
  std::string prompt_ids;
  std::string int8_path = "auto";
  bool print_tokens = false;
  app.add_option("--model", model_dir, "model directory (gen, train)");
  app.add_option("--mode", mode, "gen, train or peak (float32 GEMM GFLOP/s)")
      ->check(CLI::IsMember({"gen", "train", "peak"}));
  app.add_option("--batch", batch, "sequences")->capture_default_str();
  app.add_option("--prompt-len", prompt_len, "gen: prompt tokens")->capture_default_str();
  app.add_option("--new", new_tokens, "gen: generated tokens per sequence")->capture_default_str();
  app.add_option("--seq", seq, "train: tokens per sequence")->capture_default_str();
  app.add_option("--reps", reps, "timed repetitions (best kept) after one warm-up")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (0 = default)")->capture_default_str();
  app.add_option("--group", group, "gen: copies of each prompt (samples per prompt)")->capture_default_str();
  app.add_flag("--no-share", no_share, "gen: prefill every copy of a prompt (no prefix sharing)");
  app.add_option("--dtype", dtype,
                 "weights: auto (float32 on the CPU), float32, bfloat16 or int8 (weight-only int8, bf16 activations)")
      ->capture_default_str();
  app.add_option("--prompt-ids", prompt_ids, "gen: comma-separated token ids, the prompt of every sequence");
  app.add_option("--int8-path", int8_path, "int8 products: auto, vnni, pack or dequant (agent/int8_linear.h)")
      ->check(CLI::IsMember({"auto", "vnni", "pack", "dequant"}))
      ->capture_default_str();
  app.add_flag("--print-tokens", print_tokens, "gen: add the first sequence's tokens and log-probs to the JSON");
  return strata::cli::run_main(app, argc, argv, [&] {
    if (int8_path != "auto")
      override_int8_path(int8_path == "vnni" ? Int8Path::kVnni : int8_path == "pack" ? Int8Path::kPack : Int8Path::kDequant);
    if (threads > 0) torch::set_num_threads(threads);
    if (mode == "peak") {
      const auto r = bench_matmul(1024, 5, "float32", "cpu");
      std::printf("%s\n", nlohmann::json({{"mode", "peak"}, {"n", r.n}, {"gflops", r.gflops}}).dump().c_str());
      return 0;
    }
    LoadOptions lo;
    lo.dtype = dtype;
    Model model = load_model(model_dir, lo);
    const int64_t V = model.config().vocab_size;
    strata::Rng rng(1);
    double best = 1e30;
    nlohmann::json j;
    if (mode == "gen") {
      std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(batch));
      STRATA_CHECK(group >= 1 && batch % group == 0, "--group must divide --batch");
      std::vector<int64_t> fixed;
      for (size_t p = 0, q; p < prompt_ids.size(); p = q + 1) {
        q = prompt_ids.find(',', p);
        if (q == std::string::npos) q = prompt_ids.size();
        fixed.push_back(std::stoll(prompt_ids.substr(p, q - p)));
      }
      if (!fixed.empty()) prompt_len = static_cast<int64_t>(fixed.size());
      for (size_t i = 0; i < prompts.size(); ++i) {
        if (!fixed.empty()) {
          prompts[i] = fixed;
          continue;
        }
        if (i % static_cast<size_t>(group) != 0) {
          prompts[i] = prompts[i - 1];
          continue;
        }
        for (int64_t t = 0; t < prompt_len; ++t)
          prompts[i].push_back(static_cast<int64_t>(rng.below(static_cast<uint64_t>(V))));
      }
      GenerationOptions g;
      g.sampling.temperature = 0;
      g.max_new_tokens = new_tokens;
      g.use_config_eos = false;
      EngineOptions e{batch, prompt_len + new_tokens + 1};
      e.share_prompt_prefill = !no_share;
      int64_t produced = 0;
      std::vector<GenerationResult> res;
      for (int64_t r = 0; r <= reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        res = generate(model, prompts, g, e);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        produced = 0;
        for (const auto& x : res) produced += static_cast<int64_t>(x.tokens.size());
        if (r > 0 || reps == 0) best = std::min(best, s);
      }
      j = {{"mode", "gen"}, {"batch", batch}, {"group", group}, {"share", !no_share},
           {"dtype", dtype}, {"prompt_len", prompt_len}, {"new", new_tokens},
           {"seconds", best}, {"tokens_per_s", produced / best}, {"int8_path", int8_path}};
      if (print_tokens) {
        j["tokens"] = res.at(0).tokens;
        j["logprobs"] = res.at(0).logprobs;
      }
    } else {
      model.set_requires_grad(true);
      torch::Tensor ids = torch::randint(0, V, {batch, seq}, torch::kInt64);
      torch::Tensor mask = torch::ones({batch, seq}, torch::kInt64);
      for (int64_t r = 0; r <= reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        auto lp = sequence_logprobs(model, ids, mask);
        lp.logprobs.sum().neg().backward();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (auto& p : model.parameters()) p.mutable_grad() = torch::Tensor();
        if (r > 0 || reps == 0) best = std::min(best, s);
      }
      int64_t n = 0;
      for (const auto& p : model.parameters()) n += p.numel();
      // 6 * params * tokens for forward + backward of the matmuls (lm_head included)
      const double flops = 6.0 * static_cast<double>(n) * static_cast<double>(batch * seq);
      j = {{"mode", "train"}, {"batch", batch}, {"seq", seq}, {"seconds", best},
           {"tokens_per_s", batch * seq / best}, {"gflops", flops / best / 1e9}, {"params", n}};
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  });
}
