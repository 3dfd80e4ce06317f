// Test fixtures built once and shared by every test process of one test binary.
//
// CTest runs each TEST in a process of its own (gtest_discover_tests), so a GoogleTest
// SetUpTestSuite alone still builds a suite's world, index, tokenizer and model once per test.
// shared_fixture_dir builds them once on disk instead: the first process that asks takes an
// exclusive lock, builds into a temporary folder and renames it into place; the others wait on
// the lock and reuse the folder. Within one process the answer is memoised, so a binary run
// directly (all tests in one process) builds once as well.
//
// The folder is build/test_data/fixtures/<name>-<stamp> ($STRATA_TEST_FIXTURES overrides the
// parent folder), where the stamp is the running test binary's size and modification time: a
// rebuilt binary (the libraries are static, so any code change relinks it) gets a fresh build,
// and folders of older stamps are removed. The builder must be deterministic: the folder stands
// for "what build() writes", whichever process wrote it.
//
// Tests treat the folder as read-only; a test that changes files copies them first
// (copy_tree).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace strata::testing {

namespace detail {

inline std::string binary_stamp() {
  struct stat st {};
  if (::stat("/proc/self/exe", &st) != 0) return "nostamp";
  return std::to_string(static_cast<long long>(st.st_size)) + "_" +
         std::to_string(static_cast<long long>(st.st_mtim.tv_sec)) + "_" +
         std::to_string(static_cast<long long>(st.st_mtim.tv_nsec));
}

inline std::filesystem::path fixtures_root() {
  if (const char* env = std::getenv("STRATA_TEST_FIXTURES")) return env;
  return std::filesystem::path(STRATA_BIN_DIR).parent_path() / "test_data" / "fixtures";
}

// An exclusive flock on `path`, released on destruction.
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT, 0644)) {
    if (fd_ < 0) throw std::runtime_error("cannot open lock file " + path);
    while (::flock(fd_, LOCK_EX) != 0) {
    }
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

}  // namespace detail

// The folder holding what `build(dir)` writes for fixture `name`, built at most once per test
// binary build (see above). `build` gets an empty folder; it throws on failure (nothing is kept).
inline std::string shared_fixture_dir(const std::string& name,
                                      const std::function<void(const std::string& dir)>& build) {
  namespace fs = std::filesystem;
  static std::mutex mu;
  static std::map<std::string, std::string> done;
  std::lock_guard<std::mutex> guard(mu);
  if (auto it = done.find(name); it != done.end()) return it->second;

  const fs::path root = detail::fixtures_root();
  fs::create_directories(root);
  const std::string stamped = name + "-" + detail::binary_stamp();
  const fs::path final_dir = root / stamped;
  detail::FileLock lock((root / (name + ".lock")).string());
  if (!fs::exists(final_dir / ".complete")) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root)) {  // older stamps and interrupted builds
      const std::string f = e.path().filename().string();
      if (e.is_directory() && f.rfind(name + "-", 0) == 0) fs::remove_all(e.path(), ec);
    }
    const fs::path tmp = root / (stamped + ".tmp");
    fs::create_directories(tmp);
    try {
      build(tmp.string());
    } catch (...) {
      fs::remove_all(tmp, ec);
      throw;
    }
    { std::ofstream(tmp / ".complete") << stamped << "\n"; }
    fs::rename(tmp, final_dir);
  }
  done[name] = final_dir.string();
  return final_dir.string();
}

// Copies a folder (recursively) to `to`, which must not exist yet.
inline void copy_tree(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(to).parent_path());
  fs::copy(from, to, fs::copy_options::recursive);
}

}  // namespace strata::testing
