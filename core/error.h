// Two error levels, as in faiss and c10:
//   STRATA_CHECK(cond, msg)   - bad input or config from the user: throws strata::Error whose
//                               message carries the text, the failed condition and file:line.
//   STRATA_ASSERT(cond, msg)  - a bug in strata itself: prints the same and aborts.
// `msg` is a stream expression: STRATA_CHECK(k > 0, "topk must be positive, got " << k).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace strata {

// The one exception type strata throws for user-facing errors. what() is a complete sentence
// fit for a person: "<message> [check `<cond>` failed at <file>:<line>]".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A service the program needs does not answer or does not work (the retrieval daemon). Programs
// exit with cli::kExitUnreachable (3) on it, so that scripts can tell "start the daemon" from a
// bad config.
class UnreachableError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void throw_error(const std::string& msg, const char* cond, const char* file, int line);
[[noreturn]] void abort_bug(const std::string& msg, const char* cond, const char* file, int line);
}  // namespace detail

}  // namespace strata

#define STRATA_CHECK(cond, msg)                                                 \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::ostringstream strata_msg_;                                           \
      strata_msg_ << msg;                                                       \
      ::strata::detail::throw_error(strata_msg_.str(), #cond, __FILE__, __LINE__); \
    }                                                                           \
  } while (0)

// Unconditional user error (the condition is reported as "fail").
#define STRATA_FAIL(msg) STRATA_CHECK(false, msg)

#define STRATA_ASSERT(cond, msg)                                              \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::ostringstream strata_msg_;                                         \
      strata_msg_ << msg;                                                     \
      ::strata::detail::abort_bug(strata_msg_.str(), #cond, __FILE__, __LINE__); \
    }                                                                         \
  } while (0)
