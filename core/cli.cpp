#include "core/cli.h"

#include <cstdio>
#include <exception>

#include "core/error.h"
#include "core/log.h"

namespace strata::cli {

void add_common(CLI::App& app, CommonOptions& opts) {
  app.add_option("--log-level", opts.log_level, "debug, info, warn, error or off")
      ->envname("STRATA_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-file", opts.log_file, "also append log lines to this file")
      ->envname("STRATA_LOG_FILE");
}

void add_config(CLI::App& app, ConfigOptions& opts) {
  app.add_option("-c,--config", opts.config_file, "JSON config file (built-in defaults if omitted)")
      ->check(CLI::ExistingFile);
  app.add_option("--set", opts.sets, "override a config key, e.g. --set rollout.temperature=0.7 (repeatable)")
      ->expected(1)
      ->take_all();
  app.add_flag("--print-config", opts.print_config, "print the resolved config as JSON and exit");
}

void apply_common(const CommonOptions& opts) {
  log::set_level(log::parse_level(opts.log_level));
  if (!opts.log_file.empty()) log::add_file_sink(opts.log_file);
}

int run_main(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help / --version exit 0; every other parse failure is bad usage: exit code 2.
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  try {
    return body();
  } catch (const UnreachableError& e) {
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), e.what());
    return kExitUnreachable;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: failed: %s\n", app.get_name().c_str(), e.what());
    return kExitFailure;
  }
}

}  // namespace strata::cli
