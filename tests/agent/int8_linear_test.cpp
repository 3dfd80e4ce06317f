// The int8 rollout copy: per-channel quantisation, the int8 product against float within a stated
// bound, the quantised model against the float one, and the refresh after an update.
#include "agent/int8_linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "agent/generation.h"
#include "agent/int8_gemm.h"
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
//                 + sum_k s_b(k) / 2 * |q_nk| * scale_n           (vnni only: x quantised in
//                                                                  blocks of 64, step s_b)
// with eps = 2^-8 for bf16 activations and 0 (plus 1e-4 of slack) for fp32.
std::vector<Int8Path> paths_here(int64_t K) {
  std::vector<Int8Path> out = {Int8Path::kDequant};
  if (K % 16 == 0) out.push_back(Int8Path::kPack);
  if (int8_gemm_available()) out.push_back(Int8Path::kVnni);
  return out;
}

// Half the activation step of each element's 64-column block: [rows, K].
torch::Tensor half_block_step(const torch::Tensor& x) {
  const int64_t rows = x.size(0), K = x.size(1), nb = (K + 63) / 64;
  const torch::Tensor padded = torch::constant_pad_nd(x.abs().to(torch::kFloat32), {0, nb * 64 - K});
  const torch::Tensor step = padded.view({rows, nb, 64}).amax(-1, true) / 127.0;
  return (step.expand({rows, nb, 64}).reshape({rows, nb * 64}).narrow(1, 0, K)) * 0.5;
}

TEST(Int8Linear, ProductMatchesFloatWithinTheQuantisationBound) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  for (int64_t K : {64, 24, 100, 589}) {  // 24, 100, 589: tails for the 16- and 64-wide loops
    const int64_t N = 37;
    const torch::Tensor w = torch::randn({N, K}, gen) * 0.05, bias = torch::randn({N}, gen);
    for (auto dtype : {torch::kBFloat16, torch::kFloat32}) {
      const auto qw = quantize_int8(w, dtype);
      const torch::Tensor deq = dequantize_int8(qw).to(torch::kFloat32);
      for (int64_t rows : {1, 2, 3, 5, 8, 13, 33, 40, 70}) {
        const torch::Tensor x = torch::randn({rows, K}, gen);
        const Int8Path chosen = int8_path(qw.q, rows);
        if (int8_gemm_available()) EXPECT_EQ(chosen, Int8Path::kVnni);
        else EXPECT_EQ(chosen == Int8Path::kPack, K % 16 == 0 && rows <= kInt8KernelMaxRows);
        const torch::Tensor ref = torch::nn::functional::linear(x, w, bias);
        const double eps = dtype == torch::kBFloat16 ? kBf16Eps : 0.0;
        const torch::Tensor xa = x.abs();
        const torch::Tensor act_bound = half_block_step(x.to(dtype)).matmul(deq.abs().t());
        const torch::Tensor bound = xa.matmul(qw.scale.to(torch::kFloat32).unsqueeze(0).expand({K, N})) * 0.5 +
                                    eps * xa.matmul(w.abs().t()) + eps * ref.abs() + 1e-4;
        // The exact product of the int8 weights (only the float arithmetic differs).
        const torch::Tensor exact = torch::nn::functional::linear(x.to(dtype).to(torch::kFloat32), deq,
                                                                  bias.to(dtype).to(torch::kFloat32));
        for (Int8Path path : paths_here(K)) {
          const torch::Tensor y = path == chosen ? int8_linear(x, qw, bias) : int8_linear_via(path, x, qw, bias);
          ASSERT_EQ(y.scalar_type(), dtype);
          ASSERT_EQ(y.sizes(), torch::IntArrayRef({rows, N}));
          const torch::Tensor extra = path == Int8Path::kVnni ? act_bound : torch::zeros_like(act_bound);
          const torch::Tensor err = (y.to(torch::kFloat32) - ref).abs();
          EXPECT_TRUE((err <= bound + extra).all().item<bool>())
              << "K " << K << " rows " << rows << " " << c10::toString(dtype) << " path " << static_cast<int>(path)
              << ": worst excess " << (err - bound - extra).max().item<double>();
          const torch::Tensor err_exact = (y.to(torch::kFloat32) - exact).abs();
          EXPECT_TRUE((err_exact <= 2 * eps * exact.abs().max().item<double>() + 1e-4 + extra).all().item<bool>())
              << "K " << K << " rows " << rows << " path " << static_cast<int>(path) << ": worst "
              << (err_exact - extra).max().item<double>();
        }
      }
    }
  }
  // A batched [B, T, K] input keeps its leading dimensions.
  const auto qw = quantize_int8(torch::randn({8, 32}, gen), torch::kBFloat16);
  EXPECT_EQ(int8_linear(torch::randn({2, 3, 32}, gen), qw).sizes(), torch::IntArrayRef({2, 3, 8}));
}

