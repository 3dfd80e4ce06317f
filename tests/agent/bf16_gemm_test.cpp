// strata's bf16 decoding kernel: the product against float32 products of the same bf16 values, the
// packed layout element by element, refusals, and the packed copies following weight updates.
#include "agent/bf16_gemm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "agent/bf16_packs.h"
#include "agent/kv_cache.h"
#include "agent/model.h"
#include "agent/model_config.h"

namespace strata::agent {
namespace {

#define SKIP_WITHOUT_BF16_GEMM() \
  if (!bf16_gemm_available()) GTEST_SKIP() << "this CPU has no AVX-512 BF16 (or STRATA_BF16_GEMM=0)"

// The float32 product of the bf16-rounded operands: what the kernel computes up to the order of
// float32 additions.
torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w) {
  return torch::mm(x.to(torch::kBFloat16).to(torch::kFloat32), w.to(torch::kBFloat16).to(torch::kFloat32).t());
}

TEST(Bf16Gemm, MatchesTheFloatProductOfRoundedValues) {
  SKIP_WITHOUT_BF16_GEMM();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  // N not a multiple of 64 (a padded quad, a partial panel), K odd (a padded column) or not a
  // multiple of 32, row counts around the 6-row tile and the serial limit.
  for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{200, 33}, {17, 576}, {64, 2}, {130, 1}}) {
    const torch::Tensor w = torch::randn({N, K}, gen);
    const torch::Tensor packed = bf16_gemm_pack(w);
    for (int64_t M : {1, 3, 4, 5, 6, 7, 13, 64}) {
      const torch::Tensor x = torch::randn({M, K}, gen);
      const torch::Tensor ref = reference(x, w);
      // Sums of K products of values ~N(0,1): float32 reordering error far below 1e-4 * sqrt(K).
      const double tol = 1e-4 * std::sqrt(static_cast<double>(K)) + 1e-6;
      const torch::Tensor y32 = bf16_gemm(x, packed, N, torch::kFloat32);
      ASSERT_EQ(y32.sizes(), ref.sizes());
      EXPECT_LE((y32 - ref).abs().max().item<double>(), tol) << "N " << N << " K " << K << " M " << M;
      // The raw-pointer entry gives the same values.
      torch::Tensor yp = torch::empty({M, N});
      const torch::Tensor xc = x.contiguous();
      bf16_gemm_f32(xc.data_ptr<float>(), M, packed, N, K, yp.data_ptr<float>());
      EXPECT_TRUE(torch::equal(yp, y32));
      // bf16 input rows (used as they are when K is even) and bf16 output (rounded to nearest).
      const torch::Tensor y16 = bf16_gemm(x.to(torch::kBFloat16), packed, N, torch::kBFloat16);
      ASSERT_EQ(y16.scalar_type(), torch::kBFloat16);
      EXPECT_TRUE(torch::equal(y16, y32.to(torch::kBFloat16))) << "N " << N << " K " << K << " M " << M;
    }
  }
}

TEST(Bf16Gemm, PacksQuadsOf64ChannelsByPairsOfColumns) {
  const int64_t N = 70, K = 5, Kp = 6;
  const torch::Tensor w = torch::arange(N * K, torch::kFloat32).view({N, K});  // exact in bf16 up to 256
  const torch::Tensor small = w.remainder(256);
  const torch::Tensor packed = bf16_gemm_pack(small);
  ASSERT_EQ(packed.numel(), bf16_gemm_packed_elems(N, K));
  ASSERT_EQ(packed.numel(), 128 * Kp);  // two quads (the second padded), K padded to 6
  const torch::Tensor p = packed.to(torch::kFloat32);
  for (int64_t n = 0; n < 128; ++n)
    for (int64_t k = 0; k < Kp; ++k) {
      const int64_t at = (n / 64) * 64 * Kp + (k / 2) * 128 + ((n / 16) % 4) * 32 + (n % 16) * 2 + k % 2;
      const float want = n < N && k < K ? small[n][k].item<float>() : 0.0f;
      ASSERT_EQ(p[at].item<float>(), want) << "channel " << n << " column " << k;
    }
}

