// The BERT text encoder (agent/encoder.h) against Hugging Face `transformers` on the real
// all-MiniLM-L6-v2 weights (unpacked by scripts/setup.sh): tests/python/encoder_ref.py encodes
// the same texts (the built-in world's passages and, where ../shared is present, real wiki18
// passages; truncated at 128 tokens; 144 texts) with AutoModel + mean / [CLS] pooling + L2 norm, once per
// test binary (tests/shared_fixture.h), and strata's vectors must agree text by text. The
// error tests need no model. Skips, loudly, without the model or Python `transformers`.
#include "agent/encoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/shared_fixture.h"
#include "tests/test_util.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
constexpr int kMaxLength = 128;

std::string minilm() { return testing::cached_model_dir("all-minilm-l6-v2"); }

#define REQUIRE_MINILM(var)                                                                     \
  const std::string var = minilm();                                                             \
  if (var.empty())                                                                              \
  GTEST_SKIP() << "all-MiniLM-L6-v2 is not in the strata cache (run scripts/setup.sh, which "   \
                  "unpacks it into ~/.cache/strata/models/all-minilm-l6-v2)"

std::vector<float> read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<float> v;
  float x = 0;
  while (in.read(reinterpret_cast<char*>(&x), sizeof x)) v.push_back(x);
  return v;
}

double cosine(const float* a, const float* b, int n) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// The texts and transformers' vectors, built once per test binary. Empty when Python's
// transformers is unavailable.
struct Reference {
  std::vector<std::string> texts;
  std::vector<float> mean, cls;
};

const Reference& reference(const std::string& model) {
  static Reference ref;
  static bool made = false;
  if (made) return ref;
  made = true;
  const std::string dir = testing::shared_fixture_dir("encoder_ref", [&](const std::string& d) {
    const testing::RunResult world =
        testing::run_command(testing::bin("make_world") + " --out " + d + "/world --seed 5 " +
                             "--entities 300 --train 10 --dev 5 --test 5");
    STRATA_CHECK(world.rc == 0, "make_world failed: " << world.output);
    std::vector<std::string> texts;
    std::ifstream corpus(d + "/world/corpus.jsonl");
    std::string line;
    while (texts.size() < 100 && std::getline(corpus, line)) {
      texts.push_back(nlohmann::json::parse(line)["contents"].get<std::string>());
    }
    // Short queries (a batch of mixed lengths) and, from ../shared, long real passages that
    // the 128-token limit truncates.
    for (const char* q : {"who directed the film", "Krume Hoshi", "capital of France?", "x"}) {
      texts.push_back(q);
    }
    if (const std::string real = testing::shared_real_dir(); !real.empty()) {
      std::ifstream wiki(real + "/wiki18_sample_1000.jsonl");
      for (int i = 0; i < 40 && std::getline(wiki, line); ++i) {
        texts.push_back(nlohmann::json::parse(line)["contents"].get<std::string>());
      }
    }
    std::ofstream out(d + "/texts.jsonl");
    for (const std::string& t : texts) out << nlohmann::json{{"text", t}}.dump() << "\n";
    out.close();
    const char* py = std::getenv("STRATA_PYTHON");
    const std::string cmd = std::string(py != nullptr ? py : "python3") + " " +
                            STRATA_SOURCE_DIR + "/tests/python/encoder_ref.py --model " + model +
                            " --texts " + d + "/texts.jsonl --out " + d + "/ref --max-length " +
                            std::to_string(kMaxLength);
    const testing::RunResult r = testing::run_command(cmd);
    if (r.rc == 3 || r.rc == 127) {
      std::ofstream(d + "/NO_PYTHON") << r.output;
      return;
    }
    STRATA_CHECK(r.rc == 0, cmd << " failed:\n" << r.output);
  });
  if (fs::exists(dir + "/NO_PYTHON")) return ref;
  std::ifstream in(dir + "/texts.jsonl");
  std::string line;
  while (std::getline(in, line)) ref.texts.push_back(nlohmann::json::parse(line)["text"]);
  ref.mean = read_f32(dir + "/ref.mean.f32");
  ref.cls = read_f32(dir + "/ref.cls.f32");
  return ref;
}

#define REQUIRE_REFERENCE(ref, model)                                                    \
  const Reference& ref = reference(model);                                               \
  if (ref.texts.empty())                                                                 \
  GTEST_SKIP() << "Python torch/transformers unavailable for tests/python/encoder_ref.py " \
                  "(install them with scripts/setup.sh)"

