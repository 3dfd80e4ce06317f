// Logging facade. spdlog stays private to core/log.cpp; callers format with fmt syntax:
//   STRATA_LOG_INFO("indexed {} passages in {:.1f}s", n, secs);
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace strata::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Parses "debug", "info", "warn", "error", "off"; throws strata::Error naming the bad value.
Level parse_level(std::string_view name);
void set_level(Level level);
Level level();
// Additionally writes every message to `path` (appending). Throws if the file cannot be opened.
void add_file_sink(const std::string& path);
void write(Level level, std::string_view message);

inline bool enabled(Level l) { return static_cast<int>(l) >= static_cast<int>(level()); }

}  // namespace strata::log

#define STRATA_LOG_AT(lvl, ...)                                      \
  do {                                                               \
    if (::strata::log::enabled(lvl))                                 \
      ::strata::log::write(lvl, ::fmt::format(__VA_ARGS__));         \
  } while (0)
#define STRATA_LOG_DEBUG(...) STRATA_LOG_AT(::strata::log::Level::kDebug, __VA_ARGS__)
#define STRATA_LOG_INFO(...) STRATA_LOG_AT(::strata::log::Level::kInfo, __VA_ARGS__)
#define STRATA_LOG_WARN(...) STRATA_LOG_AT(::strata::log::Level::kWarn, __VA_ARGS__)
#define STRATA_LOG_ERROR(...) STRATA_LOG_AT(::strata::log::Level::kError, __VA_ARGS__)
