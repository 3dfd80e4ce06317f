// Model config, safetensors, checkpoint I/O, forward parity with Python transformers, log-probs.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/test_util.h"
#include "agent/checkpoint.h"
#include "agent/generation.h"
#include "agent/logprobs.h"
#include "agent/model.h"
#include "agent/model_config.h"
#include "agent/safetensors.h"
#include "core/error.h"

namespace strata::agent {
namespace {

// These models are tiny: extra intra-op threads only add synchronisation (and on a shared,
// loaded machine make the suite ~20x slower), so the tests run single-threaded.
const bool kSingleThread = [] {
  torch::set_num_threads(1);
  return true;
}();

namespace fs = std::filesystem;
using torch::Tensor;

// Reference checkpoints from tests/python/make_ref_model.py, generated once per build tree
// (atomically, so parallel test processes share them). Empty when transformers is unavailable.
std::string ref_models_dir() {
  static std::string dir = [] {
    const fs::path root = fs::path(STRATA_BIN_DIR) / ".." / "test_data" / "model_ref_v1";
    if (fs::exists(root / "qwen2_f32" / "ref.safetensors")) return root.string();
    const std::string script = std::string(STRATA_SOURCE_DIR) + "/tests/python/make_ref_model.py";
    fs::create_directories(root.parent_path());
    const std::string tmp = root.string() + ".tmp" + std::to_string(::getpid());
    std::string cmd = "python3 -c 'import transformers, safetensors' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      cmd = "python3 -m pip install -q transformers==5.23.0 safetensors==0.8.0 numpy >/dev/null 2>&1";
      if (std::system(cmd.c_str()) != 0) return std::string();
    }
    cmd = "python3 '" + script + "' '" + tmp + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) return std::string();
    std::error_code ec;
    fs::rename(tmp, root, ec);  // another process may have won the race: fine
    fs::remove_all(tmp, ec);
    return fs::exists(root / "qwen2_f32" / "ref.safetensors") ? root.string() : std::string();
  }();
  return dir;
}

#define REQUIRE_REF(var)                                                                              \
  const std::string var = ref_models_dir();                                                           \
  if (var.empty())                                                                                    \
  GTEST_SKIP() << "*** python3 with transformers==5.23.0 + safetensors is unavailable: the "          \
                  "transformers parity test is SKIPPED (pip install transformers==5.23.0 safetensors) ***"

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().max().item<double>();
}

std::vector<int64_t> to_vec(const Tensor& t) {
  Tensor c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Max |logits diff| over the prompts of ref.safetensors; checks greedy continuations as well.
double check_parity(const std::string& model_dir, bool check_greedy) {
  Model model = load_model(model_dir);
  SafetensorsFile ref(model_dir + "/ref.safetensors");
  double worst = 0.0;
  torch::NoGradGuard ng;
  for (int i = 0; ref.contains("prompt_" + std::to_string(i)); ++i) {
    const std::string s = std::to_string(i);
    Tensor prompt = ref.get("prompt_" + s);
    Tensor logits = model.forward(prompt.unsqueeze(0))[0];
    EXPECT_EQ(logits.sizes(), ref.get("logits_" + s).sizes());
    worst = std::max(worst, max_abs_diff(logits, ref.get("logits_" + s)));
    if (check_greedy) {
      GenerationOptions g;
      g.sampling.temperature = 0;
      g.max_new_tokens = ref.get("greedy_" + s).numel();
      g.use_config_eos = false;
      auto res = generate(model, {to_vec(prompt)}, g, EngineOptions{2, 128});
      EXPECT_EQ(res[0].tokens, to_vec(ref.get("greedy_" + s))) << model_dir << " prompt " << i;
    }
  }
  return worst;
}

TEST(ModelConfig, ParsesQwen2AndLlama3Rope) {
  const auto q = parse_model_config(R"({"model_type":"qwen2","hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,
    "max_position_embeddings":512,"rms_norm_eps":1e-6,"rope_theta":1000000.0,"tie_word_embeddings":true,
    "torch_dtype":"bfloat16","eos_token_id":7,"bos_token_id":null})");
  EXPECT_EQ(q.head_dim, 16);
  EXPECT_TRUE(q.attention_bias);
  EXPECT_FALSE(q.o_bias());
  EXPECT_DOUBLE_EQ(q.rope_theta, 1e6);
  EXPECT_EQ(q.torch_dtype, "bfloat16");
  EXPECT_EQ(q.eos_token_ids, std::vector<int64_t>({7}));
  EXPECT_EQ(q.bos_token_id, -1);
  const auto l = parse_model_config(R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,
    "max_position_embeddings":512,"dtype":"float32","eos_token_id":[1,2],"attention_bias":true,
    "rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,"low_freq_factor":1.0,
    "high_freq_factor":4.0,"original_max_position_embeddings":8192}})");
  EXPECT_EQ(l.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(l.rope_scaling.factor, 8.0);
  EXPECT_EQ(l.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(l.rope_theta, 500000.0);
  EXPECT_TRUE(l.o_bias());
  EXPECT_EQ(l.eos_token_ids, std::vector<int64_t>({1, 2}));
  // Round trip through our writer.
  const auto l2 = parse_model_config(model_config_to_json(l));
  EXPECT_EQ(l2.rope_scaling.type, "llama3");
  EXPECT_EQ(l2.num_key_value_heads, 2);
  EXPECT_EQ(l2.eos_token_ids, l.eos_token_ids);
}

TEST(ModelConfig, ErrorsNameTheProblem) {
  try {
    parse_model_config(R"({"model_type":"gpt2","hidden_size":64})");
    FAIL() << "gpt2 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gpt2"), std::string::npos) << e.what();
  }
  try {
    parse_model_config(R"({"model_type":"qwen2","hidden_size":64,"num_hidden_layers":2})");
    FAIL() << "missing keys accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("intermediate_size"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_model_config("/nonexistent/dir"), Error);
}