// Worst per-text cosine between strata's rows and the reference rows.
double worst_cosine(const std::vector<float>& got, const std::vector<float>& want, int dim,
                    size_t* worst_index = nullptr) {
  double worst = 1.0;
  for (size_t i = 0; i * dim < want.size(); ++i) {
    const double c = cosine(got.data() + i * dim, want.data() + i * dim, dim);
    if (c < worst) {
      worst = c;
      if (worst_index != nullptr) *worst_index = i;
    }
  }
  return worst;
}

TEST(Encoder, MiniLmMatchesTransformersMeanPooling) {
  REQUIRE_MINILM(model);
  REQUIRE_REFERENCE(ref, model);
  EncoderOptions opts;
  opts.max_length = kMaxLength;
  opts.batch_size = 16;  // several length-sorted batches
  auto enc = TextEncoder::load(model, opts);
  ASSERT_EQ(enc->dim(), 384);
  EXPECT_NE(enc->describe().find("bert layers=6 dim=384"), std::string::npos) << enc->describe();
  // 1_Pooling/config.json says mean.
  EXPECT_NE(enc->describe().find("pooling=mean"), std::string::npos) << enc->describe();
  const std::vector<float> got = enc->encode_passages(ref.texts);
  ASSERT_EQ(got.size(), ref.mean.size());
  size_t at = 0;
  const double worst = worst_cosine(got, ref.mean, 384, &at);
  std::printf("[encoder] %zu texts, fp32 mean pooling: worst cosine to transformers %.7f\n",
              ref.texts.size(), worst);
  EXPECT_GE(worst, 0.9999) << "text " << at << ": " << ref.texts[at].substr(0, 200);
  for (size_t i = 0; i < ref.texts.size(); ++i) {
    double norm = 0;
    for (int d = 0; d < 384; ++d) norm += double(got[i * 384 + d]) * got[i * 384 + d];
    ASSERT_NEAR(std::sqrt(norm), 1.0, 1e-5) << "row " << i;
  }
  // A text encoded alone gives the vector it got inside a padded batch.
  const std::vector<float> alone = enc->encode_passages({ref.texts[100]});
  EXPECT_GE(cosine(alone.data(), got.data() + 100 * 384, 384), 0.99999);
  EXPECT_TRUE(enc->encode_passages({}).empty());
}

TEST(Encoder, MiniLmClsPoolingAndBf16) {
  REQUIRE_MINILM(model);
  REQUIRE_REFERENCE(ref, model);
  EncoderOptions opts;
  opts.max_length = kMaxLength;
  opts.pooling = Pooling::kCls;
  auto cls = TextEncoder::load(model, opts);
  EXPECT_GE(worst_cosine(cls->encode_passages(ref.texts), ref.cls, 384), 0.9999);

  opts.pooling.reset();
  opts.bf16 = true;
  auto bf16 = TextEncoder::load(model, opts);
  EXPECT_NE(bf16->describe().find("dtype=bf16"), std::string::npos);
  // The first 48 texts only, to bound the test's time (a second full model load and pass).
  const std::vector<std::string> some(ref.texts.begin(), ref.texts.begin() + 48);
  const std::vector<float> want(ref.mean.begin(), ref.mean.begin() + 48 * 384);
  const double worst = worst_cosine(bf16->encode_passages(some), want, 384);
  std::printf("[encoder] bf16 mean pooling: worst cosine to transformers fp32 %.5f\n", worst);
  // bf16 keeps 8 mantissa bits: per-text vectors stay within 1% (stated bound: cosine >= 0.99).
  EXPECT_GE(worst, 0.99);
}

TEST(Encoder, PrefixesArePrependedToTheText) {
  REQUIRE_MINILM(model);
  EncoderOptions e5 = e5_preset();
  EXPECT_EQ(e5.query_prefix, "query: ");
  EXPECT_EQ(e5.passage_prefix, "passage: ");
  EXPECT_EQ(e5.pooling, Pooling::kMean);
  auto with = TextEncoder::load(model, e5);
  auto plain = TextEncoder::load(model, EncoderOptions{});
  const std::vector<float> q = with->encode_queries({"who wrote hamlet"});
  const std::vector<float> p = with->encode_passages({"who wrote hamlet"});
  const std::vector<float> q_ref = plain->encode_passages({"query: who wrote hamlet"});
  const std::vector<float> p_ref = plain->encode_queries({"passage: who wrote hamlet"});
  EXPECT_GE(cosine(q.data(), q_ref.data(), 384), 0.999999);
  EXPECT_GE(cosine(p.data(), p_ref.data(), 384), 0.999999);
  EXPECT_LT(cosine(q.data(), p.data(), 384), 0.9999);  // the prefixes do change the vector
  EXPECT_NE(with->describe().find("query_prefix=\"query: \""), std::string::npos);
}

