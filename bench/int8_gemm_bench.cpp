// int8_gemm_bench: the int8 products of a SmolLM2-135M decoding step, path by path.
// For each row count, times one "model pass" of products with the model's shapes (30 layers of
// q/k/v/o/gate/up/down, then the 49152 x 576 lm_head) through every int8 path this CPU has
// (vnni: agent/int8_gemm.h, pack: at::_weight_int8pack_mm, dequant: dequantised bf16 linear) and
// through a bf16 linear on the bf16 weights and strata's packed bf16 kernel (bf16_packed:
// agent/bf16_gemm.h), and reports ms per pass (best of --reps) and each path's largest relative
// error against the float product. Random weights (std 0.02) and bf16
// activations; prints one JSON line per row count.
//   int8_gemm_bench [--rows 1,2,4,8,16,32,64] [--threads 2] [--reps 5] [--layers 30] [--paths vnni,pack]
#include <algorithm>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "agent/bf16_gemm.h"
#include "agent/int8_gemm.h"
#include "agent/int8_linear.h"
#include "core/cli.h"

int main(int argc, char** argv) {
  using namespace strata::agent;
  CLI::App app{"Time the int8 products of a SmolLM2-135M decoding step per kernel."};
  app.name("int8_gemm_bench");
  std::vector<int64_t> rows_list = {1, 2, 4, 8, 16, 20, 32, 64};
  int threads = 2, reps = 5;
  int64_t layers = 30;
  std::vector<std::string> only;
  app.add_option("--rows", rows_list, "row counts")->delimiter(',');
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str();
  app.add_option("--reps", reps, "timed passes (best kept) after one warm-up")->capture_default_str();
  app.add_option("--layers", layers, "layers per pass")->capture_default_str();
  app.add_option("--paths", only, "time only these paths (bf16, bf16_packed, dequant, vnni, pack); all by default")
      ->delimiter(',');
  return strata::cli::run_main(app, argc, argv, [&] {
    torch::set_num_threads(threads);
    torch::NoGradGuard ng;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
    // [N, K] of one layer's projections, then the head.
    const std::vector<std::pair<int64_t, int64_t>> layer_shapes = {{576, 576}, {192, 576}, {192, 576}, {576, 576},
                                                                   {1536, 576}, {1536, 576}, {576, 1536}};
    struct Mat {
      torch::Tensor wb;  // bf16
      Int8Weight q;
      torch::Tensor packed;  // wb in bf16_gemm's layout (bf16_packed)
    };
    std::vector<Mat> mats;
    auto add = [&](int64_t n, int64_t k) {  // a random [n, k] matrix in every form a path reads
      const torch::Tensor w = torch::randn({n, k}, gen) * 0.02;
      mats.push_back({w.to(torch::kBFloat16), quantize_int8(w, torch::kBFloat16),
                      bf16_gemm_available() ? bf16_gemm_pack(w) : torch::Tensor()});
    };
    for (int64_t l = 0; l < layers; ++l)
      for (auto [n, k] : layer_shapes) add(n, k);
    add(49152, 576);
    std::vector<std::string> names = {"bf16", "dequant"};
    if (bf16_gemm_available()) names.push_back("bf16_packed");
    if (int8_gemm_available()) names.push_back("vnni");
    names.push_back("pack");
    if (!only.empty()) {
      auto unwanted = [&](const std::string& n) { return std::find(only.begin(), only.end(), n) == only.end(); };
      names.erase(std::remove_if(names.begin(), names.end(), unwanted), names.end());
    }
    for (int64_t rows : rows_list) {
      nlohmann::json j = {{"rows", rows}, {"threads", threads}, {"layers", layers}};
      std::map<int64_t, torch::Tensor> xs;  // per K
      for (int64_t k : {576, 1536}) xs[k] = torch::randn({rows, k}, gen).to(torch::kBFloat16);
      for (const auto& name : names) {
        auto run = [&](const Mat& m) {
          const torch::Tensor& x = xs.at(m.q.q.size(1));
          if (name == "bf16") return torch::nn::functional::linear(x, m.wb);
          if (name == "bf16_packed") return bf16_gemm(x, m.packed, m.q.q.size(0), torch::kBFloat16);
          const Int8Path p = name == "vnni" ? Int8Path::kVnni : name == "pack" ? Int8Path::kPack : Int8Path::kDequant;
          return int8_linear_via(p, x, m.q);
        };
        double best = 1e30;
        for (int r = 0; r <= reps; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          for (const auto& m : mats) run(m);
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          if (r > 0) best = std::min(best, s);
        }
        // Error of the head and the last down projection against the float product.
        double err = 0;
        for (size_t i = mats.size() - std::min<size_t>(2, mats.size()); i < mats.size(); ++i) {
          const auto& m = mats[i];
          const torch::Tensor ref = torch::nn::functional::linear(xs.at(m.q.q.size(1)).to(torch::kFloat32),
                                                                  m.wb.to(torch::kFloat32));
          const double e = ((run(m).to(torch::kFloat32) - ref).abs().max() / ref.abs().max()).item<double>();
          err = std::max(err, e);
        }
        j[name + "_ms"] = best * 1e3;
        j[name + "_rel_err"] = err;
      }
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    }
    return 0;
  });
}
