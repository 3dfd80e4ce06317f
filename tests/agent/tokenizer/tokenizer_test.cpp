// Unit tests for the byte-level BPE tokenizer, the BPE trainer and the chat formats (over 450
// lines on purpose: one file per target, one test per tokenizer.json feature).
#include "agent/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/tokenizer/bpe_trainer.h"
#include "agent/tokenizer/chat_template.h"
#include "agent/tokenizer/impl/tokenizer_byte_level.h"
#include "agent/tokenizer/impl/tokenizer_pipeline.h"
#include "core/error.h"
#include "core/rng.h"
#include "tests/test_util.h"

namespace strata::agent {
namespace {

using Ids = std::vector<int32_t>;
using nlohmann::json;

// ---- byte-level alphabet ----------------------------------------------------------------------

TEST(ByteLevel, AllBytesRoundTripAndAreDistinct) {
  const auto& a = impl::ByteLevelAlphabet::get();
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = a.code_point(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(cp).second) << "byte " << b;
    EXPECT_EQ(a.byte_of(cp), b);
    std::string raw(1, static_cast<char>(b)), back;
    ASSERT_TRUE(a.decode(a.encode(raw), back));
    EXPECT_EQ(back, raw);
  }
  // GPT-2's well-known spellings.
  EXPECT_EQ(a.code_point(' '), 0x120u);   // Ġ
  EXPECT_EQ(a.code_point('\n'), 0x10Au);  // Ċ
  EXPECT_EQ(a.code_point(0), 0x100u);
  EXPECT_EQ(a.code_point('!'), static_cast<uint32_t>('!'));
  EXPECT_EQ(a.code_point(0xAD), 0x143u);  // soft hyphen is the last shifted byte
  EXPECT_EQ(a.code_point(0xFF), 0xFFu);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(a.decode(a.encode(all), back));
  EXPECT_EQ(back, all);
  EXPECT_FALSE(a.decode("\xE4\xBD\xA0", back));  // 你 is not in the alphabet
}

// ---- a hand-made tokenizer.json
// ------------------------------------------------------------------ Vocabulary: every byte's
// character with the byte's value as id (so 'a' = 97, ' ' -> "Ġ" = 32), then merges 256 "bc" (rank
// 0), 257 "ab" (rank 1), 258 "abc" = a+bc (rank 2), 259 "Ġa" (rank 3), 265 "cĠ" (rank 4, a pair
// GPT-2's regex never lets meet).

struct TinyOptions {
  bool pair_merges = false;
  bool ignore_merges = false;
  bool use_regex = true;
};

json tiny_json(const TinyOptions& o = {}) {
  const auto& a = impl::ByteLevelAlphabet::get();
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[std::string(a.utf8(static_cast<uint8_t>(b)))] = b;
  vocab["bc"] = 256;
  vocab["ab"] = 257;
  vocab["abc"] = 258;
  vocab["Ġa"] = 259;
  vocab["ca"] = 264;  // reachable only through ignore_merges
  vocab["cĠ"] = 265;
  json merges =
      o.pair_merges
          ? json::array({json::array({"b", "c"}), json::array({"a", "b"}), json::array({"a", "bc"}),
                         json::array({"Ġ", "a"}), json::array({"c", "Ġ"})})
          : json::array({"b c", "a b", "a bc", "Ġ a", "c Ġ"});
  auto added = [](int id, const char* content, bool special, bool single_word = false,
                  bool lstrip = false, bool rstrip = false) {
    return json{{"id", id},          {"content", content}, {"single_word", single_word},
                {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", false},
                {"special", special}};
  };
  return json{
      {"version", "1.0"},
      {"added_tokens", json::array({added(260, "<|end|>", true), added(261, "<tool>", false),
                                    added(262, "<mask>", true, false, true, false),
                                    added(263, "xyz", false, true)})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", o.use_regex}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"ignore_merges", o.ignore_merges},
        {"vocab", vocab},
        {"merges", merges}}}};
}

Tokenizer tiny(const TinyOptions& o = {}) {
  return Tokenizer::from_json(tiny_json(o).dump(), "tiny");
}

TEST(Tokenizer, MergesApplyInRankOrder) {
  for (bool pairs : {false, true}) {
    TinyOptions o;
    o.pair_merges = pairs;
    const Tokenizer tok = tiny(o);
    // a b c: "b c" (rank 0) beats "a b" (rank 1), then "a bc" (rank 2).
    EXPECT_EQ(tok.encode("abc"), (Ids{258}));
    EXPECT_EQ(tok.encode("ab"), (Ids{257}));
    EXPECT_EQ(tok.encode("abab"), (Ids{257, 257}));
    EXPECT_EQ(tok.encode("cab"), (Ids{99, 257}));
    // Ġ a b c: "Ġ a" is rank 3, so a+bc wins first and "Ġ abc" is no merge.
    EXPECT_EQ(tok.encode(" abc"), (Ids{32, 258}));
    EXPECT_EQ(tok.encode(" a"), (Ids{259}));
    EXPECT_EQ(tok.encode("abc abc"), (Ids{258, 32, 258}));
    // "ca" is in the vocabulary but no merge makes it.
    EXPECT_EQ(tok.encode("ca"), (Ids{99, 97}));
    EXPECT_EQ(tok.vocab_size(), 266);
    EXPECT_EQ(tok.encode("ac b"), (Ids{97, 99, 32, 98}));  // "ac" and " b" are apart
    EXPECT_EQ(tok.token_to_id("Ġa"), 259);
    EXPECT_EQ(tok.id_to_token(258), "abc");
  }
}

TEST(Tokenizer, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  TinyOptions o;
  o.ignore_merges = true;
  const Tokenizer tok = tiny(o);
  EXPECT_EQ(tok.encode("ca"), (Ids{264}));
  EXPECT_EQ(tok.encode("cab"), (Ids{99, 257}));  // not a vocabulary word: merges as usual
}

TEST(Tokenizer, WithoutRegexTheWholeTextIsOneWord) {
  TinyOptions o;
  o.use_regex = false;
  const Tokenizer tok = tiny(o);
  // a c Ġ b is one word, so "c Ġ" (rank 4) can merge.
  EXPECT_EQ(tok.encode("ac b"), (Ids{97, 265, 98}));
  // a Ġ a b c: "b c", then "a bc"; Ġ's right neighbour is then "abc", which has no merge.
  EXPECT_EQ(tok.encode("a abc"), (Ids{97, 32, 258}));
  EXPECT_EQ(tok.encode("a ab"), (Ids{97, 32, 257}));
  EXPECT_EQ(tok.encode("a a"), (Ids{97, 259}));
}

TEST(Tokenizer, AddedTokensAreSplitOut) {
  const Tokenizer tok = tiny();
  EXPECT_EQ(tok.encode("ab<|end|>c"), (Ids{257, 260, 99}));
  EXPECT_EQ(tok.encode("<|end|><|end|>"), (Ids{260, 260}));
  EXPECT_EQ(tok.encode("<tool>ab"), (Ids{261, 257}));
  EXPECT_TRUE(tok.is_special(260));
  EXPECT_FALSE(tok.is_special(261));
  EXPECT_FALSE(tok.is_special(97));
  EXPECT_EQ(tok.token_to_id("<|end|>"), 260);
  EXPECT_EQ(tok.special_tokens(), (std::vector<std::string>{"<|end|>", "<mask>"}));
  // lstrip swallows the space before <mask>.
  EXPECT_EQ(tok.encode("a <mask>b"), (Ids{97, 262, 98}));
  // single_word: "xyz" alone matches, inside "abxyz" it does not.
  EXPECT_EQ(tok.encode("xyz abxyz"), (Ids{263, 32, 257, 120, 121, 122}));
}

TEST(Tokenizer, AllowSpecialFalseTreatsSpecialTokensAsText) {
  const Tokenizer tok = tiny();
  // GPT-2 pieces: "ab" "<|" "end" "|>" "c".
  EXPECT_EQ(tok.encode("ab<|end|>c", false), (Ids{257, 60, 124, 101, 110, 100, 124, 62, 99}));
  // Non-special added tokens still match.
  EXPECT_EQ(tok.encode("<tool>", false), (Ids{261}));
}

TEST(Tokenizer, DecodeAndSkipSpecial) {
  const Tokenizer tok = tiny();
  EXPECT_EQ(tok.decode({258, 32, 260, 261, 259}), "abc <|end|><tool> a");
  EXPECT_EQ(tok.decode({258, 32, 260, 261, 259}, true), "abc <tool> a");
  EXPECT_EQ(tok.decode({258, 999999, -4}), "abc");  // unknown ids are skipped
}

TEST(Tokenizer, EosBosPadGuessedFromNames) {
  const Tokenizer tok = tiny();
  EXPECT_FALSE(tok.eos_id().has_value());
  EXPECT_FALSE(tok.bos_id().has_value());
  json j = tiny_json();
  j["added_tokens"].push_back({{"id", 300}, {"content", "<|endoftext|>"}, {"special", true}});
  const Tokenizer t2 = Tokenizer::from_json(j.dump());
  ASSERT_TRUE(t2.eos_id().has_value());
  EXPECT_EQ(*t2.eos_id(), 300);
  EXPECT_EQ(t2.vocab_size(), 301);
}

TEST(Tokenizer, ConfigFileSetsEosAndPad) {
  strata::testing::TempDir dir;
  strata::testing::write_file(dir.file("tokenizer.json"), tiny_json().dump());
  strata::testing::write_file(dir.file("tokenizer_config.json"),
                              R"({"eos_token": "<|end|>", "pad_token": {"content": "<mask>"}})");
  const Tokenizer tok = Tokenizer::from_file(dir.file("tokenizer.json"));
  EXPECT_EQ(tok.eos_id(), std::optional<int32_t>(260));
  EXPECT_EQ(tok.pad_id(), std::optional<int32_t>(262));
}

TEST(Tokenizer, TemplateProcessingWrapsSingle) {
  json j = tiny_json();
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|end|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"special_tokens",
       {{"<|end|>", {{"id", "<|end|>"}, {"ids", {260}}, {"tokens", {"<|end|>"}}}}}}};
  const Tokenizer tok = Tokenizer::from_json(j.dump());
  EXPECT_EQ(tok.wrap_single(tok.encode("ab")), (Ids{260, 257}));
  EXPECT_EQ(tiny().wrap_single({1, 2}), (Ids{1, 2}));
}

