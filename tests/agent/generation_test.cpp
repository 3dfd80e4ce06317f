// Generation engine: KV-cache decoding equals full recomputation, batched and continuous
// batching equal one-at-a-time, pause/resume, stop conditions, seeded sampling.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "agent/generation.h"
#include "agent/kv_cache.h"
#include "agent/model.h"
#include "agent/sampling.h"
#include "core/error.h"
#include "core/rng.h"

namespace strata::agent {
namespace {

// These models are tiny: extra intra-op threads only add synchronisation (and on a shared,
// loaded machine make the suite ~20x slower), so the tests run single-threaded.
const bool kSingleThread = [] {
  torch::set_num_threads(1);
  return true;
}();

using torch::Tensor;

const Model& tiny() {
  static Model m = [] {
    ModelConfig c = make_tiny_config(211);
    c.hidden_size = 64;
    c.head_dim = 16;
    c.intermediate_size = 128;
    c.num_hidden_layers = 3;
    c.eos_token_ids = {};
    Model model = init_random_model(c, 42);
    // Larger weights than the 0.02 init so that greedy continuations vary.
    torch::NoGradGuard ng;
    for (auto& kv : model.named_parameters())
      if (kv.second.dim() == 2) kv.second.mul_(5.0);
    return model;
  }();
  return m;
}

std::vector<std::vector<int64_t>> prompts() {
  Rng rng(7);
  std::vector<std::vector<int64_t>> out;
  for (int len : {3, 8, 5, 12, 1, 6}) {
    std::vector<int64_t> p;
    for (int i = 0; i < len; ++i) p.push_back(static_cast<int64_t>(rng.below(211)));
    out.push_back(p);
  }
  return out;
}

GenerationOptions greedy(int64_t n) {
  GenerationOptions g;
  g.sampling.temperature = 0;
  g.max_new_tokens = n;
  return g;
}

TEST(Generation, CachedDecodingMatchesFullForward) {
  const Model& m = tiny();
  torch::NoGradGuard ng;
  auto p = prompts()[3];
  KVCache cache(m.config().num_hidden_layers, 2, 64, m.config().num_key_value_heads, m.config().head_dim,
                torch::TensorOptions().dtype(m.dtype()));
  // prefill 7 tokens into slot 1, then feed the rest one at a time
  Tensor ids = torch::tensor(p, torch::kInt64).view({1, -1});
  Tensor full = m.forward(ids)[0];  // [T, V]
  Tensor h = m.forward_cached(ids.narrow(1, 0, 7), cache, {1}, {0});
  EXPECT_LE((m.lm_head(h[0]) - full.narrow(0, 0, 7)).abs().max().item<double>(), 1e-4);
  for (int64_t t = 7; t < ids.size(1); ++t) {
    Tensor ht = m.forward_cached(ids.narrow(1, t, 1), cache, {1}, {t});
    EXPECT_LE((m.lm_head(ht[0][0]) - full[t]).abs().max().item<double>(), 1e-4) << "position " << t;
  }
}

// The fused step's grouped-query attention for the head sizes it handles specially (64: three
// query heads per pass over a kv head, as SmolLM2; 128) and another (32), with a batch of rows at
// different positions: one-token steps against the full forward, float32.
TEST(Generation, FusedStepMatchesFullForwardForEveryHeadSize) {
  torch::NoGradGuard ng;
  for (auto [D, Hq, Hk] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{64, 6, 2}, {128, 4, 2}, {32, 6, 3}}) {
    ModelConfig c = make_tiny_config(211);
    c.head_dim = D;
    c.num_attention_heads = Hq;
    c.num_key_value_heads = Hk;
    c.hidden_size = 64;
    c.intermediate_size = 96;
    c.num_hidden_layers = 2;
    Model m = init_random_model(c, 9);
    for (auto& kv : m.named_parameters())
      if (kv.second.dim() == 2) kv.second.mul_(5.0);
    const auto ps = prompts();
    KVCache cache(c.num_hidden_layers, 3, 64, Hk, D, torch::TensorOptions().dtype(m.dtype()));
    // Rows at positions 12, 8 and 6 after their prompts (all but the last token) are cached.
    std::vector<std::vector<int64_t>> rows = {ps[3], ps[1], ps[5]};
    std::vector<int64_t> last, starts, slots = {0, 1, 2};
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t n = static_cast<int64_t>(rows[r].size()) - 1;
      m.forward_cached(torch::tensor(rows[r], torch::kInt64).narrow(0, 0, n).view({1, n}), cache, {slots[r]}, {0});
      last.push_back(rows[r].back());
      starts.push_back(n);
    }
    const Tensor h = m.forward_cached(torch::tensor(last, torch::kInt64).view({3, 1}), cache, slots, starts);
    for (size_t r = 0; r < rows.size(); ++r) {
      const Tensor full = m.forward(torch::tensor(rows[r], torch::kInt64).view({1, -1}))[0][starts[r]];
      EXPECT_LE((m.lm_head(h[static_cast<int64_t>(r)][0]) - full).abs().max().item<double>(), 1e-4)
          << "head size " << D << ", row " << r;
    }
  }
}

