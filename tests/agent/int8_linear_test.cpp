// The int8 rollout copy: per-channel quantisation, the int8 product against float within a stated
// bound, the quantised model against the float one, and the refresh after an update.
#include "agent/int8_linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "agent/generation.h"
#include "agent/model.h"
#include "agent/model_config.h"

namespace strata::agent {
namespace {

constexpr double kBf16Eps = 1.0 / 256;  // relative rounding of bfloat16 (8 significant bits), with margin

TEST(Int8Linear, QuantisesPerOutputChannel) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  torch::Tensor w = torch::randn({24, 64}, gen);
  w[5].zero_();  // an all-zero row: q = 0, a finite scale
  const auto qw = quantize_int8(w, torch::kFloat32);
  ASSERT_EQ(qw.q.scalar_type(), torch::kChar);
  EXPECT_EQ(qw.q.sizes(), w.sizes());
  EXPECT_EQ(qw.scale.sizes(), torch::IntArrayRef({24}));
  EXPECT_TRUE(torch::isfinite(qw.scale).all().item<bool>());
  EXPECT_EQ(qw.q[5].abs().max().item<int>(), 0);
  EXPECT_LE(qw.q.abs().max().item<int>(), 127);
  EXPECT_EQ(qw.q[0].abs().max().item<int>(), 127) << "the largest weight of a row maps to +-127";
  // Every weight is within half a step of its grid point.
  const auto err = (dequantize_int8(qw) - w).abs();
  EXPECT_TRUE((err <= qw.scale.unsqueeze(1) * 0.5 + 1e-7).all().item<bool>());
  // bf16 scales: q is computed with the rounded scale, so the bound holds for it too.
  const auto qb = quantize_int8(w, torch::kBFloat16);
  const auto errb = (qb.q.to(torch::kFloat32) * qb.scale.to(torch::kFloat32).unsqueeze(1) - w).abs();
  EXPECT_TRUE((errb <= qb.scale.to(torch::kFloat32).unsqueeze(1) * 0.5 + 1e-7).all().item<bool>());
}

// y = x W^T with int8 weights against the float product. Stated bound per output n:
//   |y_int8 - y| <= sum_k |x_k| * scale_n / 2                      (weights off by half a step)
//                 + eps * sum_k |x_k w_nk| + eps * |y_n|          (bf16: activations, output)
// with eps = 2^-8 for bf16 activations and 0 (plus 1e-4 of slack) for fp32.
TEST(Int8Linear, ProductMatchesFloatWithinTheQuantisationBound) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  for (int64_t K : {64, 24}) {  // 24: not a multiple of 16, always the dequantised path
    const torch::Tensor w = torch::randn({96, K}, gen) * 0.05, bias = torch::randn({96}, gen);
    for (auto dtype : {torch::kBFloat16, torch::kFloat32}) {
      const auto qw = quantize_int8(w, dtype);
      for (int64_t rows : {1, 5, 40}) {
        const torch::Tensor x = torch::randn({rows, K}, gen);
        const bool kernel = int8_kernel_used(qw.q, rows);
        EXPECT_EQ(kernel, K % 16 == 0 && rows <= kInt8KernelMaxRows);
        const torch::Tensor y = int8_linear(x, qw, bias);
        ASSERT_EQ(y.scalar_type(), dtype);
        ASSERT_EQ(y.sizes(), torch::IntArrayRef({rows, 96}));
        const torch::Tensor ref = torch::nn::functional::linear(x, w, bias);
        const double eps = dtype == torch::kBFloat16 ? kBf16Eps : 0.0;
        const torch::Tensor xa = x.abs();
        const torch::Tensor bound = xa.matmul(qw.scale.to(torch::kFloat32).unsqueeze(0).expand({K, 96})) * 0.5 +
                                    eps * xa.matmul(w.abs().t()) + eps * ref.abs() + 1e-4;
        const torch::Tensor err = (y.to(torch::kFloat32) - ref).abs();
        EXPECT_TRUE((err <= bound).all().item<bool>())
            << "K " << K << " rows " << rows << " " << c10::toString(dtype) << " kernel " << kernel
            << ": worst excess " << (err - bound).max().item<double>();
        // And against the exact product of the int8 weights (only the float arithmetic differs).
        const torch::Tensor exact = torch::nn::functional::linear(
            x.to(dtype).to(torch::kFloat32), dequantize_int8(qw).to(torch::kFloat32), bias.to(dtype).to(torch::kFloat32));
        EXPECT_LE((y.to(torch::kFloat32) - exact).abs().max().item<double>(),
                  2 * eps * exact.abs().max().item<double>() + 1e-4);
      }
    }
  }
  // A batched [B, T, K] input keeps its leading dimensions.
  const auto qw = quantize_int8(torch::randn({8, 32}, gen), torch::kBFloat16);
  EXPECT_EQ(int8_linear(torch::randn({2, 3, 32}, gen), qw).sizes(), torch::IntArrayRef({2, 3, 8}));
}

