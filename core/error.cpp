#include "core/error.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace strata::detail {

namespace {
// Paths are reported relative to the repository (strip the source root the build was configured
// with, else everything up to the first known top folder) so that messages do not depend on where
// the tree was built.
const char* short_path(const char* file) {
#ifdef STRATA_SOURCE_ROOT
  const std::size_t root_len = std::strlen(STRATA_SOURCE_ROOT);
  if (std::strncmp(file, STRATA_SOURCE_ROOT, root_len) == 0) return file + root_len;
#endif
  static const char* const kRoots[] = {"/core/", "/data/",  "/retrieval/", "/agent/", "/env/",
                                       "/eval/", "/rl/",    "/src/",       "/bench/", "/tests/"};
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
