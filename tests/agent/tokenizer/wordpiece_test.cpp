// Unit tests for the WordPiece tokenizer (BERT's tokenizer.json): a hand-made vocabulary, so
// every expected id is worked out by hand from tokenizers' rules. Parity with `tokenizers` on
// a real model is wordpiece_parity_test.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/tokenizer/tokenizer.h"
#include "core/error.h"
#include "tests/test_util.h"

namespace strata::agent {
namespace {

using Ids = std::vector<int32_t>;
using nlohmann::json;

enum : int32_t { kPad, kUnk, kCls, kSep, kMask, kUn, kAff, kAble, kHello, kWorld, kBang, kA, kContA,
                 kCafe, kNi, kComma, kCafeAccent, kI, kContCombiningDot };

json bert_json() {
  json vocab = {{"[PAD]", kPad},   {"[UNK]", kUnk},     {"[CLS]", kCls},       {"[SEP]", kSep},
                {"[MASK]", kMask}, {"un", kUn},         {"##aff", kAff},       {"##able", kAble},
                {"hello", kHello}, {"world", kWorld},   {"!", kBang},          {"a", kA},
                {"##a", kContA},   {"cafe", kCafe},     {"\u4f60", kNi},       {",", kComma},
                {"caf\u00e9", kCafeAccent}, {"i", kI}, {"##\u0307", kContCombiningDot}};
  json added = json::array();
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    added.push_back({{"id", vocab[t]}, {"content", t}, {"special", true}, {"normalized", false}});
  }
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer",
           {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
            {"strip_accents", nullptr}, {"lowercase", true}}},
          {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
          {"post_processor",
           {{"type", "BertProcessing"}, {"sep", {"[SEP]", kSep}}, {"cls", {"[CLS]", kCls}}}},
          {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
          {"model",
           {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
            {"max_input_chars_per_word", 100}, {"vocab", vocab}}}};
}

Tokenizer load(const json& j) { return Tokenizer::from_json(j.dump(), "bert.json"); }

TEST(WordPiece, LowerCasesSplitsPunctuationAndUsesContinuations) {
  const Tokenizer tok = load(bert_json());
  EXPECT_EQ(tok.encode("UnAffable, HELLO!"), (Ids{kUn, kAff, kAble, kComma, kHello, kBang}));
  EXPECT_EQ(tok.encode("  hello\t\nworld  "), (Ids{kHello, kWorld}));
  // A word with a stretch no entry covers is one [UNK], whatever its known prefix.
  EXPECT_EQ(tok.encode("unxyz hello"), (Ids{kUnk, kHello}));
  // Special tokens in the text are matched before normalisation; lower-case ones are not.
  EXPECT_EQ(tok.encode("hello [MASK] world"), (Ids{kHello, kMask, kWorld}));
  EXPECT_EQ(tok.encode("[mask]"), (Ids{kUnk, kUnk, kUnk}));  // "[", "mask", "]"
}

TEST(WordPiece, NormalizerCleansTextStripsAccentsAndSpacesCjk) {
  const Tokenizer tok = load(bert_json());
  // strip_accents null follows lowercase: NFD, marks dropped.
  EXPECT_EQ(tok.encode("Caf\u00e9 CAFE\u0301"), (Ids{kCafe, kCafe}));
  // Controls (Cc) and format characters (Cf, e.g. ZERO WIDTH SPACE) vanish inside a word; NUL too.
  EXPECT_EQ(tok.encode("hel\x01lo wor\u200bld he\0llo"), (Ids{kHello, kWorld, kUnk}));
  EXPECT_EQ(tok.encode(std::string("he\0llo", 6)), (Ids{kHello}));
  // Non-breaking and ideographic spaces separate words.
  EXPECT_EQ(tok.encode("hello\u00a0world\u3000a"), (Ids{kHello, kWorld, kA}));
  // Each CJK ideograph is a word of its own.
  EXPECT_EQ(tok.encode("a\u4f60a"), (Ids{kA, kNi, kA}));
  // Invalid UTF-8 becomes U+FFFD, which clean_text drops.
  EXPECT_EQ(tok.encode("hel\xfflo"), (Ids{kHello}));

  json j = bert_json();
  j["normalizer"]["strip_accents"] = false;
  const Tokenizer keep = load(j);
  EXPECT_EQ(keep.encode("CAF\u00c9"), (Ids{kCafeAccent}));
  // Lower-casing is per code point with the full mapping: U+0130 -> "i" + U+0307.
  EXPECT_EQ(keep.encode("\u0130"), (Ids{kI, kContCombiningDot}));
  j["normalizer"]["handle_chinese_chars"] = false;
  EXPECT_EQ(load(j).encode("a\u4f60a"), (Ids{kUnk}));
}

TEST(WordPiece, LongWordsBecomeUnk) {
  const Tokenizer tok = load(bert_json());
  Ids hundred{kA};
  hundred.insert(hundred.end(), 99, kContA);
  EXPECT_EQ(tok.encode(std::string(100, 'a')), hundred);
  EXPECT_EQ(tok.encode(std::string(101, 'a')), (Ids{kUnk}));
  json j = bert_json();
  j["model"]["max_input_chars_per_word"] = 3;
  EXPECT_EQ(load(j).encode("aaa aaaa"), (Ids{kA, kContA, kContA, kUnk}));
}

TEST(WordPiece, TemplateAndTruncation) {
  const Tokenizer tok = load(bert_json());
  EXPECT_EQ(tok.encode_single("hello"), (Ids{kCls, kHello, kSep}));
  EXPECT_EQ(tok.encode_single(""), (Ids{kCls, kSep}));
  EXPECT_EQ(tok.encode_single("hello world hello", 4), (Ids{kCls, kHello, kWorld, kSep}));
  EXPECT_EQ(tok.encode_single("hello world", 2), (Ids{kCls, kSep}));
  EXPECT_EQ(tok.encode_single("hello world", 0), (Ids{kCls, kHello, kWorld, kSep}));
  // The same template through TemplateProcessing.
  json j = bert_json();
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}}}},
      {"special_tokens",
       {{"[CLS]", {{"id", "[CLS]"}, {"ids", {kCls}}, {"tokens", {"[CLS]"}}}},
        {"[SEP]", {{"id", "[SEP]"}, {"ids", {kSep}}, {"tokens", {"[SEP]"}}}}}}};
  EXPECT_EQ(load(j).encode_single("hello world hello", 3), (Ids{kCls, kHello, kSep}));
  EXPECT_EQ(tok.pad_id(), std::optional<int32_t>(kPad));
}

