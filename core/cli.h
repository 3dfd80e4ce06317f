// Shared command-line plumbing for strata's programs (CLI11 underneath).
//
// Every program gets --log-level and --log-file (also from STRATA_LOG_LEVEL / STRATA_LOG_FILE);
// programs driven by a config file add --config FILE and repeatable --set KEY=VALUE.
// run_main() is the one place where exceptions become exit codes:
//   0 success, 1 runtime failure, 2 bad usage / bad config / bad input (strata::Error),
//   3 a service the program needs does not answer: the retrieval daemon (strata::UnreachableError).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace strata::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
// The "Exit codes" paragraph of a program's --help epilog (programs that talk to the daemon).
constexpr const char* kExitCodesHelp =
    "Exit codes: 0 success, 2 bad usage, config or input (the message names the key or file), 3 the\n"
    "retrieval daemon does not answer (start it, or fix the retriever URL), 1 other failures.";

struct CommonOptions {
  std::string log_level = "info";  // debug, info, warn, error, off
  std::string log_file;            // also append logs to this file when set
};

struct ConfigOptions {
  std::string config_file;         // JSON config; empty = built-in defaults
  std::vector<std::string> sets;   // KEY=VALUE overrides applied after the file
  bool print_config = false;       // print the resolved config and exit
};

void add_common(CLI::App& app, CommonOptions& opts);
void add_config(CLI::App& app, ConfigOptions& opts);
// Applies log level and file. Call right after parsing.
void apply_common(const CommonOptions& opts);

// Parses argv and runs `body`, turning errors into messages and exit codes.
int run_main(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

}  // namespace strata::cli
