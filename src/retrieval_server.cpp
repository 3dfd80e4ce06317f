// retrieval_server: the Search-R1-compatible retrieval daemon (POST /retrieve, GET /health,
// GET /metrics) over a BM25 index, a dense index (with its encoder; queries of concurrent
// requests share one encoder call), a FlashRAG/Search-R1 faiss file with its corpus, or both
// kinds fused (--hybrid), on loopback by default. SIGTERM / SIGINT stop accepting, let
// in-flight requests finish and exit 0.
//
//   retrieval_server --index wiki18_bm25
//   retrieval_server --index wiki18_minilm --encoder models/all-minilm-l6-v2
//   retrieval_server --faiss e5_Flat.index --corpus wiki18.jsonl --encoder models/e5-base-v2 --e5
//   retrieval_server --hybrid wiki18_bm25,wiki18_minilm --encoder models/all-minilm-l6-v2
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
#include <nlohmann/json.hpp>

#include "retrieval/bm25_index.h"
#include "retrieval/dense/dense_index.h"
#include "retrieval/dense/dense_searcher.h"
#include "retrieval/hybrid_searcher.h"
#include "retrieval/scan_searcher.h"
#include "retrieval/server.h"
#include "src/text_embedder.h"

namespace {

namespace rt = strata::retrieval;
namespace dn = strata::retrieval::dense;

// The "format" of an index folder's manifest ("strata-bm25" or "strata-dense").
std::string index_format(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  std::ifstream in(path);
  STRATA_CHECK(in.good(), "index manifest " << path
                                            << " is missing (not an index, or its build did not "
                                               "finish)");
  nlohmann::json m;
  try {
    in >> m;
  } catch (const nlohmann::json::exception& e) {
    STRATA_FAIL("index manifest " << path << " is not valid JSON: " << e.what());
  }
  STRATA_CHECK(m.contains("format") && m["format"].is_string(),
               "index manifest " << path << " lacks \"format\"");
  return m["format"].get<std::string>();
}

// Everything the daemon searches, owned in one place (the searchers refer to each other).
struct Backend {
  std::unique_ptr<rt::Searcher> bm25;
  std::unique_ptr<dn::DenseIndex> dense_index;
  std::unique_ptr<rt::Embedder> embedder;
  std::unique_ptr<rt::Searcher> dense;
  std::unique_ptr<rt::Searcher> hybrid;
  const rt::Searcher* top = nullptr;
};

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
  std::string faiss_file, faiss_corpus, hybrid, faiss_params;
  strata::programs::EncoderCli enc;
  dn::BatchOptions batch;
  rt::HybridOptions fusion;
  auto* faiss_opt = app.add_option("--faiss", faiss_file,
                                   "serve this FlashRAG/Search-R1 faiss file as it is (with "
                                   "--corpus, row i = line i; needs --encoder)")
                        ->check(CLI::ExistingFile);
  app.add_option("--corpus", faiss_corpus, "the corpus JSONL of --faiss (read into memory)")
      ->check(CLI::ExistingFile);
  auto* hybrid_opt = app.add_option("--hybrid", hybrid,
                                    "BM25_DIR,DENSE_DIR: fuse a BM25 and a dense index of the "
                                    "same corpus by reciprocal-rank fusion (needs --encoder)");
  index_opt->excludes(faiss_opt)->excludes(hybrid_opt);
  faiss_opt->excludes(hybrid_opt)->excludes(scan_opt);
  hybrid_opt->excludes(scan_opt);
  strata::programs::add_encoder_options(app, enc, /*required=*/false);
  app.add_option("--encoder-max-batch", batch.max_batch,
                 "queries of concurrent requests encoded in one call, at most")
      ->capture_default_str();
  app.add_option("--encoder-max-wait-us", batch.max_wait_us,
                 "how long a query waits for others to share its encoder call")
      ->capture_default_str();
  app.add_option("--encoder-max-queue", batch.max_queue,
                 "queries waiting for the encoder before new requests get 503")
      ->capture_default_str();
  app.add_option("--faiss-params", faiss_params,
                 "faiss search parameters of a non-flat index, e.g. nprobe=32 or efSearch=128");
  app.add_option("--rrf-k", fusion.rrf_k, "--hybrid: the rank offset k of 1/(k + rank)")
      ->capture_default_str();
  app.add_option("--dense-weight", fusion.dense_weight,
                 "--hybrid: weight of the dense ranking (BM25 gets 1 - it)")
      ->capture_default_str();
  app.add_option("--fusion-depth", fusion.depth, "--hybrid: hits taken from each side")
      ->capture_default_str();
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
    STRATA_CHECK(!index_dir.empty() || !scan_corpus.empty() || !faiss_file.empty() ||
                     !hybrid.empty(),
                 "give --index DIR, --faiss FILE --corpus FILE.jsonl, --hybrid BM25_DIR,DENSE_DIR "
                 "(or --scan-corpus FILE.jsonl for the brute-force fallback)");
    STRATA_CHECK(faiss_file.empty() == faiss_corpus.empty(),
                 "--faiss and --corpus go together (the index and the passages of its rows)");
    dn::validate(batch);
    rt::validate(fusion);
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