// The same in bfloat16 (on AVX-512 CPUs the one-token steps take the fused step, which keeps the
// residual stream in float32 where LibTorch's ops round every activation to bf16): log-probs
// within 0.05 nats of the full forward's (measured: 0.03 on this random model).
TEST(Generation, CachedDecodingMatchesFullForwardInBf16) {
  Model m = tiny();
  m.to(torch::kCPU, torch::kBFloat16);
  torch::NoGradGuard ng;
  for (const auto& p : {prompts()[3], prompts()[5]}) {
    KVCache cache(m.config().num_hidden_layers, 3, 64, m.config().num_key_value_heads, m.config().head_dim,
                  torch::TensorOptions().dtype(m.dtype()));
    Tensor ids = torch::tensor(p, torch::kInt64).view({1, -1});
    const Tensor full = torch::log_softmax(m.forward(ids)[0].to(torch::kFloat32), -1);  // [T, V]
    m.forward_cached(ids.narrow(1, 0, 1), cache, {2}, {0});
    double worst = 0;
    for (int64_t t = 1; t < ids.size(1); ++t) {
      const Tensor ht = m.forward_cached(ids.narrow(1, t, 1), cache, {2}, {t});
      const Tensor lp = torch::log_softmax(m.lm_head(ht[0][0]).to(torch::kFloat32), -1);
      worst = std::max(worst, (lp - full[t]).abs().max().item<double>());
    }
    EXPECT_LE(worst, 0.05);
  }
}

TEST(Generation, BatchedEqualsOneAtATimeGreedy) {
  const Model& m = tiny();
  const auto ps = prompts();
  auto batched = generate(m, ps, greedy(24), EngineOptions{8, 64});
  for (size_t i = 0; i < ps.size(); ++i) {
    auto single = generate(m, {ps[i]}, greedy(24), EngineOptions{1, 64});
    EXPECT_EQ(batched[i].tokens, single[0].tokens) << "prompt " << i;
    ASSERT_EQ(batched[i].logprobs.size(), single[0].logprobs.size());
    for (size_t t = 0; t < single[0].logprobs.size(); ++t) EXPECT_NEAR(batched[i].logprobs[t], single[0].logprobs[t], 1e-4);
    EXPECT_EQ(batched[i].reason, FinishReason::kLength);
    EXPECT_EQ(batched[i].tokens.size(), 24u);
  }
  // Greedy output is not trivially constant.
  std::set<int64_t> distinct(batched[3].tokens.begin(), batched[3].tokens.end());
  EXPECT_GT(distinct.size(), 1u);
  // Fewer slots than prompts: sequences join as others leave.
  auto queued = generate(m, ps, greedy(24), EngineOptions{2, 64});
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_EQ(queued[i].tokens, batched[i].tokens) << "prompt " << i;
}

