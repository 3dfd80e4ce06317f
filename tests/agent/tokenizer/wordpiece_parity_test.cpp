// WordPiece parity with Hugging Face `tokenizers` (Python) on all-MiniLM-L6-v2's tokenizer.json
// (BertNormalizer with lower-casing and accent stripping, BertPreTokenizer, "##" WordPiece,
// [CLS]/[SEP] template): tests/python/wordpiece_parity.py writes the ids `tokenizers` gives for
// 10,000 strings (passages of the built-in world and, where ../shared is present, of the real
// wiki18 sample and HotpotQA questions, whole and cut; then generated strings with accents,
// CJK, punctuation, control, format and unassigned characters, long words, special tokens), and
// strata must give the same ids plain, with the template, truncated, and decode alike.
// Skips, loudly, without the model (scripts/setup.sh unpacks it) or Python `tokenizers`.
#include <gtest/gtest.h>

#include <cstdio>
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
constexpr size_t kTrunc = 16;  // wordpiece_parity.py's TRUNC

std::string show(const Ids& ids) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? "," : "") << ids[i];
  return os.str() + "]";
}

TEST(WordPieceParity, MiniLmMatchesTokenizersOn10kStrings) {
  const std::string model = testing::cached_model_dir("all-minilm-l6-v2");
  if (model.empty()) {
    GTEST_SKIP() << "all-MiniLM-L6-v2 is not in the strata cache (run scripts/setup.sh, which "
                    "unpacks it into ~/.cache/strata/models/all-minilm-l6-v2)";
  }
  testing::TempDir dir;
  // The built-in world's passages, and the real ones where ../shared is present.
  const testing::RunResult world =
      testing::run_command(testing::bin("make_world") + " --out " + dir.file("world") +
                           " --seed 5 --entities 300 --train 10 --dev 5 --test 5");
  ASSERT_EQ(world.rc, 0) << world.output;
  std::string texts = dir.file("world/corpus.jsonl");
  const std::string real = testing::shared_real_dir();
  if (!real.empty()) {
    texts += " " + real + "/wiki18_sample_1000.jsonl " + real + "/hotpotqa_500.jsonl";
  } else {
    std::fprintf(stderr, "[parity] ../shared/data/real absent: world passages and generated "
                         "strings only\n");
  }
  const char* py = std::getenv("STRATA_PYTHON");
  const std::string cmd = std::string(py != nullptr ? py : "python3") + " " + STRATA_SOURCE_DIR +
                          "/tests/python/wordpiece_parity.py --tokenizer " + model +
                          "/tokenizer.json --out " + dir.file("expected.jsonl") + " --n " +
                          std::to_string(kStrings) + " --seed 7 --texts " + texts;
  const testing::RunResult ref = testing::run_command(cmd);
  if (ref.rc == 3 || ref.rc == 127) {
    GTEST_SKIP() << "Python `tokenizers` unavailable (" << cmd << " exited " << ref.rc
                 << "); install it with scripts/setup.sh";
  }
  ASSERT_EQ(ref.rc, 0) << cmd << "\n" << ref.output;

  const Tokenizer tok = Tokenizer::from_file(model + "/tokenizer.json");
  std::ifstream in(dir.file("expected.jsonl"));
  std::string line;
  int total = 0, bad = 0, reported = 0;
  std::ostringstream report;
  while (std::getline(in, line)) {
    const nlohmann::json rec = nlohmann::json::parse(line);
    const std::string text = rec["text"].get<std::string>();
    const Ids want = rec["ids"].get<Ids>();
    const Ids want_wrapped = rec["ids_wrapped"].get<Ids>();
    const Ids want_trunc = rec["ids_trunc"].get<Ids>();
    const std::string want_decoded = rec["decoded"].get<std::string>();
    ++total;
    const Ids got = tok.encode(text);
    const Ids got_wrapped = tok.encode_single(text);
    const Ids got_trunc = tok.encode_single(text, kTrunc);
    const std::string decoded = tok.decode(want);
    const bool ok = got == want && got_wrapped == want_wrapped && got_trunc == want_trunc &&
                    decoded == want_decoded;
    if (ok) continue;
    ++bad;
    if (reported++ < 5) {
      report << "  text " << nlohmann::json(text).dump() << "\n"
             << "    tokenizers " << show(want) << " trunc " << show(want_trunc) << " decode "
             << nlohmann::json(want_decoded).dump() << "\n"
             << "    strata     " << show(got) << " trunc " << show(got_trunc) << " decode "
             << nlohmann::json(decoded).dump() << "\n";
    }
  }
  std::printf("[parity] WordPiece (all-MiniLM-L6-v2): %d strings, %d mismatches\n", total, bad);
  EXPECT_EQ(total, kStrings);
  EXPECT_EQ(bad, 0) << "first mismatches:\n" << report.str();
}

}  // namespace
}  // namespace strata::agent
