// Parity with Hugging Face `tokenizers` (Python): the same tokenizer.json must give the same ids.
// tests/python/tokenizer_parity.py trains reference tokenizers with `tokenizers`, generates
// 10,000+ seeded strings (many scripts, emoji with ZWJ, whitespace runs, digits, punctuation,
// contractions, embedded special tokens) and writes the ids `tokenizers` gives; each test here
// loads the same tokenizer.json with strata and compares every string. Skips (loudly) when
// Python or `tokenizers` is unavailable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agent/tokenizer/tokenizer.h"
#include "tests/test_util.h"

namespace strata::agent {
namespace {

using Ids = std::vector<int32_t>;
constexpr int kStrings = 10000;

std::string python() {
  const char* env = std::getenv("STRATA_PYTHON");
  return env != nullptr ? env : "python3";
}

std::string script() {
  return std::string(STRATA_SOURCE_DIR) + "/tests/python/tokenizer_parity.py";
}

// Runs a shell command; returns its exit status (-1 when it could not be run).
int run(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  if (rc == -1 || !WIFEXITED(rc)) return -1;
  return WEXITSTATUS(rc);
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

std::string show(const Ids& ids) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? "," : "") << ids[i];
  return os.str() + "]";
}

// Compares strata against the expected ids of `expected_path`; reports the first mismatches.
void compare(const std::string& tokenizer_path, const std::string& expected_path) {
  const Tokenizer tok = Tokenizer::from_file(tokenizer_path);
  std::ifstream in(expected_path);
  ASSERT_TRUE(in.good()) << "missing " << expected_path;
  std::string line;
  int total = 0, bad_ids = 0, bad_plain = 0, bad_wrapped = 0, bad_decode = 0;
  std::ostringstream report;
  int reported = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const nlohmann::json rec = nlohmann::json::parse(line);
    const std::string text = rec["text"].get<std::string>();
    const Ids want = rec["ids"].get<Ids>();
    const Ids want_plain = rec["ids_plain"].get<Ids>();
    const Ids want_wrapped = rec["ids_wrapped"].get<Ids>();
    const std::string want_decoded = rec["decoded"].get<std::string>();
    ++total;
    const Ids got = tok.encode(text);
    const Ids got_plain = tok.encode(text, false);
    const Ids got_wrapped = tok.wrap_single(got);
    const std::string decoded = tok.decode(want);
    const bool ok_ids = got == want, ok_plain = got_plain == want_plain,
               ok_wrapped = got_wrapped == want_wrapped, ok_dec = decoded == want_decoded;
    bad_ids += !ok_ids;
    bad_plain += !ok_plain;
    bad_wrapped += !ok_wrapped;
    bad_decode += !ok_dec;
    if ((!ok_ids || !ok_plain || !ok_wrapped || !ok_dec) && reported < 5) {
      ++reported;
      report << "  text " << nlohmann::json(text).dump() << "\n";
      if (!ok_ids)
        report << "    ids:   tokenizers " << show(want) << "\n           strata     " << show(got)
               << "\n";
      if (!ok_plain)
        report << "    plain: tokenizers " << show(want_plain) << "\n           strata     "
               << show(got_plain) << "\n";
      if (!ok_wrapped)
        report << "    wrapped: tokenizers " << show(want_wrapped) << "\n             strata     "
               << show(got_wrapped) << "\n";
      if (!ok_dec)
        report << "    decode: tokenizers " << nlohmann::json(want_decoded).dump() << " strata "
               << nlohmann::json(decoded).dump() << "\n";
    }
  }
  std::printf(
      "[parity] %s: %d strings; mismatches: %d ids, %d with specials as text, %d with "
      "the post-processor, %d decodes\n",
      tokenizer_path.c_str(), total, bad_ids, bad_plain, bad_wrapped, bad_decode);
  EXPECT_GE(total, kStrings);
  EXPECT_EQ(bad_ids + bad_plain + bad_wrapped + bad_decode, 0) << "first mismatches:\n"
                                                               << report.str();
}

class TokenizerParity : public ::testing::Test {
 protected:
  // Runs `prepare --only which`; skips the test when `tokenizers` cannot be had.
  bool prepare(const std::string& which) {
    const std::string cmd = python() + " " + quote(script()) + " prepare --dir " +
                            quote(dir_.path()) + " --n " + std::to_string(kStrings) +
                            " --seed 7 --only " + which;
    const int rc = run(cmd);
    if (rc == 3 || rc == 127 || rc == -1) {
      std::fprintf(stderr,
                   "\n*** SKIPPING tokenizer parity: Python `tokenizers` unavailable (%s exited "
                   "%d). Install it with: python3 -m pip install tokenizers==0.23.3 ***\n\n",
                   cmd.c_str(), rc);
      return false;
    }
    EXPECT_EQ(rc, 0) << cmd;
    return rc == 0;
  }
  strata::testing::TempDir dir_;
};

// (a) Qwen2-style: NFC + Split(Qwen2 regex, Isolated) + ByteLevel(use_regex=false), trained by
// `tokenizers`, with special and non-special (normalized and raw) added tokens.
TEST_F(TokenizerParity, Qwen2StyleTokenizerTrainedByTokenizers) {
  if (!prepare("qwen")) GTEST_SKIP() << "Python tokenizers unavailable";
  compare(dir_.file("qwen/tokenizer.json"), dir_.file("qwen_expected.jsonl"));
}

// (b) GPT-2-style: ByteLevel(use_regex=true), with single_word and lstrip/rstrip added tokens;
// then the same model with add_prefix_space=true.
TEST_F(TokenizerParity, Gpt2StyleTokenizerTrainedByTokenizers) {
  if (!prepare("gpt2")) GTEST_SKIP() << "Python tokenizers unavailable";
  compare(dir_.file("gpt2/tokenizer.json"), dir_.file("gpt2_expected.jsonl"));
  compare(dir_.file("gpt2_prefix/tokenizer.json"), dir_.file("gpt2_prefix_expected.jsonl"));
}

// Llama-3-style: Split(digits in threes) + ByteLevel, ignore_merges, TemplateProcessing (BOS).
TEST_F(TokenizerParity, Llama3StyleTokenizerTrainedByTokenizers) {
  if (!prepare("llama3")) GTEST_SKIP() << "Python tokenizers unavailable";
  compare(dir_.file("llama3/tokenizer.json"), dir_.file("llama3_expected.jsonl"));
}

// (c) strata's train_tokenizer output loads in `tokenizers` and encodes the same.
TEST_F(TokenizerParity, StrataTrainedTokenizerLoadsInTokenizers) {
  if (!prepare("strings")) GTEST_SKIP() << "Python tokenizers unavailable";
  const std::string out = dir_.file("ours/tokenizer.json");
  const std::string train = strata::testing::bin("train_tokenizer") + " --input " +
                            quote(dir_.file("train.txt")) + " --vocab-size 1500 --out " +
                            quote(out) + " --log-level warn";
  ASSERT_EQ(run(train), 0) << train;
  const std::string enc = python() + " " + quote(script()) + " encode --tokenizer " + quote(out) +
                          " --strings " + quote(dir_.file("strings.jsonl")) + " --out " +
                          quote(dir_.file("ours_expected.jsonl"));
  ASSERT_EQ(run(enc), 0) << enc;
  compare(out, dir_.file("ours_expected.jsonl"));
}

}  // namespace
}  // namespace strata::agent
