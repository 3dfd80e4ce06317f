#include "core/error.h"

#include <gtest/gtest.h>

#include "core/cli.h"
#include "core/log.h"

namespace strata {
namespace {

// run_main turns exceptions into the documented exit codes; "daemon unreachable" has its own.
TEST(ExitCodes, RunMainMapsErrorTypes) {
  auto run = [](const std::function<int()>& body) {
    CLI::App app{"test", "prog"};
    char name[] = "prog";
    char* argv[] = {name};
    return cli::run_main(app, 1, argv, body);
  };
  EXPECT_EQ(run([] { return 0; }), cli::kExitOk);
  EXPECT_EQ(run([]() -> int { throw Error("bad key"); }), cli::kExitUsage);
  EXPECT_EQ(run([]() -> int { throw UnreachableError("retriever: cannot reach"); }), cli::kExitUnreachable);
  EXPECT_EQ(cli::kExitUnreachable, 3);
  EXPECT_EQ(run([]() -> int { throw std::runtime_error("disk full"); }), cli::kExitFailure);
}

TEST(Error, CheckThrowsWithMessageConditionAndLocation) {
  const int topk = -2;
  try {
    STRATA_CHECK(topk > 0, "topk must be positive, got " << topk);
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("topk must be positive, got -2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("`topk > 0`"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tests/core/error_test.cpp:"), std::string::npos) << msg;
  }
}

TEST(Error, PassingCheckDoesNothing) { EXPECT_NO_THROW(STRATA_CHECK(1 + 1 == 2, "math")); }

TEST(ErrorDeathTest, AssertAborts) {
  EXPECT_DEATH(STRATA_ASSERT(false, "bug " << 42), "strata internal error: bug 42");
}

TEST(Log, LevelsParseAndFilter) {
  EXPECT_EQ(log::parse_level("debug"), log::Level::kDebug);
  EXPECT_EQ(log::parse_level("warning"), log::Level::kWarn);
  EXPECT_THROW(log::parse_level("loud"), Error);
  const auto saved = log::level();
  log::set_level(log::Level::kWarn);
  EXPECT_FALSE(log::enabled(log::Level::kInfo));
  EXPECT_TRUE(log::enabled(log::Level::kError));
  log::set_level(saved);
}

}  // namespace
}  // namespace strata