TEST(Bf16Gemm, RefusesWhatItCannotPack) {
  EXPECT_THROW(bf16_gemm_pack(torch::zeros({4})), std::exception);
  EXPECT_THROW(bf16_gemm_pack(torch::zeros({4, 4}, torch::kInt64)), std::exception);
  SKIP_WITHOUT_BF16_GEMM();
  const torch::Tensor packed = bf16_gemm_pack(torch::zeros({8, 8}));
  try {
    bf16_gemm(torch::zeros({2, 8}), packed, 70, torch::kFloat32);  // packed for 8 channels, asked 70
    FAIL() << "a packed matrix of another shape was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("[70, 8]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(bf16_gemm(torch::zeros({2, 8}), packed, 8, torch::kInt32), std::exception);
}

TEST(Bf16Packs, RebuildsACopyOnlyWhenItsSourceChanged) {
  Bf16Packs packs;
  torch::Tensor a = torch::randn({64, 32}), b = torch::randn({16, 8});
  auto first = packs.get({a, b});
  EXPECT_EQ(packs.builds(), 2);
  EXPECT_TRUE(torch::equal(first[0], bf16_gemm_pack(a)));
  packs.get({a, b});
  EXPECT_EQ(packs.builds(), 2) << "unchanged sources are not packed again";
  {
    torch::NoGradGuard ng;
    a.mul_(2);  // an in-place update (an optimiser step) bumps the version counter
  }
  auto second = packs.get({a, b});
  EXPECT_EQ(packs.builds(), 3);
  EXPECT_TRUE(torch::equal(second[0], bf16_gemm_pack(a)));
  EXPECT_TRUE(torch::equal(first[0], bf16_gemm_pack(a / 2))) << "a caller's old copy stays valid";
  b = torch::randn({16, 8});  // another tensor
  packs.get({a, b});
  EXPECT_EQ(packs.builds(), 4);
  packs.clear();
  packs.get({a, b});
  EXPECT_EQ(packs.builds(), 6);
}

ModelConfig tiny_config() {
  ModelConfig c = make_tiny_config(96);
  c.hidden_size = 64;
  c.head_dim = 16;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  return c;
}

// Decoding one token through the fused step (bf16 kernel) against a fresh model's LibTorch forward,
// after an in-place update of the weights the packed copies were built from.
TEST(Bf16Packs, ABf16ModelDecodesWithItsCurrentWeights) {
  SKIP_WITHOUT_BF16_GEMM();
  Model m = init_random_model(tiny_config(), 7);
  m.to(torch::kCPU, torch::kBFloat16);
  ASSERT_TRUE(m.bf16_kernel_applies());
  torch::NoGradGuard ng;
  const torch::Tensor ids = torch::tensor({5, 17, 42}, torch::kInt64).view({1, 3});
  auto last_logits = [&](const Model& model) {
    KVCache cache(model.config().num_hidden_layers, 1, 16, model.config().num_key_value_heads,
                  model.config().head_dim, torch::TensorOptions().dtype(model.dtype()));
    model.forward_cached(ids.narrow(1, 0, 2), cache, {0}, {0});
    return model.lm_head(model.forward_cached(ids.narrow(1, 2, 1), cache, {0}, {2})).to(torch::kFloat32).flatten();
  };
  auto full_logits = [&](const Model& model) { return model.forward(ids)[0][2].to(torch::kFloat32); };
  EXPECT_LE((last_logits(m) - full_logits(m)).abs().max().item<double>(), 0.05);
  const int64_t built = m.bf16_packs_built();
  EXPECT_GT(built, 0) << "the decoding step used the packed copies";
  for (auto& [name, t] : m.named_parameters())
    if (t.dim() == 2) t.mul_(-1.5);  // every matrix, the tied head included
  const torch::Tensor after = last_logits(m);
  EXPECT_GT(m.bf16_packs_built(), built) << "the update was seen";
  EXPECT_LE((after - full_logits(m)).abs().max().item<double>(), 0.05);
}

}  // namespace
}  // namespace strata::agent