TEST(WordPiece, DecodeGluesContinuationsAndCleansUp) {
  const Tokenizer tok = load(bert_json());
  EXPECT_EQ(tok.decode({kUn, kAff, kAble, kComma, kHello, kBang}), "unaffable, hello!");
  EXPECT_EQ(tok.decode({kCls, kHello, kSep}), "[CLS] hello [SEP]");
  EXPECT_EQ(tok.decode({kCls, kHello, kSep}, true), "hello");
  json j = bert_json();
  j["decoder"]["cleanup"] = false;
  EXPECT_EQ(load(j).decode({kHello, kComma, kWorld}), "hello , world");
}

TEST(WordPiece, UnsupportedOrMalformedFilesNameTheProblem) {
  auto error = [](const json& j) { return testing::error_of([&] { load(j); }); };
  json j = bert_json();
  j["model"]["unk_token"] = "<unk>";
  EXPECT_NE(error(j).find("bert.json: model: unk_token \"<unk>\" is not in the vocabulary"),
            std::string::npos)
      << error(j);
  j = bert_json();
  j["model"].erase("unk_token");
  EXPECT_NE(error(j).find("model.unk_token is missing"), std::string::npos) << error(j);
  j = bert_json();
  j["pre_tokenizer"] = {{"type", "ByteLevel"}};
  EXPECT_NE(error(j).find("ByteLevel with a WordPiece model is not supported"), std::string::npos)
      << error(j);
  j = bert_json();
  j["decoder"] = {{"type", "ByteLevel"}};
  EXPECT_NE(error(j).find("decoder.type \"ByteLevel\" is not supported with WordPiece"),
            std::string::npos)
      << error(j);
  j = bert_json();
  j["normalizer"]["lowercase"] = "yes";
  EXPECT_NE(error(j).find("normalizer.lowercase must be true or false"), std::string::npos)
      << error(j);
}

}  // namespace
}  // namespace strata::agent
