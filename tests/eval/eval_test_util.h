// Helpers for the evaluate tests: run the program and read what it wrote.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace strata::testing {

// The evaluate binary, quoted, or "" when this build has none (built without LibTorch).
inline std::string evaluate_bin() {
  const std::string b = ::strata::testing::bin("evaluate");
  return std::filesystem::exists(b) ? "'" + b + "'" : "";
}

inline nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(::strata::testing::read_file(path));
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(::strata::testing::read_file(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace strata::testing

#define STRATA_REQUIRE_EVALUATE(var)                         \
  const std::string var = ::strata::testing::evaluate_bin(); \
  if (var.empty()) GTEST_SKIP() << "build/bin/evaluate is not built (it needs LibTorch)"
