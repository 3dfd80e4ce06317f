// build_index: indexes a JSONL passage corpus for BM25 search (retrieval_server --index DIR).
//
//   build_index --corpus wiki18.jsonl --out /data/wiki18_bm25
//   build_index --corpus corpus.jsonl --out idx --k1 1.2 --b 0.75 --threads 8
//
// The corpus is streamed (never held in memory); a malformed line stops the build with exit
// code 2 and names file:line.
#include <cstdio>
#include <string>

#include "core/cli.h"
#include "core/log.h"
#include "retrieval/bm25_builder.h"

namespace {

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Build a BM25 index (Lucene-style English analysis, Lucene BM25 scoring) from a JSONL "
      "corpus of {\"id\",\"contents\"} or {\"id\",\"title\",\"text\"} records.",
      "build_index"};
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  strata::retrieval::BuildOptions opts;
  std::string corpus, out_dir;
  bool no_stop_words = false;
  app.add_option("-c,--corpus", corpus, "JSONL corpus file")->required();
  app.add_option("-o,--out", out_dir, "index directory (created if missing, replaced if present)")
      ->required();
  app.add_option("--k1", opts.k1, "BM25 k1, stored in the index")->capture_default_str();
  app.add_option("--b", opts.b, "BM25 b, stored in the index")->capture_default_str();
  app.add_option("--threads", opts.threads, "analysis threads (0 = all cores)")
      ->capture_default_str();
  app.add_option("--stemmer", opts.analyzer.stemmer,
                 "porter (as Lucene/Pyserini), english (Snowball Porter2, as bm25s) or none")
      ->capture_default_str();
  app.add_flag("--no-stop-words", no_stop_words, "keep Lucene's English stop words");
  app.add_option("--run-postings", opts.run_postings,
                 "postings buffered in memory before a sorted run is spilled to disk")
      ->capture_default_str();
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    opts.analyzer.stop_words = !no_stop_words;
    const auto s = strata::retrieval::build_index(corpus, out_dir, opts);
    STRATA_LOG_INFO(
        "indexed {} passages in {:.1f}s ({:.0f} passages/s): {} terms, {} postings, {} runs",
        s.num_docs, s.seconds, s.seconds > 0 ? s.num_docs / s.seconds : 0.0, s.num_terms,
        s.num_postings, s.runs);
    std::printf("index %s: %s (%llu bytes; documents %s, postings and dictionary %s)\n",
                out_dir.c_str(), human_bytes(s.index_bytes).c_str(),
                static_cast<unsigned long long>(s.index_bytes),
                human_bytes(s.doc_store_bytes).c_str(),
                human_bytes(s.index_bytes - s.doc_store_bytes).c_str());
    return 0;
  });
}
