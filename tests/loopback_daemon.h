// For tests that need real retrieval: a corpus indexed with BM25 (or an index built before) and
// served by the retrieval daemon on a free loopback port (one I/O and one search thread).
// Stopped on destruction.
#pragma once

#include <memory>
#include <string>

#include "retrieval/bm25_builder.h"
#include "retrieval/bm25_index.h"
#include "retrieval/server.h"

namespace strata::testing {

class LoopbackDaemon {
 public:
  // Indexes `corpus` (Search-R1 JSONL) into `index_dir`, then serves it.
  LoopbackDaemon(const std::string& corpus, const std::string& index_dir) {
    build_index(corpus, index_dir);
    index_ = std::make_unique<retrieval::Bm25Index>(index_dir);
    start();
  }
  // Serves an index built before (e.g. by a shared fixture); opens it read-only.
  explicit LoopbackDaemon(const std::string& index_dir)
      : index_(std::make_unique<retrieval::Bm25Index>(index_dir)) {
    start();
  }
  ~LoopbackDaemon() { stop(); }
  LoopbackDaemon(const LoopbackDaemon&) = delete;
  LoopbackDaemon& operator=(const LoopbackDaemon&) = delete;

  // (Re)starts the daemon; port 0 picks a free one, the same port serves a restart.
  void start(int port = 0, int delay_ms = 0) {
    stop();
    retrieval::ServerOptions so;
    so.port = port;
    so.io_threads = 1;
    so.search_threads = 1;
    so.delay_ms = delay_ms;
    server_ = std::make_unique<retrieval::RetrievalServer>(*index_, so);
    server_->start();
    port_ = server_->port();
  }
  void stop() {
    if (server_) server_->stop();
    server_.reset();
  }
  int port() const { return port_; }
  // Indexes `corpus` into `index_dir` (one thread, no progress line) without serving it.
  static void build_index(const std::string& corpus, const std::string& index_dir) {
    retrieval::BuildOptions bo;
    bo.threads = 1;
    bo.progress = false;
    retrieval::build_index(corpus, index_dir, bo);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/retrieve"; }

 private:
  std::unique_ptr<retrieval::Bm25Index> index_;
  std::unique_ptr<retrieval::RetrievalServer> server_;
  int port_ = 0;
};

}  // namespace strata::testing