// ---- errors -----------------------------------------------------------------------------------

std::string load_error(const json& j) {
  try {
    Tokenizer::from_json(j.dump(), "bad.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TokenizerErrors, UnsupportedOrMalformedFilesNameTheProblem) {
  json j = tiny_json();
  j["model"]["type"] = "Unigram";
  EXPECT_NE(load_error(j).find("bad.json: model.type \"Unigram\" is not supported"),
            std::string::npos)
      << load_error(j);

  j = tiny_json();
  j["model"].erase("vocab");
  EXPECT_NE(load_error(j).find("model.vocab is missing"), std::string::npos) << load_error(j);

  j = tiny_json();
  j["model"]["merges"].push_back("q zz");
  EXPECT_NE(load_error(j).find("\"zz\" is not in the vocabulary"), std::string::npos)
      << load_error(j);

  j = tiny_json();
  j["model"]["merges"].push_back("abc");
  EXPECT_NE(load_error(j).find("model.merges[5]"), std::string::npos) << load_error(j);

  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  EXPECT_NE(load_error(j).find("pre_tokenizer.type \"Metaspace\" is not supported"),
            std::string::npos)
      << load_error(j);

  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "(unclosed"}}},
                        {"behavior", "Isolated"},
                        {"invert", false}};
  EXPECT_NE(load_error(j).find("does not compile"), std::string::npos) << load_error(j);

  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "a"}}},
                        {"behavior", "MergedWithNext"},
                        {"invert", false}};
  EXPECT_NE(load_error(j).find("behavior \"MergedWithNext\" is not supported"), std::string::npos)
      << load_error(j);

  j = tiny_json();
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_NE(load_error(j).find("decoder.type \"WordPiece\" is not supported"), std::string::npos);

  j = tiny_json();
  j["normalizer"] = {{"type", "Precompiled"}};
  EXPECT_NE(load_error(j).find("normalizer.type \"Precompiled\" is not supported"),
            std::string::npos);

  j = tiny_json();
  j["model"]["byte_fallback"] = true;
  EXPECT_NE(load_error(j).find("byte_fallback"), std::string::npos);

  j = tiny_json();
  j.erase("model");
  EXPECT_NE(load_error(j).find("model is missing"), std::string::npos);

  EXPECT_THROW(Tokenizer::from_json("{not json", "x"), Error);
  EXPECT_THROW(Tokenizer::from_file("/nonexistent/tokenizer.json"), Error);
}

