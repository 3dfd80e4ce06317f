// libFuzzer target: the BM25 index manifest. At start-up a tiny valid index is built with
// IndexBuilder (tiny_index.h) in a per-process temp folder; each input is written as manifest.json into a second
// folder whose other files are links to that index's, and Bm25Index opens it (fast and full
// verification). Every outcome must be an open index that answers queries, or a strata::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "retrieval/bm25_index.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/tiny_index.h"

namespace fs = std::filesystem;
using namespace strata::retrieval;

namespace {

std::string g_root;  // /tmp/strata-fuzz-manifest-<pid>
std::string g_work;  // the index opened per input: links to base/ plus the input as manifest.json

void cleanup() {
  std::error_code ec;
  if (!g_root.empty()) fs::remove_all(g_root, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  strata::fuzz::quiet_logs();
  g_root = strata::fuzz::scratch_path("manifest");
  const std::string base = g_root + "/base";
  g_work = g_root + "/work";
  fs::remove_all(g_root);
  strata::fuzz::build_tiny_index(base);
  fs::create_directories(g_work);
  for (const auto& entry : fs::directory_iterator(base)) {
    if (entry.path().filename() == "manifest.json") continue;
    fs::create_symlink(entry.path(), g_work + "/" + entry.path().filename().string());
  }
  std::atexit(cleanup);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream out(g_work + "/manifest.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    FUZZ_CHECK(out.good(), "writing the manifest");
  }
  for (Bm25Index::Verify verify : {Bm25Index::Verify::kFast, Bm25Index::Verify::kFull}) {
    try {
      Bm25Index index(g_work, verify);
      const uint32_t n = index.num_docs();
      for (const char* q : {"Alpha Kreimex", "setofa mayor", "gamma", "zzz"}) {
        for (const Hit& h : index.search(q, 3)) {
          FUZZ_CHECK(h.doc < n, "hits name documents of the index");
          (void)index.document(h.doc);
        }
        (void)index.search_exhaustive(q, 2);
      }
      for (uint32_t d = 0; d < n && d < 8; ++d) {
        (void)index.document(d);
        (void)index.doc_length(d);
      }
    } catch (const strata::Error&) {
      // a clean refusal (or a clean query-time error) is the contract
    }
  }
  return 0;
}