TEST(Safetensors, RoundTripAndValidation) {
  testing::TempDir tmp;
  std::map<std::string, Tensor> t;
  t["a"] = torch::arange(6, torch::kFloat32).view({2, 3});
  t["b"] = torch::randn({4}).to(torch::kBFloat16);
  t["c"] = torch::tensor(std::vector<int64_t>{5, 6, 7});
  save_safetensors(tmp.file("x.safetensors"), t);
  {
    SafetensorsFile f(tmp.file("x.safetensors"));
    EXPECT_EQ(f.names().size(), 3u);
    EXPECT_EQ(f.shape("a"), std::vector<int64_t>({2, 3}));
    EXPECT_EQ(f.dtype("b"), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(f.get("a"), t["a"]));
    EXPECT_TRUE(torch::equal(f.get("b"), t["b"]));
    EXPECT_TRUE(torch::equal(f.get("c"), t["c"]));
    EXPECT_THROW(f.get("zzz"), Error);
  }
  // The tensor outlives the file object (the mapping is kept alive by the tensor).
  Tensor kept = SafetensorsFile(tmp.file("x.safetensors")).get("a");
  EXPECT_TRUE(torch::equal(kept, t["a"]));
  // Truncated file: offsets beyond the end are rejected.
  std::string bytes = testing::read_file(tmp.file("x.safetensors"));
  testing::write_file(tmp.file("bad.safetensors"), bytes.substr(0, bytes.size() - 5));
  EXPECT_THROW(SafetensorsFile(tmp.file("bad.safetensors")), Error);
  testing::write_file(tmp.file("bad2.safetensors"), std::string("\xff\xff\xff\xff\x00\x00\x00\x00{}", 10));
  EXPECT_THROW(SafetensorsFile(tmp.file("bad2.safetensors")), Error);
}

TEST(ModelParity, Qwen2Fp32MatchesTransformers) {
  REQUIRE_REF(ref);
  const double d = check_parity(ref + "/qwen2_f32", true);
  std::printf("[parity] qwen2 fp32 max |logits diff| = %.3g\n", d);
  EXPECT_LE(d, 1e-4);
}

TEST(ModelParity, Qwen2Bf16MatchesTransformers) {
  REQUIRE_REF(ref);
  const double d = check_parity(ref + "/qwen2_bf16", true);
  std::printf("[parity] qwen2 bf16 checkpoint max |logits diff| = %.3g\n", d);
  EXPECT_LE(d, 1e-4);
}