// ---- pre-tokenizer regexes ----------------------------------------------------------------------

std::vector<std::string> qwen_pieces(const std::string& text) {
  std::vector<impl::PreTokenizerStage> stages(2);
  stages[0].regex = std::make_shared<impl::Regex>(impl::kQwen2Pattern);
  stages[1].kind = impl::PreTokenizerStage::Kind::kByteLevel;
  impl::PreTokenizer pre(std::move(stages));
  std::vector<std::string> out;
  pre.run(text, out);
  return out;
}

TEST(PreTokenizer, Qwen2PatternSplitsAsExpected) {
  // Digits one by one; a space before digits stands alone; "\s*[\r\n]+" takes the newlines and
  // "\s+(?!\S)" leaves the last space to the next word; contractions are case-insensitive.
  EXPECT_EQ(
      qwen_pieces("Hello world's 123\n\n  x"),
      (std::vector<std::string>{"Hello", "Ġworld", "'s", "Ġ", "1", "2", "3", "ĊĊ", "Ġ", "Ġx"}));
  EXPECT_EQ(qwen_pieces("I'M don't"), (std::vector<std::string>{"I", "'M", "Ġdon", "'t"}));
  EXPECT_EQ(qwen_pieces("a,\r\nb"), (std::vector<std::string>{"a", ",čĊ", "b"}));
  // Invalid UTF-8 is a piece of its own, never fed to the regex.
  EXPECT_EQ(qwen_pieces("ab\xFF"
                        "cd"),
            (std::vector<std::string>{"ab", "ÿ", "cd"}));
}

