// Helpers shared by the test suites.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace strata::testing {

// ../shared/data/real beside the checkout (or $STRATA_SHARED_DIR/data/real); empty when absent.
inline std::string shared_real_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("STRATA_SHARED_DIR")) {
    fs::path p = fs::path(env) / "data" / "real";
    if (fs::is_directory(p)) return p.string();
  }
  fs::path p = fs::path(STRATA_SOURCE_DIR) / ".." / "shared" / "data" / "real";
  if (fs::is_directory(p)) return fs::canonical(p).string();
  return "";
}

// $STRATA_CACHE (or ~/.cache/strata)/models/<name>, where scripts/setup.sh unpacks the real
// models (smollm2-135m-instruct, all-minilm-l6-v2); empty when that folder has no config.json.
inline std::string cached_model_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path cache;
  if (const char* c = std::getenv("STRATA_CACHE")) {
    cache = c;
  } else if (const char* h = std::getenv("HOME")) {
    cache = fs::path(h) / ".cache" / "strata";
  }
  const fs::path dir = cache / "models" / name;
  return fs::is_regular_file(dir / "config.json") ? dir.string() : "";
}

inline std::string fixture(const std::string& name) {
  return std::string(STRATA_SOURCE_DIR) + "/tests/fixtures/" + name;
}

inline std::string bin(const std::string& name) { return std::string(STRATA_BIN_DIR) + "/" + name; }

// A fresh, empty temporary directory, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "strata_test_XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The message of the strata::Error that `f` throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A byte-level stand-in tokenizer for environment tests: one id per byte, so token counts are
// byte counts.
inline std::vector<int32_t> byte_encode(std::string_view s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) ids.push_back(c);
  return ids;
}
inline std::string byte_decode(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t i : ids) s.push_back(static_cast<char>(i));
  return s;
}

struct RunResult {
  int rc = -1;         // exit code
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing stdout and stderr.
inline RunResult run_command(const std::string& cmd) {
  RunResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace strata::testing

// Skips the current test, loudly, when ../shared is not beside the checkout.
#define STRATA_REQUIRE_SHARED(dir_var)                                                   \
  const std::string dir_var = ::strata::testing::shared_real_dir();                      \
  if (dir_var.empty())                                                                   \
  GTEST_SKIP() << "../shared/data/real not found beside the checkout (set STRATA_SHARED_DIR " \
                  "to point at it); skipping the test that reads the real data"
