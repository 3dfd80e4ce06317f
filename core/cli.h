// Shared command-line plumbing for strata's programs (CLI11 underneath).
//
// Every program gets --log-level and --log-file (also from STRATA_LOG_LEVEL / STRATA_LOG_FILE);
// programs driven by a config file add --config FILE and repeatable --set KEY=VALUE.
// run_main() is the one place where exceptions become exit codes:
//   0 success, 1 runtime failure, 2 bad usage / bad config / bad input.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace strata::cli {

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