// ---- trainer + round trips
// ------------------------------------------------------------------------

std::string training_text() {
  Rng rng(11);
  const std::vector<std::string> words = {
      "the",       "search",   "engine",   "found",  "a",     "passage", "about",
      "Paris",     "in",       "1906",     "café",   "naïve", "Привет",  "мир",
      "你好",      "世界",     "مرحبا",    "नमस्ते",   "😀",     "don't",   "<search>",
      "</search>", "<answer>", "question", "answer", "river", "mountain"};
  std::string text;
  for (int i = 0; i < 4000; ++i) {
    text += rng.pick(words);
    text += rng.bernoulli(0.1) ? "\n" : " ";
  }
  return text;
}

Tokenizer train_small(TrainedBpe* out = nullptr, std::string* json_out = nullptr) {
  BpeTrainerOptions opt;
  opt.vocab_size = 300;
  opt.show_progress = false;
  BpeTrainer trainer(opt);
  trainer.add_text(training_text());
  trainer.add_text("<|im_start|>user\nhi<|im_end|>\n");
  TrainedBpe bpe = trainer.train();
  const std::string js = tokenizer_json(bpe, opt);
  if (out) *out = bpe;
  if (json_out) *json_out = js;
  return Tokenizer::from_json(js, "trained");
}

