// build_index, the program: exit codes and messages.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include "retrieval/bm25_index.h"
#include "tests/test_util.h"

namespace strata::retrieval {
namespace {

struct ToolRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

ToolRun run_build_index(const std::string& args, const testing::TempDir& tmp) {
  const std::string out = tmp.file("build_index.out");
  const std::string cmd = testing::bin("build_index") + " " + args + " > " + out + " 2>&1";
  const int status = std::system(cmd.c_str());
  ToolRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.output = testing::read_file(out);
  return r;
}

TEST(BuildIndexTool, IndexesACorpusAndReportsTheSize) {
  testing::TempDir tmp;
  testing::write_file(tmp.file("c.jsonl"),
                      "{\"id\": \"a\", \"title\": \"Alpha\", \"text\": \"first passage\"}\n"
                      "{\"id\": \"b\", \"contents\": \"\\\"Beta\\\"\\nsecond passage\"}\n");
  const ToolRun r = run_build_index("--corpus " + tmp.file("c.jsonl") + " --out " + tmp.file("idx") +
                                    " --k1 1.1 --b 0.5 --threads 1",
                                tmp);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("index " + tmp.file("idx") + ": "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bytes"), std::string::npos) << r.output;
  Bm25Index index(tmp.file("idx"));
  EXPECT_EQ(index.num_docs(), 2u);
  EXPECT_DOUBLE_EQ(index.k1(), 1.1);
  EXPECT_DOUBLE_EQ(index.b(), 0.5);
  EXPECT_EQ(index.document(index.search("second", 1).at(0).doc).id, "b");
}

TEST(BuildIndexTool, MalformedLineExitsTwoWithFileAndLine) {
  testing::TempDir tmp;
  const std::string corpus = tmp.file("bad.jsonl");
  testing::write_file(corpus,
                      "{\"id\": \"0\", \"contents\": \"\\\"A\\\"\\ntext\"}\n"
                      "{\"id\": \"1\", \"contents\": \"unterminated\n");
  const ToolRun r = run_build_index("--corpus " + corpus + " --out " + tmp.file("idx"), tmp);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(corpus + ":2"), std::string::npos) << r.output;
  // No manifest: a half-built index never opens.
  EXPECT_FALSE(std::filesystem::exists(tmp.file("idx/manifest.json")));
}

TEST(BuildIndexTool, MissingCorpusAndBadOptionsExitTwo) {
  testing::TempDir tmp;
  ToolRun r = run_build_index("--corpus " + tmp.file("none.jsonl") + " --out " + tmp.file("idx"), tmp);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("none.jsonl"), std::string::npos) << r.output;
  testing::write_file(tmp.file("c.jsonl"), "{\"id\": \"0\", \"contents\": \"x\"}\n");
  r = run_build_index("--corpus " + tmp.file("c.jsonl") + " --out " + tmp.file("idx") + " --b 2",
                      tmp);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("b must be in [0, 1]"), std::string::npos) << r.output;
  r = run_build_index("--out " + tmp.file("idx"), tmp);
  EXPECT_EQ(r.code, 2) << r.output;
}

}  // namespace
}  // namespace strata::retrieval