TEST(ModelParity, LlamaShardedLlama3RopeMatchesTransformers) {
  REQUIRE_REF(ref);
  const auto cfg = load_model_config(ref + "/llama_sharded");
  EXPECT_EQ(cfg.rope_scaling.type, "llama3");
  const double d = check_parity(ref + "/llama_sharded", true);
  std::printf("[parity] llama (llama3 rope, sharded) max |logits diff| = %.3g\n", d);
  EXPECT_LE(d, 1e-4);
}

TEST(ModelParity, PaddedBatchMatchesSingleSequences) {
  REQUIRE_REF(ref);
  Model model = load_model(ref + "/qwen2_f32");
  SafetensorsFile r(ref + "/qwen2_f32/ref.safetensors");
  torch::NoGradGuard ng;
  const int64_t n = 4, T = 17;
  Tensor ids = torch::zeros({n, T}, torch::kInt64), mask = torch::zeros({n, T}, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    Tensor p = r.get("prompt_" + std::to_string(i));
    const int64_t L = p.numel();
    // Left padding for even rows, right padding for odd rows.
    const int64_t off = (i % 2 == 0) ? T - L : 0;
    ids[i].narrow(0, off, L).copy_(p);
    mask[i].narrow(0, off, L).fill_(1);
  }
  Tensor logits = model.forward(ids, mask);
  for (int64_t i = 0; i < n; ++i) {
    Tensor want = r.get("logits_" + std::to_string(i));
    const int64_t L = want.size(0), off = (i % 2 == 0) ? T - L : 0;
    EXPECT_LE(max_abs_diff(logits[i].narrow(0, off, L), want), 1e-4) << "row " << i;
  }
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

TEST(ModelCheckpoint, StrataSaveLoadsInTransformers) {
  REQUIRE_REF(ref);
  testing::TempDir tmp;
  const std::string out = tmp.path() + "/saved";
  for (const char* name : {"qwen2_f32", "llama_sharded"}) {
    Model model = load_model(ref + "/" + name);
    save_model(model, out + name, ref + "/" + name);
    EXPECT_TRUE(fs::exists(out + name + "/model.safetensors"));
    EXPECT_TRUE(fs::exists(out + name + "/generation_config.json"));
    // strata reloads its own save bit-exactly
    Model again = load_model(out + name);
    for (const auto& [k, v] : model.named_parameters()) EXPECT_TRUE(torch::equal(v, again.named_parameters().at(k))) << k;
    const std::string cmd = "python3 '" + std::string(STRATA_SOURCE_DIR) + "/tests/python/check_model_load.py' '" +
                            out + name + "' '" + ref + "/" + name + "/ref.safetensors' 1e-4";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

TEST(ModelCheckpoint, MissingExtraAndMisShapedTensorsAreNamed) {
  const auto cfg = [] {
    ModelConfig c = make_tiny_config(64);
    c.hidden_size = 32;
    c.head_dim = 8;
    c.intermediate_size = 48;
    c.num_hidden_layers = 2;
    return c;
  }();
  Model m = init_random_model(cfg, 3);
  auto w = m.named_parameters();
  {
    auto bad = w;
    bad.erase("model.layers.1.mlp.up_proj.weight");
    try {
      Model x(cfg, bad);
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << e.what();
    }
  }
  {
    auto bad = w;
    bad["model.layers.0.self_attn.q_proj.weight"] = torch::zeros({32, 31});
    try {
      Model x(cfg, bad);
      FAIL();
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("q_proj.weight"), std::string::npos) << msg;
      EXPECT_NE(msg.find("[32, 31]"), std::string::npos) << msg;
      EXPECT_NE(msg.find("[32, 32]"), std::string::npos) << msg;
    }
  }
  {
    auto bad = w;
    bad["model.layers.7.mlp.extra"] = torch::zeros({2});
    try {
      Model x(cfg, bad);
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("model.layers.7.mlp.extra"), std::string::npos) << e.what();
    }
  }
  // A checkpoint on disk with a mis-shaped tensor names the tensor too.
  testing::TempDir tmp;
  save_model(m, tmp.path());
  auto tensors = load_safetensors_dir(tmp.path());
  std::map<std::string, Tensor> copy;
  for (auto& kv : tensors) copy[kv.first] = kv.second.clone();
  copy["model.norm.weight"] = torch::ones({31});
  save_safetensors(tmp.file("model.safetensors"), copy);
  try {
    load_model(tmp.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.norm.weight"), std::string::npos) << e.what();
  }
}

ModelConfig small_config() {
  ModelConfig c = make_tiny_config(97);
  c.hidden_size = 32;
  c.head_dim = 8;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  return c;
}

TEST(Logprobs, MatchNaiveLogSoftmaxGatherAndGradientsFlow) {
  Model m = init_random_model(small_config(), 5);
  m.set_requires_grad(true);
  torch::manual_seed(0);
  Tensor ids = torch::randint(0, 97, {3, 10}, torch::kInt64);
  Tensor mask = torch::ones({3, 10}, torch::kInt64);
  mask[1].narrow(0, 0, 3).zero_();  // left padding
  mask[2].narrow(0, 7, 3).zero_();  // right padding
  LogprobOptions o;
  o.with_entropy = true;
  o.vocab_chunk_tokens = 7;  // several chunks
  auto lp = sequence_logprobs(m, ids, mask, o);
  ASSERT_EQ(lp.logprobs.sizes(), torch::IntArrayRef({3, 9}));
  // naive: full logits, log_softmax, gather
  Tensor logits = m.forward(ids, mask).to(torch::kFloat32);
  Tensor logp = torch::log_softmax(logits, -1);
  Tensor want = logp.narrow(1, 0, 9).gather(2, ids.narrow(1, 1, 9).unsqueeze(-1)).squeeze(-1);
  Tensor tmask = mask.narrow(1, 1, 9).to(torch::kFloat32);
  EXPECT_LE(max_abs_diff(lp.logprobs, want * tmask), 1e-5);
  Tensor ent = -(logp.exp() * logp).sum(-1).narrow(1, 0, 9) * tmask;
  EXPECT_LE(max_abs_diff(lp.entropy, ent), 1e-5);
  EXPECT_EQ(lp.logprobs[1][0].item<float>(), 0.0f);  // padded target position
  // gradients reach every weight
  Tensor loss = -(lp.logprobs.sum()) + 0.1 * lp.entropy.sum();
  loss.backward();
  for (const auto& [name, p] : m.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(p.grad().abs().sum().item<double>(), 0.0) << name;
  }
  // Gradient checkpointing gives the same values and gradients.
  std::map<std::string, Tensor> g1;
  for (auto& [name, p] : m.named_parameters()) {
    g1[name] = p.grad().clone();
    p.mutable_grad() = Tensor();
  }
  LogprobOptions oc = o;
  oc.gradient_checkpointing = true;
  auto lpc = sequence_logprobs(m, ids, mask, oc);
  EXPECT_LE(max_abs_diff(lpc.logprobs, lp.logprobs), 1e-6);
  (-(lpc.logprobs.sum()) + 0.1 * lpc.entropy.sum()).backward();
  for (auto& [name, p] : m.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_LE(max_abs_diff(p.grad(), g1[name]), 1e-5) << name;
  }
}

TEST(ModelLoad, NonFiniteWeightsAreRefusedNamingTheTensor) {
  const Model m = init_random_model(small_config(), 3);
  testing::TempDir tmp;
  save_model(m, tmp.path());
  std::map<std::string, Tensor> copy;
  for (auto& kv : load_safetensors_dir(tmp.path())) copy[kv.first] = kv.second.clone();
  load_model(tmp.path());  // intact: loads
  copy["model.layers.1.mlp.up_proj.weight"].view(-1)[5] = std::nanf("");
  copy["model.layers.1.mlp.up_proj.weight"].view(-1)[9] = INFINITY;
  save_safetensors(tmp.file("model.safetensors"), copy);
  try {
    load_model(tmp.path());
    FAIL() << "loaded a model with NaN weights";
  } catch (const Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("'model.layers.1.mlp.up_proj.weight' has 2 non-finite values"), std::string::npos) << w;
  }
}

}  // namespace
}  // namespace strata::agent
