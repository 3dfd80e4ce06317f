// The retrieval daemon: Search-R1's HTTP API over any Searcher, on Boost.Beast / Asio.
//
//   POST /retrieve  {"queries": [...], "topk": k, "return_scores": b}  -> {"result": [...]}
//   GET  /health    {"status": "ok", "documents": N}
//   GET  /metrics   Prometheus text
//
// Threads: `io_threads` run one io_context (accept, read, parse, write; every connection on its own
// strand); searches run on a separate pool of `search_threads`, so a slow search never holds an
// I/O thread and other connections keep being served. HTTP/1.1 keep-alive; one request at a time
// per connection (pipelined requests are answered in order).
//
// Bad input never takes the process down: each request gets a JSON {"error": "..."} with a 4xx
// status, exceptions from the searcher become 500, a request not received whole within
// `read_timeout_ms` gets 408 (an idle keep-alive connection is closed quietly), and load beyond
// `max_pending_requests` queued searches or `max_connections` open connections gets 503 with a
// Retry-After header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "retrieval/protocol.h"
#include "retrieval/searcher.h"
#include "retrieval/server_metrics.h"

namespace strata::retrieval {

struct ServerOptions {
  std::string host = "127.0.0.1";   // address to bind; loopback unless told otherwise
  int port = 8000;                  // TCP port; 0 picks a free one (read it back with port())
  int io_threads = 2;               // threads running the io_context (accept, read, write)
  int search_threads = 0;           // search worker pool; 0 = hardware concurrency
  int batch_threads = 1;            // threads search_batch may use for one multi-query request
  RequestLimits limits;             // topk default and bound, queries per request, query length
  size_t max_body_bytes = 1 << 20;  // request bodies above this get 413
  size_t max_header_bytes = 16 << 10;  // request headers above this get 431
  int max_pending_requests = 4096;  // /retrieve requests queued or searching; beyond: 503
  int max_connections = 1024;       // open connections; a new one beyond gets 503 and is closed
  int retry_after_s = 1;            // the Retry-After of every 503
  int read_timeout_ms = 30000;      // deadline to receive a whole request (headers and body),
                                    // counted from when the server starts waiting for it; also
                                    // the idle keep-alive limit
  int write_timeout_ms = 30000;     // deadline to write one response
  int drain_timeout_ms = 10000;     // on stop(): how long in-flight requests may take to finish
  int delay_ms = 0;                 // TESTING AID: extra latency per /retrieve request, waited on
                                    // an asio timer (no thread is blocked); stands in for a slow
                                    // search engine
};

// Checks the options; throws strata::Error naming the bad field and value.
void validate(const ServerOptions& opts);

class RetrievalServer {
 public:
  // `searcher` must outlive the server. Nothing runs until start().
  RetrievalServer(const Searcher& searcher, ServerOptions opts);
  ~RetrievalServer();  // stop()s if still running
  RetrievalServer(const RetrievalServer&) = delete;
  RetrievalServer& operator=(const RetrievalServer&) = delete;

  // Binds, listens and starts the threads; returns once the port is open. Throws strata::Error
  // when the address cannot be bound.
  void start();
  // The bound port (useful with port 0). Valid after start().
  uint16_t port() const;
  // Stops accepting, lets in-flight requests finish (up to drain_timeout_ms), closes idle
  // connections and joins every thread. Idempotent; safe from any thread but the server's own.
  void stop();
  // Blocks until stop() has completed (from another thread or a signal handler thread).
  void wait();
  bool running() const;

  const ServerMetrics& metrics() const;
  const ServerOptions& options() const;

  struct Impl;  // opaque; public only so that connection code in server.cpp can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::retrieval