    // Everything cheap is checked before the encoder's weights are read: the indexes open (mapped),
    // the dimensions agree.
    Backend b;
    std::string dense_dir, bm25_dir = index_dir;
    if (!hybrid.empty()) {
      const auto comma = hybrid.find(',');
      STRATA_CHECK(comma != std::string::npos && comma > 0 && comma + 1 < hybrid.size(),
                   "--hybrid takes BM25_DIR,DENSE_DIR, got '" << hybrid << "'");
      bm25_dir = hybrid.substr(0, comma);
      dense_dir = hybrid.substr(comma + 1);
      STRATA_CHECK(index_format(bm25_dir) == "strata-bm25",
                   "--hybrid: " << bm25_dir << " is not a BM25 index");
      STRATA_CHECK(index_format(dense_dir) == "strata-dense",
                   "--hybrid: " << dense_dir << " is not a dense index");
    } else if (!index_dir.empty() && index_format(index_dir) == "strata-dense") {
      dense_dir = index_dir;
      bm25_dir.clear();
    }
    const auto how = verify ? dn::DenseIndex::Verify::kFull : dn::DenseIndex::Verify::kFast;
    if (!dense_dir.empty()) b.dense_index = dn::DenseIndex::open(dense_dir, how);
    if (!faiss_file.empty()) b.dense_index = dn::DenseIndex::open_faiss(faiss_file, faiss_corpus);
    if (b.dense_index) {
      b.dense_index->set_search_parameters(faiss_params);
      STRATA_CHECK(!enc.encoder.empty(), "the dense index " << b.dense_index->describe()
                                                            << " needs --encoder (the model that "
                                                               "made its vectors)");
      const int d = strata::programs::peek_encoder_dim(enc);
      STRATA_CHECK(d == b.dense_index->dim(),
                   "--encoder " << enc.encoder << " makes vectors of " << d
                                << " floats but the index " << b.dense_index->describe()
                                << " holds " << b.dense_index->dim()
                                << "; use the encoder the index was built with");
    }
    if (!scan_corpus.empty()) {
      STRATA_LOG_WARN("--scan-corpus: brute-force word-overlap search over {} (a fallback for "
                      "tests, not BM25)",
                      scan_corpus);
      b.bm25 = std::make_unique<rt::ScanSearcher>(rt::ScanSearcher::from_jsonl(scan_corpus));
    } else if (!bm25_dir.empty()) {
      b.bm25 = std::make_unique<rt::Bm25Index>(
          bm25_dir, verify ? rt::Bm25Index::Verify::kFull : rt::Bm25Index::Verify::kFast);
    }
    if (b.dense_index) {
      b.embedder = strata::programs::open_embedder(enc);
      b.dense = std::make_unique<dn::DenseSearcher>(*b.dense_index, *b.embedder, batch);
      STRATA_LOG_INFO("dense index {}; encoder {}", b.dense_index->describe(),
                      b.embedder->describe());
      // Search threads wait on the encoder's batcher: give it enough callers to fill a batch.
      if (o.search_threads == 0)
        o.search_threads = static_cast<int>(
            std::max<unsigned>(std::thread::hardware_concurrency(), 2u * batch.max_batch));
    }
    if (b.bm25 && b.dense) {
      b.hybrid = std::make_unique<rt::HybridSearcher>(*b.bm25, *b.dense, fusion);
      b.top = b.hybrid.get();
    } else {
      b.top = b.dense ? b.dense.get() : b.bm25.get();
    }
    const rt::Searcher* searcher = b.top;
    STRATA_LOG_INFO("loaded {} with {} documents",
                    !hybrid.empty() ? hybrid
                    : !faiss_file.empty() ? faiss_file
                    : scan_corpus.empty() ? index_dir : scan_corpus,
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