ModelConfig tiny(bool tied) {
  auto c = make_tiny_config(256);
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.head_dim = 16;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.tie_word_embeddings = tied;
  return c;
}

Model int8_copy(const Model& trained) {
  Model m = trained;
  m.to(torch::kCPU, torch::kBFloat16);
  m.quantize_int8();
  return m;
}

TEST(Int8Model, ForwardAndGreedyDecodingFollowTheFloatModel) {
  const Model model = init_random_model(tiny(true), 7);
  const Model q = int8_copy(model);
  EXPECT_TRUE(q.is_int8());
  EXPECT_EQ(q.dtype(), torch::kBFloat16);
  // 7 matrices per layer and the head; the float copies of those are gone.
  EXPECT_EQ(q.int8_weights().size(), 2u * 7 + 1);
  EXPECT_EQ(q.named_parameters().count("model.layers.0.mlp.up_proj.weight"), 0u);
  torch::NoGradGuard ng;
  const torch::Tensor ids = torch::randint(0, 256, {2, 12}, torch::kLong);
  const torch::Tensor a = model.forward(ids), b = q.forward(ids).to(torch::kFloat32);
  ASSERT_EQ(a.sizes(), b.sizes());
  // Small random weights give small logits; int8 + bf16 stays within a few percent of their range.
  EXPECT_LE((a - b).abs().max().item<double>(), 0.05 * a.abs().max().item<double>() + 1e-3);
  // The cached decoding path (kernel at few rows) runs and gives finite log-probs.
  GenerationOptions go;
  go.max_new_tokens = 6;
  go.use_config_eos = false;
  const auto out = generate(q, {{1, 2, 3, 4}, {5, 6}}, go);
  ASSERT_EQ(out.size(), 2u);
  for (const auto& r : out) {
    EXPECT_EQ(r.tokens.size(), 6u);
    for (float lp : r.logprobs) EXPECT_TRUE(std::isfinite(lp) && lp <= 0);
  }
}

// After an update of the trained (fp32) weights, refresh_from re-quantises in place: every int8
// matrix equals a fresh quantisation of the new weights, and the float parts equal their bf16 cast.
TEST(Int8Model, RefreshEqualsAFreshQuantisationOfTheTrainedWeights) {
  for (bool tied : {true, false}) {
    Model trained = init_random_model(tiny(tied), 9);
    Model q = int8_copy(trained);
    std::map<std::string, torch::Tensor> before;  // copies: the refresh writes into the same storage
    for (const auto& [name, w] : q.int8_weights()) before[name] = w.q.clone();
    const auto q_storage = q.int8_weights().at("model.layers.1.self_attn.o_proj.weight").q.data_ptr();
    // One optimiser step on a real loss moves every weight.
    trained.set_requires_grad(true);
    auto params = trained.parameters();
    torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-2));
    const torch::Tensor ids = torch::randint(0, 256, {2, 10}, torch::kLong);
    const torch::Tensor logits = trained.forward(ids);
    torch::nn::functional::cross_entropy(logits.view({-1, 256}).narrow(0, 0, 19), ids.view({-1}).narrow(0, 1, 19))
        .backward();
    opt.step();
    trained.set_requires_grad(false);
    q.refresh_from(trained);
    const auto named = trained.named_parameters();
    const auto after = q.int8_weights();
    ASSERT_EQ(after.size(), before.size());
    int changed = 0;
    for (const auto& [name, w] : after) {
      const torch::Tensor src = name == "lm_head.weight" ? trained.lm_head_weight() : named.at(name);
      const auto fresh = quantize_int8(src, torch::kBFloat16);
      EXPECT_TRUE(torch::equal(w.q, fresh.q)) << name;
      EXPECT_TRUE(torch::equal(w.scale, fresh.scale)) << name;
      changed += torch::equal(w.q, before.at(name)) ? 0 : 1;
    }
    EXPECT_EQ(changed, static_cast<int>(after.size())) << "the update moved every matrix";
    EXPECT_EQ(after.at("model.layers.1.self_attn.o_proj.weight").q.data_ptr(), q_storage) << "refreshed in place";
    for (const auto& [name, w] : q.named_parameters())
      EXPECT_TRUE(torch::equal(w, named.at(name).to(torch::kBFloat16))) << name;
  }
}

}  // namespace
}  // namespace strata::agent