// ---- errors before any work (no model needed) ----------------------------------------------

void write_json(const std::string& path, const nlohmann::json& j) {
  fs::create_directories(fs::path(path).parent_path());
  testing::write_file(path, j.dump());
}

nlohmann::json bert_config() {
  return {{"model_type", "bert"},       {"vocab_size", 8},         {"hidden_size", 4},
          {"num_hidden_layers", 1},     {"num_attention_heads", 2}, {"intermediate_size", 8},
          {"max_position_embeddings", 16}, {"type_vocab_size", 2},  {"hidden_act", "gelu"}};
}

TEST(EncoderErrors, NotBertIsNamedBeforeAnyWork) {
  testing::TempDir dir;
  auto load_error = [&](const EncoderOptions& o = {}) {
    return testing::error_of([&] { TextEncoder::load(dir.path(), o); });
  };
  EXPECT_NE(load_error().find(dir.path() + "/config.json: cannot open"), std::string::npos)
      << load_error();
  write_json(dir.file("config.json"), {{"model_type", "qwen2"}, {"hidden_size", 896}});
  EXPECT_NE(load_error().find("config.json: model_type \"qwen2\"; the text encoder runs BERT "
                              "models only"),
            std::string::npos)
      << load_error();
  write_json(dir.file("config.json"), {{"hidden_size", 4}});
  EXPECT_NE(load_error().find("config.json: model_type is missing"), std::string::npos)
      << load_error();
  nlohmann::json c = bert_config();
  c["position_embedding_type"] = "relative_key";
  write_json(dir.file("config.json"), c);
  EXPECT_NE(load_error().find("position_embedding_type \"relative_key\" is not supported"),
            std::string::npos)
      << load_error();
  c = bert_config();
  c.erase("num_attention_heads");
  write_json(dir.file("config.json"), c);
  EXPECT_NE(load_error().find("config.json: required key 'num_attention_heads' is missing"),
            std::string::npos)
      << load_error();
  write_json(dir.file("config.json"), bert_config());
  EXPECT_NE(load_error().find("tokenizer.json: not found"), std::string::npos) << load_error();
  EncoderOptions bad;
  bad.max_length = 1;
  EXPECT_NE(load_error(bad).find("max_length 1 leaves no room"), std::string::npos);
  bad = EncoderOptions{};
  bad.batch_size = 0;
  EXPECT_NE(load_error(bad).find("batch_size must be at least 1"), std::string::npos);
  EXPECT_NE(testing::error_of([] { parse_pooling("max"); }).find("expected mean or cls"),
            std::string::npos);
  EXPECT_EQ(parse_pooling("cls"), Pooling::kCls);
  EXPECT_STREQ(pooling_name(Pooling::kMean), "mean");
}

TEST(EncoderErrors, PoolingConfigAndWeightsAreChecked) {
  REQUIRE_MINILM(model);
  // The real tokenizer with a copied config: bad pooling, then a missing weights file.
  testing::TempDir dir;
  fs::copy_file(model + "/config.json", dir.file("config.json"));
  fs::copy_file(model + "/tokenizer.json", dir.file("tokenizer.json"));
  write_json(dir.file("1_Pooling/config.json"),
             {{"pooling_mode_max_tokens", true}, {"pooling_mode_mean_tokens", false}});
  const std::string e1 = testing::error_of([&] { TextEncoder::load(dir.path(), {}); });
  EXPECT_NE(e1.find("1_Pooling/config.json: pooling_mode_max_tokens is not supported"),
            std::string::npos)
      << e1;
  EncoderOptions mean;
  mean.pooling = Pooling::kMean;  // an explicit option overrides the file
  const std::string e2 = testing::error_of([&] { TextEncoder::load(dir.path(), mean); });
  EXPECT_NE(e2.find("model.safetensors: not found"), std::string::npos) << e2;
  // Weights whose shapes disagree with config.json name the tensor.
  nlohmann::json c = nlohmann::json::parse(testing::read_file(model + "/config.json"));
  c["hidden_size"] = 768;
  c["num_attention_heads"] = 12;
  write_json(dir.file("config.json"), c);
  fs::create_symlink(model + "/model.safetensors", dir.file("model.safetensors"));
  const std::string e3 = testing::error_of([&] { TextEncoder::load(dir.path(), mean); });
  EXPECT_NE(e3.find("tensor 'embeddings.word_embeddings.weight' has shape [30522, 384], "
                    "config.json gives [30522, 768]"),
            std::string::npos)
      << e3;
}

}  // namespace
}  // namespace strata::agent
