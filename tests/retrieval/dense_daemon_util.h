// Helpers for tests that run build_index and retrieval_server as programs: a temp folder per
// test, a child process run to completion, and a daemon started on port 0 whose port is read
// back from its --port-file.
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/child_process.h"
#include "tests/retrieval/server_test_util.h"

namespace strata::retrieval::testing {

inline const std::string kBin = STRATA_BIN_DIR;

inline std::filesystem::path temp_dir(const std::string& name) {
  const std::filesystem::path d = std::filesystem::temp_directory_path() /
                                  ("strata_densep_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline int run(std::vector<std::string> argv, const std::filesystem::path& log,
               double timeout_s = 60) {
  strata::testing::ChildProcess p(argv, log.string());
  return p.wait(timeout_s);
}

// A daemon started from the command line; waits for its port file.
struct Daemon {
  std::unique_ptr<strata::testing::ChildProcess> proc;
  uint16_t port = 0;
  Daemon(std::vector<std::string> args, const std::filesystem::path& dir) {
    const std::filesystem::path port_file = dir / "port";
    std::filesystem::remove(port_file);
    std::vector<std::string> argv = {kBin + "/retrieval_server", "--port", "0", "--port-file",
                                     port_file.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    proc = std::make_unique<strata::testing::ChildProcess>(argv, (dir / "daemon.log").string());
    for (int i = 0; i < 600 && port == 0 && proc->poll() == -1; ++i) {
      std::ifstream in(port_file);
      int p = 0;
      if (in >> p)
        port = static_cast<uint16_t>(p);
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  HttpResponse post(const std::string& body) const {
    RawConn c(port);
    HttpResponse r;
    c.send_all(http_post("/retrieve", body));
    c.read_response(r, 10000);
    return r;
  }
  HttpResponse get(const std::string& target) const {
    RawConn c(port);
    HttpResponse r;
    c.send_all(http_get(target));
    c.read_response(r, 10000);
    return r;
  }
};

}  // namespace strata::retrieval::testing
