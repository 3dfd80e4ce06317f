#include "core/error.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace strata::detail {

namespace {
// Paths are reported relative to the repository (strip everything up to the first known top
// folder) so that messages do not depend on where the tree was built.
const char* short_path(const char* file) {
  static const char* const kRoots[] = {"/src/", "/agent/", "/env/", "/rl/", "/retrieval/",
                                       "/tests/"};
  const char* best = file;
  for (const char* root : kRoots) {
    if (const char* p = std::strstr(file, root)) {
      if (best == file || p < best) best = p;
    }
  }
  return best == file ? file : best + 1;
}
}  // namespace

void throw_error(const std::string& msg, const char* cond, const char* file, int line) {
  std::ostringstream out;
  out << msg;
  if (std::strcmp(cond, "false") == 0) {
    out << " [at " << short_path(file) << ":" << line << "]";
  } else {
    out << " [check `" << cond << "` failed at " << short_path(file) << ":" << line << "]";
  }
  throw Error(out.str());
}

void abort_bug(const std::string& msg, const char* cond, const char* file, int line) {
  std::fprintf(stderr, "strata internal error: %s [assert `%s` failed at %s:%d]\n", msg.c_str(),
               cond, short_path(file), line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace strata::detail
