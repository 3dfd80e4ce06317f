// Shared bits of strata's libFuzzer targets (tests/fuzz, built with STRATA_FUZZ=ON).
//
// A target returns 0 for every input whose outcome is a clean, documented one (success, a
// `false` with a reason, or a strata::Error). Anything else is a finding for libFuzzer: a crash,
// an AddressSanitizer/UndefinedBehaviorSanitizer report, an uncaught exception (which aborts),
// or a broken invariant, which the target turns into a trap with FUZZ_CHECK.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "core/log.h"

// Traps (a crash libFuzzer records with its input) when `cond` is false, after printing why.
#define FUZZ_CHECK(cond, what)                                                        \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s (%s)\n", __FILE__,     \
                   __LINE__, what, #cond);                                            \
      __builtin_trap();                                                               \
    }                                                                                 \
  } while (0)

namespace strata::fuzz {

// Quietens strata's logging (warnings per input would swamp the fuzzer's output).
inline void quiet_logs() { ::strata::log::set_level(::strata::log::Level::kOff); }

// A per-process scratch path under /tmp ("/tmp/strata-fuzz-<tag>-<pid>"), for the targets whose
// API reads files. Several fuzzer processes (-jobs, -fork) never share one.
inline std::string scratch_path(const char* tag) {
  return std::string("/tmp/strata-fuzz-") + tag + "-" + std::to_string(::getpid());
}

}  // namespace strata::fuzz