// Activations already on the int8 grid (integers, each 64-column block holding a 127, so every
// block's step is 1): the VNNI product is exact, sum_k q_nk x_k * scale_n, for every tile shape
// and tail (rows 1..97, N not a multiple of 16 or of 64, K not a multiple of 64).
TEST(Int8Gemm, IsExactOnGridActivations) {
  if (!int8_gemm_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  for (int64_t K : {1, 63, 64, 65, 200, 576}) {
    for (int64_t N : {1, 3, 7, 16, 70, 200}) {
      const Int8Weight qw = quantize_int8(torch::randn({N, K}, gen), torch::kFloat32);
      // 1-31: tiles of 4 rows (run_tiles); from 32: blocks of 32 rows (run_row_blocks; 97 is three
      // blocks and one row); past 4,096 (K = 200 only, to stay quick): slices of 4,096 rows.
      std::vector<int64_t> row_counts = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 25, 31, 32, 33, 64, 97};
      if (K == 200) row_counts.push_back(4096 + 37);
      for (int64_t rows : row_counts) {
        torch::Tensor x = torch::randint(-60, 61, {rows, K}, gen, torch::kFloat32);
        x.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 64)}, 127.0);
        const torch::Tensor y = int8_gemm(x, qw);
        // Integer products and sums stay below 2^24: exact in float.
        const torch::Tensor ref = x.matmul(qw.q.to(torch::kFloat32).t()) * qw.scale.unsqueeze(0);
        ASSERT_TRUE(torch::equal(y, ref)) << "K " << K << " N " << N << " rows " << rows << ": max diff "
                                          << (y - ref).abs().max().item<double>();
      }
    }
  }
}

// The packed layout, element by element: channel n, column k of q sits in quad n / 64, group
// k / 4, line (n / 16) % 4 of the group's four, byte 4 * (n % 16) + k % 4 of that line, as
// q + 128; padding channels and columns (K padded to a multiple of 64) hold 128 (a zero weight).
TEST(Int8Gemm, PacksQuadsOf64ChannelsByGroupsOf4Columns) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  const int64_t N = 70, K = 70, Kp = 128, quads = 2;
  const torch::Tensor q = torch::randint(-127, 128, {N, K}, gen, torch::kInt8);
  const torch::Tensor p = int8_gemm_pack(q);
  ASSERT_EQ(p.numel(), quads * 64 * Kp);
  ASSERT_EQ(int8_gemm_packed_bytes(N, K), p.numel());
  const auto* pp = p.data_ptr<uint8_t>();
  const auto* qp = q.data_ptr<int8_t>();
  for (int64_t n = 0; n < quads * 64; ++n)
    for (int64_t k = 0; k < Kp; ++k) {
      const int expect = n < N && k < K ? qp[n * K + k] + 128 : 128;
      const int64_t at = (n / 64) * 64 * Kp + (k / 4) * 256 + ((n / 16) % 4) * 64 + 4 * (n % 16) + k % 4;
      ASSERT_EQ(pp[at], expect) << "n " << n << " k " << k;
    }
}

