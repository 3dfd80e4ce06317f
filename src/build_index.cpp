// build_index: indexes a JSONL passage corpus for BM25 or dense search (retrieval_server
// --index DIR).
//
//   build_index --corpus wiki18.jsonl --out /data/wiki18_bm25
//   build_index --corpus corpus.jsonl --out idx --k1 1.2 --b 0.75 --threads 8
//   build_index --dense --encoder models/all-minilm-l6-v2 --corpus corpus.jsonl --out idx_dense
//   build_index --dense --encoder models/e5-base-v2 --e5 --faiss HNSW32 --corpus c.jsonl --out d
//   build_index --adopt-faiss e5_Flat.index --corpus wiki18.jsonl --out wiki18_e5 --encoder-name e5
//
// The corpus is streamed (never held in memory); a malformed line stops the build with exit
// code 2 and names file:line. A dense build killed half-way resumes when run again.
#include <cstdio>
#include <string>

#include "core/cli.h"
#include "core/log.h"
#include "retrieval/bm25_builder.h"
#include "retrieval/dense/dense_builder.h"
#include "retrieval/dense/dense_index.h"
#include "src/text_embedder.h"

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
  app.add_option("--impact-share", opts.impact_share,
                 "terms in at least this share of the passages get a one-byte-per-passage "
                 "impact array for the search's bound scan (0 = none)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  bool dense = false;
  strata::programs::EncoderCli enc;
  strata::retrieval::dense::DenseBuildOptions dense_opts;
  std::string metric = "inner_product", adopt_faiss, encoder_name;
  app.add_flag("--dense", dense, "build a dense (vector) index with --encoder instead of BM25");
  strata::programs::add_encoder_options(app, enc, /*required=*/false);
  app.add_option("--faiss", dense_opts.factory,
                 "faiss index_factory string: Flat (exact, memory-mapped), HNSW32, "
                 "IVF1024,PQ64, ...")
      ->capture_default_str();
  app.add_option("--metric", metric, "inner_product or l2")->capture_default_str();
  app.add_option("--shard-docs", dense_opts.shard_docs,
                 "vectors per resumable shard (a multiple of --encoder-batch)")
      ->capture_default_str();
  app.add_option("--train-docs", dense_opts.train_docs,
                 "vectors an IVF/PQ index is trained on, at most")
      ->capture_default_str();
  app.add_option("--adopt-faiss", adopt_faiss,
                 "make an index folder from this FlashRAG/Search-R1 faiss file and --corpus (row "
                 "i = line i), without encoding")
      ->check(CLI::ExistingFile);
  app.add_option("--encoder-name", encoder_name,
                 "with --adopt-faiss: the encoder that made the vectors, for the manifest");
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    namespace dn = strata::retrieval::dense;
    if (!adopt_faiss.empty()) {
      const auto s = dn::adopt_faiss_index(adopt_faiss, corpus, out_dir, encoder_name);
      std::printf("index %s: adopted %s with %llu passages (%s) in %.1fs\n", out_dir.c_str(),
                  adopt_faiss.c_str(), static_cast<unsigned long long>(s.num_docs),
                  human_bytes(s.index_bytes).c_str(), s.seconds);
      return 0;
    }
    if (dense) {
      STRATA_CHECK(!enc.encoder.empty(), "--dense needs --encoder DIR (or hash:DIM)");
      dense_opts.metric = dn::parse_metric(metric);
      dense_opts.batch_size = enc.batch_size;
      dn::validate(dense_opts);
      auto embedder = strata::programs::open_embedder(enc);
      STRATA_LOG_INFO("encoder: {}", embedder->describe());
      const auto s = dn::build_dense_index(corpus, out_dir, *embedder, dense_opts);
      const double rate = s.seconds > 0 ? static_cast<double>(s.encoded) / s.seconds : 0.0;
      STRATA_LOG_INFO("encoded {} passages ({} resumed) in {:.1f}s ({:.0f} passages/s, {:.1f}s "
                      "in the encoder)",
                      s.encoded, s.resumed_docs, s.seconds, rate, s.encode_seconds);
      std::printf("index %s: %s dense (%s), %llu passages, %s; %.1f passages/s\n",
                  out_dir.c_str(), dense_opts.factory.c_str(), metric.c_str(),
                  static_cast<unsigned long long>(s.num_docs), human_bytes(s.index_bytes).c_str(),
                  rate);
      return 0;
    }
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