TEST(Generation, ContinuousBatchingJoinLeaveAndResume) {
  const Model& m = tiny();
  const auto ps = prompts();
  auto ref = generate(m, ps, greedy(20), EngineOptions{8, 128});
  GenerationEngine eng(m, EngineOptions{4, 128});
  // Sequence 0 starts alone; 1 joins after 3 steps, 2 after 7; 0 is paused at step 5.
  const int64_t a = eng.add(ps[0], greedy(20));
  int64_t b = -1, c = -1;
  for (int step = 0; step < 60 && (eng.num_running() > 0 || step < 8); ++step) {
    if (step == 3) b = eng.add(ps[1], greedy(20));
    if (step == 7) c = eng.add(ps[2], greedy(20));
    if (step == 5) eng.pause(a);
    if (step == 9) eng.resume(a, {}, [] { auto g = greedy(20); return g; }());
    eng.step();
  }
  EXPECT_EQ(eng.sequence(b).generated, ref[1].tokens);
  EXPECT_EQ(eng.sequence(c).generated, ref[2].tokens);
  // a: 5 tokens before the pause, then a new 20-token segment continuing the same greedy path.
  std::vector<int64_t> a_all(eng.sequence(a).tokens.begin() + static_cast<long>(ps[0].size()),
                             eng.sequence(a).tokens.end());
  auto ref_long = generate(m, {ps[0]}, greedy(25), EngineOptions{1, 128});
  EXPECT_EQ(a_all, ref_long[0].tokens);
}

TEST(Generation, ResumeWithAppendedTokensEqualsPrefillFromScratch) {
  const Model& m = tiny();
  const auto ps = prompts();
  GenerationEngine eng(m, EngineOptions{3, 128});
  GenerationOptions g = greedy(10);
  g.stop_sequences = {};
  const int64_t id = eng.add(ps[1], g);
  const int64_t other = eng.add(ps[3], greedy(40));  // keeps running alongside
  while (eng.sequence(id).running()) eng.step();
  EXPECT_EQ(eng.sequence(id).reason, FinishReason::kLength);
  const std::vector<int64_t> observation = {5, 17, 99, 3, 150, 42};  // e.g. retrieved text
  const int64_t prefix = static_cast<int64_t>(eng.sequence(id).tokens.size());
  EXPECT_EQ(eng.cached_length(id), prefix - 1);  // the last sampled token is not fed yet
  eng.resume(id, observation, greedy(12));
  // The first step after resume runs only the uncached tokens (last sampled + appended) for
  // this sequence, plus one decode token for the other running sequence: no prefix recompute.
  const int64_t before = eng.tokens_forwarded();
  const EngineTimes t0 = eng.times();
  eng.step();
  EXPECT_EQ(eng.tokens_forwarded() - before, static_cast<int64_t>(observation.size()) + 1 + 1);
  // times() splits the same count: the resumed segment went through a prefill forward, the other
  // sequence's token through a decoding one, and each part's clock moved.
  const EngineTimes t1 = eng.times();
  EXPECT_EQ(t1.prefill_tokens - t0.prefill_tokens, static_cast<int64_t>(observation.size()) + 1);
  EXPECT_EQ(t1.decode_tokens - t0.decode_tokens, 1);
  EXPECT_EQ(t1.prefill_tokens + t1.decode_tokens, eng.tokens_forwarded());
  EXPECT_GT(t1.prefill_s, t0.prefill_s);
  EXPECT_GT(t1.decode_s, t0.decode_s);
  EXPECT_GT(t1.sample_s, t0.sample_s);
  EXPECT_EQ(eng.cached_length(id), prefix + static_cast<int64_t>(observation.size()));
  while (eng.sequence(id).running()) eng.step();
  const auto resumed = eng.sequence(id).generated;
  // From scratch: the full history as one prompt.
  std::vector<int64_t> history(eng.sequence(id).tokens.begin(),
                               eng.sequence(id).tokens.end() - static_cast<long>(resumed.size()));
  auto scratch = generate(m, {history}, greedy(12), EngineOptions{1, 128});
  EXPECT_EQ(resumed, scratch[0].tokens);
  EXPECT_EQ(history.size(), ps[1].size() + 10 + observation.size());
  eng.run();
  EXPECT_EQ(eng.sequence(other).generated, generate(m, {ps[3]}, greedy(40), EngineOptions{1, 128})[0].tokens);
  eng.remove(id);
  EXPECT_THROW(eng.sequence(id), Error);
}

