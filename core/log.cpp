#include "core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace strata::log {

namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
    case Level::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

// One logger for the process, writing to stderr (stdout is kept for program output such as
// JSON or tables). Created on first use; STRATA_LOG_LEVEL sets the initial level.
spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("strata", sink);
    l->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
    l->set_level(spdlog::level::trace);  // filtering happens in enabled()
    l->flush_on(spdlog::level::warn);
    if (const char* env = std::getenv("STRATA_LOG_LEVEL")) {
      try {
        g_level = static_cast<int>(parse_level(env));
      } catch (const Error&) {
        // An unknown level in the environment must not stop a program; keep the default.
      }
    }
    return l;
  }();
  return *instance;
}

}  // namespace

Level parse_level(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  STRATA_FAIL("log level: expected one of debug, info, warn, error, off; got \"" << name << "\"");
}

void set_level(Level l) {
  logger();
  g_level = static_cast<int>(l);
}

Level level() {
  logger();
  return static_cast<Level>(g_level.load());
}

void add_file_sink(const std::string& path) {
  std::shared_ptr<spdlog::sinks::basic_file_sink_mt> sink;
  try {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  } catch (const spdlog::spdlog_ex& e) {
    STRATA_FAIL("cannot open log file " << path << ": " << e.what());
  }
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  logger().sinks().push_back(sink);
}

void write(Level l, std::string_view message) { logger().log(to_spd(l), message); }

}  // namespace strata::log
