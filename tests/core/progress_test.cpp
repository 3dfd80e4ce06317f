#include "core/progress.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace strata {
namespace {

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(Progress::format_duration(12.34), "12.3s");
  EXPECT_EQ(Progress::format_duration(185), "3m05s");
  EXPECT_EQ(Progress::format_duration(3725), "1h02m");
  EXPECT_EQ(Progress::format_duration(-1), "?");
}

TEST(Progress, RenderShowsPercentRateAndEta) {
  const auto line = Progress::render("indexing", "passages", 250, 1000, 5.0, false);
  EXPECT_NE(line.find("25.0%"), std::string::npos) << line;
  EXPECT_NE(line.find("250/1000 passages"), std::string::npos) << line;
  EXPECT_NE(line.find("50/s"), std::string::npos) << line;
  // 750 left at 50/s = 15 s.
  EXPECT_NE(line.find("ETA 15.0s"), std::string::npos) << line;
  const auto done = Progress::render("indexing", "passages", 1000, 1000, 20.0, true);
  EXPECT_NE(done.find("100.0%"), std::string::npos);
  EXPECT_EQ(done.find("ETA"), std::string::npos);
  EXPECT_NE(done.find("total"), std::string::npos);
}

TEST(Progress, UnknownTotalHasNoEta) {
  const auto line = Progress::render("reading", "lines", 12000, 0, 2.0, false);
  EXPECT_NE(line.find("12.0k lines"), std::string::npos) << line;
  EXPECT_EQ(line.find("ETA"), std::string::npos);
}

TEST(Progress, CountsFromManyThreads) {
  setenv("STRATA_NO_PROGRESS", "1", 1);
  Progress bar("t", 4000, "items");
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) bar.add();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bar.count(), 4000u);
  unsetenv("STRATA_NO_PROGRESS");
}

}  // namespace
}  // namespace strata
