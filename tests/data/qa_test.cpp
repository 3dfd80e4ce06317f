#include "data/qa.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/test_util.h"

namespace strata::data {
namespace {

using testing::error_of;

TEST(QaReaderReal, HotpotQaR1SearcherFormat) {
  STRATA_REQUIRE_SHARED(dir);
  const auto recs = read_qa_file(dir + "/hotpotqa_500.jsonl");
  ASSERT_EQ(recs.size(), 500u);
  EXPECT_EQ(recs[0].id, "1");
  EXPECT_EQ(recs[0].golden_answers, std::vector<std::string>{"Kauffman Stadium"});
  EXPECT_EQ(recs[0].metadata["source_format"], "r1searcher");
  EXPECT_TRUE(recs[0].metadata.contains("gen_text_store"));
}

TEST(QaReaderReal, TwoWiki) {
  STRATA_REQUIRE_SHARED(dir);
  const auto recs = read_qa_file(dir + "/2wiki_500.jsonl");
  ASSERT_EQ(recs.size(), 500u);
  EXPECT_EQ(recs[1].golden_answers[0], "3 November 1929");
  // Non-ASCII text survives as UTF-8.
  EXPECT_NE(recs[1].question.find("J\xc4\x99" "drzejewiczowa"), std::string::npos);
}

TEST(QaReaderReal, NqFlashRagWithoutTrailingNewline) {
  STRATA_REQUIRE_SHARED(dir);
  // The file has 17 records and no newline after the last one.
  const auto recs = read_qa_file(dir + "/nq_test_17.jsonl");
  ASSERT_EQ(recs.size(), 17u);
  EXPECT_EQ(recs[0].id, "test_0");
  EXPECT_EQ(recs[2].golden_answers, (std::vector<std::string>{"Olivia", "MFSK"}));
  EXPECT_EQ(recs[16].golden_answers, std::vector<std::string>{"Oak Island"});
  EXPECT_EQ(recs[0].metadata["source_format"], "flashrag");
}

TEST(QaReader, HotpotOriginalJson) {
  const auto recs = read_qa_file(testing::fixture("hotpot_original.json"));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].id, "5a8b57f25542995d1e6f1371");
  EXPECT_EQ(recs[0].golden_answers[0], "yes");
  EXPECT_EQ(recs[0].metadata["type"], "comparison");
  EXPECT_EQ(recs[1].metadata["level"], "medium");
  EXPECT_EQ(recs[1].metadata["source_format"], "hotpotqa");
}

TEST(QaReader, NqOpenGetsLineOrdinalIds) {
  const auto recs = read_qa_file(testing::fixture("nq_open.jsonl"));
  ASSERT_EQ(recs.size(), 3u);  // the blank line is not a record
  EXPECT_EQ(recs[0].id, "0");
  EXPECT_EQ(recs[2].id, "2");
  EXPECT_EQ(recs[1].golden_answers.size(), 2u);
  EXPECT_EQ(recs[1].metadata["source_format"], "nq_open");
}

TEST(QaReader, FlashRagKeepsExtraFieldsAndRoundTrips) {
  const auto recs = read_qa_file(testing::fixture("flashrag.jsonl"));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].metadata["hops"], 1);
  testing::TempDir dir;
  write_qa_jsonl(dir.file("out.jsonl"), recs);
  const auto back = read_qa_file(dir.file("out.jsonl"));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].golden_answers, recs[1].golden_answers);
  EXPECT_EQ(back[0].metadata["type"], "single");
}

TEST(QaReader, MalformedLineNamesFileAndLine) {
  const auto path = testing::fixture("bad_line3.jsonl");
  const auto msg = error_of([&] { read_qa_file(path); });
  EXPECT_NE(msg.find(path + ":3: invalid JSON"), std::string::npos) << msg;
}

TEST(QaReader, BadRecordsAreErrorsNotSkips) {
  testing::TempDir dir;
  auto check = [&](const std::string& body, const std::string& expect) {
    testing::write_file(dir.file("f.jsonl"), body);
    const auto msg = error_of([&] { read_qa_file(dir.file("f.jsonl")); });
    EXPECT_NE(msg.find(expect), std::string::npos) << "body: " << body << "\nmsg: " << msg;
  };
  check("{\"id\":\"a\",\"golden_answers\":[\"x\"]}\n", "f.jsonl:1: missing \"question\"");
  check("{\"id\":\"a\",\"question\":\"q\",\"golden_answers\":[]}\n", "is empty");
  check("{\"id\":\"a\",\"question\":\"q\",\"golden_answers\":[1.5, {}]}\n", "must hold strings");
  check("{\"question\":\"q\",\"foo\":1}\n", "unknown record format");
  check("[1,2]\n", "expected a JSON object");
  check("{\"id\":\"a\",\"question\":\"q\",\"golden_answers\":[\"x\"]}\n"
        "{\"id\":\"a\",\"question\":\"q\",\"golden_answers\":[\"y\"]}\n",
        "f.jsonl:2: duplicate id \"a\"");
  check("{\"idx\":true,\"question\":\"q\",\"answer\":\"x\"}\n", "\"idx\" must be a string or an integer");
  // A number too large for a double is a parse error naming the line (it used to escape as a
  // generic error without file or line).
  check("{\"id\":\"a\",\"question\":\"q\",\"golden_answers\":[\"x\"]}\n{\"id\":1e400}\n",
        "f.jsonl:2: invalid JSON");
  const auto missing = error_of([&] { read_qa_file(dir.file("nope.jsonl")); });
  EXPECT_NE(missing.find("cannot open QA file"), std::string::npos);
}

TEST(QaReader, ForcedFormatIsRespected) {
  testing::TempDir dir;
  testing::write_file(dir.file("f.jsonl"), "{\"id\":\"a\",\"question\":\"q\",\"answer\":[\"x\"]}\n");
  EXPECT_EQ(read_qa_file(dir.file("f.jsonl"), QaFormat::kNqOpen)[0].id, "a");
  EXPECT_THROW(read_qa_file(dir.file("f.jsonl"), QaFormat::kFlashRag), Error);
  EXPECT_EQ(parse_qa_format("hotpotqa"), QaFormat::kHotpotQa);
  EXPECT_THROW(parse_qa_format("parquet"), Error);
}

}  // namespace
}  // namespace strata::data
