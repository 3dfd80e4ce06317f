#include "data/corpus.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "tests/test_util.h"

namespace strata::data {
namespace {

TEST(CorpusReaderReal, Wiki18SampleHasAllPassages) {
  STRATA_REQUIRE_SHARED(dir);
  CorpusReader reader(dir + "/wiki18_sample_1000.jsonl");
  Passage p;
  size_t n = 0;
  std::set<std::string> ids;
  while (reader.next(p)) {
    ++n;
    ids.insert(p.id);
    EXPECT_FALSE(p.title.empty()) << "passage " << p.id;
    EXPECT_EQ(p.title.front() == '"', false) << "quotes must be stripped: " << p.title;
    if (n == 1) {
      EXPECT_EQ(p.id, "0");
      EXPECT_EQ(p.title, "Evan Morris");
      EXPECT_EQ(p.text.rfind("Evan Morris Evan L. Morris", 0), 0u);
    }
  }
  EXPECT_EQ(n, 1000u);
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(reader.bytes_read(), reader.file_size());
}

TEST(CorpusReader, BothRecordForms) {
  CorpusReader reader(testing::fixture("corpus_title_text.jsonl"));
  Passage p;
  ASSERT_TRUE(reader.next(p));
  EXPECT_EQ(p.id, "7");
  EXPECT_EQ(p.title, "Ed Wood");
  EXPECT_EQ(p.contents, "\"Ed Wood\"\nEdward Davis Wood Jr. was an American filmmaker.");
  ASSERT_TRUE(reader.next(p));
  EXPECT_EQ(p.id, "8");
  EXPECT_EQ(p.title, "Scott Derrickson");
  EXPECT_EQ(p.text, "Scott Derrickson is an American director.");
  EXPECT_FALSE(reader.next(p));
}

TEST(CorpusReader, HugeNumberIsALineError) {
  testing::TempDir dir;
  testing::write_file(dir.file("c.jsonl"), "{\"id\": 1, \"contents\": \"a\"}\n{\"id\": 1e400}\n");
  CorpusReader reader(dir.file("c.jsonl"));
  Passage p;
  ASSERT_TRUE(reader.next(p));
  try {
    reader.next(p);
    FAIL() << "read a record with a number too large for a double";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("c.jsonl:2: invalid JSON"), std::string::npos) << e.what();
  }
}

TEST(CorpusReader, SplitContents) {
  std::string title, text;
  split_contents("\"A \"quoted\" title\"\nbody\nmore", title, text);
  EXPECT_EQ(title, "A \"quoted\" title");
  EXPECT_EQ(text, "body\nmore");
  split_contents("no title line", title, text);
  EXPECT_EQ(title, "");
  EXPECT_EQ(text, "no title line");
}

TEST(CorpusReader, MalformedLinesNameFileAndLine) {
  testing::TempDir dir;
  auto expect_error = [&](const std::string& body, const std::string& want) {
    testing::write_file(dir.file("c.jsonl"), body);
    CorpusReader reader(dir.file("c.jsonl"));
    Passage p;
    try {
      while (reader.next(p)) {
      }
      ADD_FAILURE() << "no error for: " << body;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  expect_error("{\"id\":\"1\",\"contents\":\"a\"}\n{oops\n", "c.jsonl:2: invalid JSON");
  expect_error("{\"contents\":\"a\"}\n", "c.jsonl:1: missing \"id\"");
  expect_error("{\"id\":\"1\"}\n", "needs \"contents\" or \"title\" and \"text\"");
  expect_error("{\"id\":\"1\",\"contents\":5}\n", "\"contents\" must be a string");
  EXPECT_THROW(CorpusReader(dir.file("missing.jsonl")), Error);
}

}  // namespace
}  // namespace strata::data