// Bad input to the kernel's entry points is refused with what was wrong: a weight that is not an
// [N, K] int8 tensor, and packed weights of another shape's size.
TEST(Int8Gemm, RefusesWhatItCannotPack) {
  const auto message = [](auto&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { int8_gemm_pack(torch::zeros({4, 8})); }).find("int8"), std::string::npos);
  EXPECT_NE(message([] { int8_gemm_pack(torch::zeros({8}, torch::kInt8)); }).find("[N, K]"), std::string::npos);
  if (!int8_gemm_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  Int8Weight w = quantize_int8(torch::randn({70, 64}), torch::kFloat32);
  w.packed = int8_gemm_pack(torch::zeros({4, 64}, torch::kInt8));  // packed for another shape
  EXPECT_NE(message([&] { int8_gemm(torch::randn({1, 64}), w); }).find("packed weights of"), std::string::npos);
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
      ASSERT_EQ(w.packed.defined(), fresh.packed.defined()) << name;
      if (fresh.packed.defined()) EXPECT_TRUE(torch::equal(w.packed, fresh.packed)) << name << ": the VNNI layout too";
      ASSERT_EQ(w.dequant.defined(), !w.packed.defined()) << name << ": one of the two copies";
      if (w.dequant.defined())
        EXPECT_TRUE(torch::equal(w.dequant, dequantize_int8(fresh))) << name << ": the prefills' dequantised copy too";
      changed += torch::equal(w.q, before.at(name)) ? 0 : 1;
    }
    EXPECT_EQ(changed, static_cast<int>(after.size())) << "the update moved every matrix";
    EXPECT_EQ(after.at("model.layers.1.self_attn.o_proj.weight").q.data_ptr(), q_storage) << "refreshed in place";
    for (const auto& [name, w] : q.named_parameters())
      EXPECT_TRUE(torch::equal(w, named.at(name).to(torch::kBFloat16))) << name;
  }
}

// Decoding with the VNNI kernel follows the existing int8 path: the log-probs the cached decode
// reports for its greedy tokens equal, within 0.02 nats, those of the same tokens scored by a
// full forward through the dequantised product; and the full forward's log-probs of both paths
// differ by at most 0.02 everywhere.
TEST(Int8Model, VnniDecodingFollowsTheDequantisedPath) {
  if (!int8_gemm_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  const Model q = int8_copy(init_random_model(tiny(false), 11));
  torch::NoGradGuard ng;
  GenerationOptions go;
  go.max_new_tokens = 12;
  go.use_config_eos = false;
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4, 5}, {9, 8, 7}};
  const auto out = generate(q, prompts, go);  // default path: VNNI at these row counts
  override_int8_path(Int8Path::kDequant);
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int64_t> seq = prompts[i];
    seq.insert(seq.end(), out[i].tokens.begin(), out[i].tokens.end());
    const torch::Tensor ids = torch::tensor(seq, torch::kLong).view({1, -1});
    const torch::Tensor lp = torch::log_softmax(q.forward(ids).to(torch::kFloat32), -1)[0];
    const int64_t P = static_cast<int64_t>(prompts[i].size());
    for (size_t t = 0; t < out[i].tokens.size(); ++t) {
      const double ref = lp[P - 1 + static_cast<int64_t>(t)][out[i].tokens[t]].item<double>();
      EXPECT_NEAR(out[i].logprobs[t], ref, 0.02) << "sequence " << i << " token " << t;
    }
    override_int8_path(Int8Path::kVnni);
    const torch::Tensor lv = torch::log_softmax(q.forward(ids).to(torch::kFloat32), -1)[0];
    override_int8_path(Int8Path::kDequant);
    EXPECT_LE((lv - lp).abs().max().item<double>(), 0.02);
  }
  override_int8_path(std::nullopt);
}

}  // namespace
}  // namespace strata::agent