TEST(BpeTrainer, TrainsDeterministicallyWithBytesMergesAndSpecials) {
  TrainedBpe bpe;
  std::string js1, js2;
  const Tokenizer tok = train_small(&bpe, &js1);
  train_small(nullptr, &js2);
  EXPECT_EQ(js1, js2);
  EXPECT_EQ(tok.vocab_size(), 300);
  EXPECT_EQ(bpe.vocab.size(), 297u);
  EXPECT_EQ(bpe.merges.size(), 297u - 256u);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 297);
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), 298);
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 299);
  EXPECT_TRUE(tok.is_special(299));
  // The special tokens never entered the merges.
  EXPECT_EQ(tok.encode("<|im_start|>"), (Ids{298}));
  for (const auto& [l, r] : bpe.merges) EXPECT_EQ((l + r).find("im_start"), std::string::npos);
  // The first merge is the most frequent pair of the text.
  EXPECT_EQ(tok.token_to_id(bpe.merges[0].first + bpe.merges[0].second), 256);
}

TEST(BpeTrainer, MergesTheMostFrequentPairFirstAndBreaksTiesByTokenStrings) {
  // Words: "abab" x1, "Ġabab" x2, "Ġab" x1. Pair counts: (a,b) 7, (b,a) 3, (Ġ,a) 3 -> "ab".
  // Then (ab,ab) 3 and (Ġ,ab) 3 tie; "ab" < "Ġ" bytewise -> "abab". Then (Ġ,abab) 2 -> "Ġabab".
  // (Ġ,ab) occurs once: below min_frequency 2, so training stops there.
  for (int min_freq : {2, 1}) {
    BpeTrainerOptions opt;
    opt.vocab_size = 300;
    opt.min_frequency = min_freq;
    opt.show_progress = false;
    opt.special_tokens = {"<|endoftext|>"};
    BpeTrainer trainer(opt);
    trainer.add_text("abab abab abab ab");
    const TrainedBpe bpe = trainer.train();
    std::vector<std::pair<std::string, std::string>> want = {
        {"a", "b"}, {"ab", "ab"}, {"Ġ", "abab"}};
    if (min_freq == 1) want.emplace_back("Ġ", "ab");
    EXPECT_EQ(bpe.merges, want);
    const Tokenizer tok = Tokenizer::from_json(tokenizer_json(bpe, opt));
    // GPT-2 byte order puts "Ġ" (the space) at id 220; merges follow the 256 bytes.
    const Ids tail = min_freq == 1 ? Ids{259} : Ids{220, 256};
    Ids want_ids = {257, 258};
    want_ids.insert(want_ids.end(), tail.begin(), tail.end());
    EXPECT_EQ(tok.encode("abab abab ab"), want_ids);
    EXPECT_EQ(tok.token_to_id("<|endoftext|>"), min_freq == 1 ? 260 : 259);
  }
}