TEST(Generation, StopSequencesEosAndMaxTokens) {
  const Model& m = tiny();
  const auto p = prompts()[3];
  auto free_run = generate(m, {p}, greedy(30), EngineOptions{1, 128})[0].tokens;
  ASSERT_EQ(free_run.size(), 30u);
  // Stop on the two-token run at positions 6..7.
  GenerationOptions g = greedy(30);
  g.stop_sequences = {{free_run[6], free_run[7]}, {1000000}};
  auto stopped = generate(m, {p}, g)[0];
  EXPECT_EQ(stopped.reason, FinishReason::kStop);
  // The first occurrence of the pair ends it (at or before index 7).
  ASSERT_LE(stopped.tokens.size(), 8u);
  EXPECT_EQ(stopped.tokens, std::vector<int64_t>(free_run.begin(), free_run.begin() + static_cast<long>(stopped.tokens.size())));
  EXPECT_EQ(stopped.tokens[stopped.tokens.size() - 2], free_run[6]);
  // EOS: the token at index 4 as eos.
  GenerationOptions e = greedy(30);
  e.eos_ids = {free_run[4]};
  auto eos = generate(m, {p}, e)[0];
  EXPECT_EQ(eos.reason, FinishReason::kEos);
  EXPECT_LE(eos.tokens.size(), 5u);
  EXPECT_EQ(eos.tokens.back(), free_run[4]);
  // max_new_tokens
  auto short_run = generate(m, {p}, greedy(3))[0];
  EXPECT_EQ(short_run.tokens, std::vector<int64_t>(free_run.begin(), free_run.begin() + 3));
  EXPECT_EQ(short_run.reason, FinishReason::kLength);
  // The slot capacity ends a sequence too.
  auto capped = generate(m, {p}, greedy(100), EngineOptions{1, 20})[0];
  EXPECT_EQ(capped.reason, FinishReason::kLength);
  EXPECT_EQ(capped.tokens.size(), 20u - p.size());
  // Bad options are rejected up front.
  GenerationOptions bad = greedy(0);
  EXPECT_THROW(generate(m, {p}, bad), Error);
  GenerationOptions badp = greedy(3);
  badp.sampling.top_p = 0;
  EXPECT_THROW(generate(m, {p}, badp), Error);
  EXPECT_THROW(generate(m, {{5000}}, greedy(3)), Error);
}

TEST(Generation, SeededSamplingIndependentOfBatchComposition) {
  const Model& m = tiny();
  const auto ps = prompts();
  GenerationOptions s;
  s.sampling.temperature = 0.9;
  s.sampling.top_p = 0.95;
  s.sampling.top_k = 50;
  s.max_new_tokens = 20;
  s.seed = 1234;
  // Prompt 2 alone (seed 1234) vs. in a batch where it is the only one with seed 1234.
  auto alone = generate(m, {ps[2]}, s, EngineOptions{1, 64})[0];
  GenerationEngine eng(m, EngineOptions{4, 64});
  GenerationOptions o1 = s, o2 = s;
  o1.seed = 99;
  o2.seed = 7;
  eng.add(ps[0], o1);
  const int64_t mine = eng.add(ps[2], s);
  eng.add(ps[4], o2);
  eng.run();
  EXPECT_EQ(eng.sequence(mine).generated, alone.tokens);
  for (size_t t = 0; t < alone.logprobs.size(); ++t) {
    EXPECT_NEAR(eng.sequence(mine).logprobs[t], alone.logprobs[t], 1e-4);
    EXPECT_LE(alone.logprobs[t], 0.0f);
  }
  // Same seed again: same draw; another seed: (almost surely) a different one.
  EXPECT_EQ(generate(m, {ps[2]}, s, EngineOptions{1, 64})[0].tokens, alone.tokens);
  GenerationOptions other = s;
  other.seed = 4321;
  EXPECT_NE(generate(m, {ps[2]}, other, EngineOptions{1, 64})[0].tokens, alone.tokens);
}

