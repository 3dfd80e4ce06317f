// retrieval_server: the Search-R1-compatible retrieval daemon (POST /retrieve, GET /health,
// GET /metrics) over a BM25 index, on loopback by default. SIGTERM / SIGINT stop accepting, let
// in-flight requests finish and exit 0.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "core/cli.h"
#include "core/error.h"
#include "core/log.h"
#include "retrieval/bm25_index.h"
#include "retrieval/scan_searcher.h"
#include "retrieval/server.h"

namespace {

std::unique_ptr<strata::retrieval::Searcher> open_searcher(const std::string& index_dir,
                                                           const std::string& scan_corpus,
                                                           bool verify) {
  using namespace strata::retrieval;
  if (!scan_corpus.empty()) {
    STRATA_LOG_WARN("--scan-corpus: brute-force word-overlap search over {} (a fallback for "
                    "tests, not BM25)",
                    scan_corpus);
    return std::make_unique<ScanSearcher>(ScanSearcher::from_jsonl(scan_corpus));
  }
  return std::make_unique<Bm25Index>(index_dir,
                                     verify ? Bm25Index::Verify::kFull : Bm25Index::Verify::kFast);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Serve Search-R1's POST /retrieve API (plus /health and /metrics) over a BM25 "
               "index."};
  app.name("retrieval_server");
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  strata::retrieval::ServerOptions o;
  std::string index_dir;
  std::string scan_corpus;
  std::string port_file;
  bool verify = false;
  size_t max_query_bytes = o.limits.max_query_bytes;
  size_t max_body_bytes = o.max_body_bytes;
  auto* index_opt = app.add_option("--index", index_dir, "BM25 index directory (from build_index)")
                        ->envname("STRATA_RETRIEVAL_INDEX");
  auto* scan_opt =
      app.add_option("--scan-corpus", scan_corpus,
                     "FALLBACK/TESTING: no index; brute-force word-overlap search over this "
                     "corpus JSONL held in memory")
          ->check(CLI::ExistingFile);
  index_opt->excludes(scan_opt);
  app.add_flag("--verify", verify,
               "check the checksum of every index file at start-up (reads the whole index once; "
               "without it, file sizes and the small files' checksums are checked)");
  app.add_option("--host", o.host, "address to listen on (keep loopback unless you mean it)")
      ->envname("STRATA_RETRIEVAL_HOST")
      ->capture_default_str();
  app.add_option("--port", o.port, "TCP port; 0 picks a free one (see --port-file)")
      ->envname("STRATA_RETRIEVAL_PORT")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port to this file once listening");
  app.add_option("--threads", o.io_threads, "I/O threads (accept, read, write)")
      ->capture_default_str();
  app.add_option("--search-threads", o.search_threads, "search worker threads; 0 = all cores")
      ->capture_default_str();
  app.add_option("--batch-threads", o.batch_threads,
                 "threads one multi-query request may use (0 = all cores)")
      ->capture_default_str();
  app.add_option("--topk", o.limits.default_topk, "topk when a request gives none")
      ->capture_default_str();
  app.add_option("--max-topk", o.limits.max_topk, "largest topk accepted")->capture_default_str();
  app.add_option("--max-queries", o.limits.max_queries, "most queries per request")
      ->capture_default_str();
  app.add_option("--max-query-bytes", max_query_bytes, "longest query, in bytes")
      ->capture_default_str();
  app.add_option("--max-body-bytes", max_body_bytes, "largest request body (larger: 413)")
      ->capture_default_str();
  app.add_option("--max-pending", o.max_pending_requests,
                 "requests waiting or searching before new ones get 503")
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections,
                 "open connections before a new one is answered 503 and closed")
      ->capture_default_str();
  app.add_option("--retry-after", o.retry_after_s, "the Retry-After (seconds) of a 503")
      ->capture_default_str();
  app.add_option("--read-timeout-ms", o.read_timeout_ms,
                 "deadline to receive a whole request; also the idle keep-alive limit")
      ->capture_default_str();
  app.add_option("--write-timeout-ms", o.write_timeout_ms, "deadline to write a response")
      ->capture_default_str();
  app.add_option("--drain-timeout-ms", o.drain_timeout_ms,
                 "on SIGTERM, how long in-flight requests may take to finish")
      ->capture_default_str();
  app.add_option("--delay-ms", o.delay_ms,
                 "TESTING AID: add this much latency to every /retrieve request (an asio timer; "
                 "no thread blocks), to mimic a slow search engine")
      ->capture_default_str();

  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    STRATA_CHECK(!index_dir.empty() || !scan_corpus.empty(),
                 "give --index DIR (or --scan-corpus FILE.jsonl for the brute-force fallback)");
    o.limits.max_query_bytes = max_query_bytes;
    o.max_body_bytes = max_body_bytes;
    strata::retrieval::validate(o);

    // Signals are turned into a clean stop on this thread; the server runs on its own threads.
    // Installed before loading, so that SIGTERM during a long load also exits 0.
    boost::asio::io_context signals_ioc;
    boost::asio::signal_set signals(signals_ioc, SIGINT, SIGTERM);
    int caught = 0;
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (!ec) caught = sig;
    });

    auto searcher = open_searcher(index_dir, scan_corpus, verify);
    STRATA_LOG_INFO("loaded {} with {} documents", scan_corpus.empty() ? index_dir : scan_corpus,
                    searcher->num_docs());
    signals_ioc.poll();
    if (caught != 0) {
      STRATA_LOG_INFO("caught signal {} while loading; exiting", caught);
      return 0;
    }

    strata::retrieval::RetrievalServer server(*searcher, o);
    server.start();
    if (!port_file.empty()) {
      const std::string tmp = port_file + ".tmp";
      {
        std::ofstream out(tmp, std::ios::trunc);
        STRATA_CHECK(out.good(), "cannot write --port-file " << port_file);
        out << server.port() << "\n";
      }
      STRATA_CHECK(std::rename(tmp.c_str(), port_file.c_str()) == 0,
                   "cannot write --port-file " << port_file);
    }
    signals_ioc.run();
    STRATA_LOG_INFO("caught signal {}; finishing in-flight requests", caught);
    server.stop();
    return 0;
  });
}