TEST(BpeTrainer, RejectsBadOptionsAndInputs) {
  BpeTrainerOptions opt;
  opt.vocab_size = 100;
  EXPECT_THROW(BpeTrainer{opt}, Error);
  opt.vocab_size = 1000;
  opt.min_frequency = 0;
  EXPECT_THROW(BpeTrainer{opt}, Error);
  opt.min_frequency = 2;
  strata::testing::TempDir dir;
  strata::testing::write_file(dir.file("c.jsonl"), "{\"contents\": \"a b\"}\n{\"id\": 3}\n");
  BpeTrainer trainer(opt);
  try {
    trainer.add_file(dir.file("c.jsonl"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("c.jsonl:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_train_text_format("csv"), Error);
}

TEST(BpeTrainer, WritesFilesThatLoadWithConfig) {
  TrainedBpe bpe;
  train_small(&bpe);
  BpeTrainerOptions opt;
  opt.vocab_size = 300;
  strata::testing::TempDir dir;
  write_tokenizer_files(bpe, opt, dir.file("tok/tokenizer.json"));
  const Tokenizer tok = Tokenizer::from_file(dir.file("tok/tokenizer.json"));
  EXPECT_EQ(tok.eos_id(), std::optional<int32_t>(297));
  EXPECT_EQ(tok.pad_id(), std::optional<int32_t>(297));
  EXPECT_FALSE(tok.bos_id().has_value());
  const json cfg = json::parse(strata::testing::read_file(dir.file("tok/tokenizer_config.json")));
  EXPECT_EQ(cfg["eos_token"], "<|endoftext|>");
  EXPECT_EQ(cfg["strata_chat_style"], "chatml");
  EXPECT_EQ(cfg["model_max_length"], 32768);
  EXPECT_EQ(detect_chat_style(tok), ChatStyle::kChatml);
}

std::string random_text(Rng& rng) {
  static const std::vector<std::string> pool = {"hello",
                                                " world",
                                                "é",
                                                "e\xCC\x81",
                                                "Ångström",
                                                "Привет",
                                                "Καλημέρα",
                                                "你好世界",
                                                "東京",
                                                "مرحبا",
                                                "नमस्ते",
                                                "😀",
                                                "👨‍👩‍👧‍👦",
                                                "🇯🇵",
                                                "   ",
                                                "\t",
                                                "\n",
                                                "\r\n",
                                                "\n\n\n",
                                                "\xC2\xA0",
                                                "\xE3\x80\x80",
                                                "\xC2\x85",
                                                "0",
                                                "12345678901",
                                                "３",
                                                "!!",
                                                "...",
                                                "—",
                                                "don't",
                                                "I'M",
                                                "<|im_start|>",
                                                "<|im_end|>",
                                                "<|endoftext|>",
                                                "<|im_",
                                                "<search>",
                                                "\xFF",
                                                "\xC3",
                                                "\xE4\xBD",
                                                "\xED\xA0\x80",
                                                "\xF4\x90\x80\x80",
                                                "\xC0\xAF",
                                                std::string(1, '\0')};
  std::string s;
  const int n = static_cast<int>(rng.range(0, 12));
  for (int i = 0; i < n; ++i) {
    if (rng.bernoulli(0.15)) {
      s.push_back(static_cast<char>(rng.below(256)));  // any byte at all
    } else {
      s += rng.pick(pool);
    }
  }
  return s;
}

TEST(Tokenizer, DecodeEncodeRoundTripsAnyBytes) {
  const Tokenizer tok = train_small();
  Rng rng(5);
  for (int i = 0; i < 3000; ++i) {
    const std::string s = random_text(rng);
    // NFC changes text, so compare against a tokenizer without a normalizer too.
    const Ids ids = tok.encode(s);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
    const std::string back = tok.decode(ids);
    if (s.find("e\xCC\x81") == std::string::npos) {
      EXPECT_EQ(back, s) << "case " << i;
    }
    EXPECT_EQ(tok.decode(tok.encode(s, false)), back) << "case " << i;
  }
  // The tiny tokenizer has no normalizer at all: every string comes back exactly.
  const Tokenizer raw = tiny();
  Rng rng2(6);
  for (int i = 0; i < 3000; ++i) {
    const std::string s = random_text(rng2);
    EXPECT_EQ(raw.decode(raw.encode(s)), s) << "case " << i;
  }
}

TEST(Tokenizer, EncodesFromSeveralThreadsAtOnce) {
  const Tokenizer tok = train_small();
  Rng rng(9);
  std::vector<std::string> texts;
  for (int i = 0; i < 2000; ++i) texts.push_back(random_text(rng));
  std::vector<Ids> want;
  for (const auto& t : texts) want.push_back(tok.encode(t));
  const Tokenizer fresh = train_small();  // an empty cache, filled concurrently below
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < texts.size() * 2; i += 3) {
        if (fresh.encode(texts[i % texts.size()]) != want[i % texts.size()]) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Tokenizer, NfcNormalizesComposedAndDecomposedAlike) {
  const Tokenizer tok = train_small();
  EXPECT_EQ(tok.encode("cafe\xCC\x81"), tok.encode("caf\xC3\xA9"));
  EXPECT_EQ(tok.decode(tok.encode("cafe\xCC\x81")), "caf\xC3\xA9");
}

TEST(Tokenizer, LongWordsAreNotQuadratic) {
  const Tokenizer tok = train_small();
  const std::string long_word(200000, 'a');
  const Ids ids = tok.encode(long_word);
  EXPECT_EQ(tok.decode(ids), long_word);
  std::string mixed;
  for (int i = 0; i < 50000; ++i) mixed += "search";
  EXPECT_EQ(tok.decode(tok.encode(mixed)), mixed);
  // Long runs that the regex's lookahead and backtracking walk over.
  for (const std::string& run : {std::string(100000, ' '), std::string(100000, '\n'),
                                 std::string(100000, '7'), std::string(50000, '!') + "x",
                                 std::string(30000, ' ') + "\r\n" + std::string(30000, '\t')}) {
    EXPECT_EQ(tok.decode(tok.encode(run)), run);
  }
}

// ---- chat formats -----------------------------------------------------------------------------

const std::vector<ChatMessage> kChat = {{"system", "You search."}, {"user", "Who wrote X?"}};

TEST(ChatTemplate, Chatml) {
  EXPECT_EQ(format_chat(kChat, ChatStyle::kChatml, true),
            "<|im_start|>system\nYou search.<|im_end|>\n"
            "<|im_start|>user\nWho wrote X?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(format_chat({{"user", "hi"}}, ChatStyle::kChatml, false),
            "<|im_start|>user\nhi<|im_end|>\n");
  ChatFormatOptions o;
  o.default_system = kQwen25DefaultSystem;
  EXPECT_EQ(format_chat({{"user", "hi"}}, ChatStyle::kChatml, o),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  // An explicit system message wins over the default.
  EXPECT_EQ(format_chat(kChat, ChatStyle::kChatml, o),
            format_chat(kChat, ChatStyle::kChatml, true));
}

TEST(ChatTemplate, Llama3AndPlain) {
  EXPECT_EQ(format_chat(kChat, ChatStyle::kLlama3, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou search.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho wrote X?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(format_chat({{"user", "  hi \n"}}, ChatStyle::kLlama3, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
  EXPECT_EQ(format_chat(kChat, ChatStyle::kPlain, true), "You search.\n\nWho wrote X?");
}

TEST(ChatTemplate, StyleNamesDetectionAndStopIds) {
  EXPECT_EQ(parse_chat_style("llama3"), ChatStyle::kLlama3);
  EXPECT_STREQ(chat_style_name(ChatStyle::kChatml), "chatml");
  EXPECT_THROW(parse_chat_style("vicuna"), Error);
  EXPECT_EQ(detect_chat_style(tiny()), ChatStyle::kPlain);
  const Tokenizer tok = train_small();
  EXPECT_EQ(detect_chat_style(tok), ChatStyle::kChatml);
  EXPECT_EQ(chat_stop_ids(tok, ChatStyle::kChatml), (Ids{297, 299}));
  const std::string prompt = format_chat({{"user", "hi"}}, ChatStyle::kChatml, true);
  const Ids ids = tok.encode(prompt);
  EXPECT_EQ(ids.front(), 298);
  EXPECT_EQ(tok.decode(ids), prompt);
}

}  // namespace
}  // namespace strata::agent