// A GRPO group: G samples of one prompt. With share_prompt_prefill the prompt is run once and
// its KV copied to the other slots; every sample must continue exactly as with G prefills.
TEST(Generation, SharedPromptPrefillEqualsSeparatePrefills) {
  const Model& m = tiny();
  const auto ps = prompts();
  GenerationOptions s;
  s.sampling.temperature = 0.9;
  s.max_new_tokens = 20;
  std::map<bool, std::vector<Sequence>> out;
  std::map<bool, int64_t> first_step_tokens;
  for (bool share : {false, true}) {
    EngineOptions eo{8, 64};
    eo.share_prompt_prefill = share;
    GenerationEngine eng(m, eo);
    std::vector<int64_t> ids;
    for (uint64_t g = 0; g < 4; ++g) {
      GenerationOptions o = s;
      o.seed = 10 + g;
      ids.push_back(eng.add(ps[3], o));
    }
    GenerationOptions o = s;
    o.seed = 99;
    ids.push_back(eng.add(ps[1], o));  // another prompt in the same step
    eng.step();
    first_step_tokens[share] = eng.tokens_forwarded();
    eng.run();
    for (int64_t id : ids) out[share].push_back(eng.sequence(id));
  }
  const int64_t n3 = static_cast<int64_t>(ps[3].size()), n1 = static_cast<int64_t>(ps[1].size());
  EXPECT_EQ(first_step_tokens[false], 4 * n3 + n1);
  EXPECT_EQ(first_step_tokens[true], n3 + n1);
  for (size_t i = 0; i < out[true].size(); ++i) {
    EXPECT_EQ(out[true][i].generated, out[false][i].generated) << "sequence " << i;
    ASSERT_EQ(out[true][i].logprobs.size(), out[false][i].logprobs.size());
    for (size_t t = 0; t < out[true][i].logprobs.size(); ++t)
      EXPECT_NEAR(out[true][i].logprobs[t], out[false][i].logprobs[t], 1e-4) << i << " " << t;
  }
  // The four samples of the group drew differently (their own seeds), so sharing copied the
  // prompt, not the continuation.
  std::set<std::vector<int64_t>> distinct;
  for (size_t i = 0; i < 4; ++i) distinct.insert(out[true][i].generated);
  EXPECT_GT(distinct.size(), 1u);
}

TEST(Sampling, FiltersAndLogprobs) {
  Tensor logits = torch::tensor(std::vector<float>{2.0f, 1.0f, 0.5f, -1.0f, 3.0f});
  Rng rng(1);
  SamplingOptions g;
  g.temperature = 0;
  auto t = sample_token(logits, g, rng);
  EXPECT_EQ(t.id, 4);
  EXPECT_NEAR(t.logprob, torch::log_softmax(logits, 0)[4].item<float>(), 1e-6);
  SamplingOptions k1;
  k1.top_k = 1;
  EXPECT_EQ(sample_token(logits, k1, rng).id, 4);
  EXPECT_NEAR(sample_token(logits, k1, rng).logprob, 0.0f, 1e-6);
  // top_k = 2 only ever picks ids 4 and 0, with renormalised log-probs.
  SamplingOptions k2;
  k2.top_k = 2;
  std::map<int64_t, int> counts;
  for (int i = 0; i < 400; ++i) {
    auto s = sample_token(logits, k2, rng);
    counts[s.id]++;
    const double want = s.id == 4 ? std::log(1.0 / (1.0 + std::exp(-1.0))) : std::log(1.0 / (1.0 + std::exp(1.0)));
    EXPECT_NEAR(s.logprob, want, 1e-5);
  }
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts[4], counts[0]);
  // top_p small keeps only the argmax.
  SamplingOptions p;
  p.top_p = 0.1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, p, rng).id, 4);
  // Uniform logits at temperature 1: every id appears.
  Tensor flat = torch::zeros({4});
  SamplingOptions t1;
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sample_token(flat, t1, rng).id);
  EXPECT_EQ(seen.size(), 4u);
}

}  // namespace
}  // namespace strata::agent
