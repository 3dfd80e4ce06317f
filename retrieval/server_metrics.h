// Counters the retrieval daemon exposes on GET /metrics, in Prometheus text format.
// Thread-safe: every method may be called from any I/O or search thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace strata::retrieval {

class ServerMetrics {
 public:
  ServerMetrics();

  // One finished request: its path label ("/retrieve", "/health", "/metrics" or "other"), HTTP
  // status and wall time from the end of reading to the end of writing, in seconds.
  void observe_request(const std::string& path, int status, double seconds);
  // One refused or failed request, by kind ("bad_json", "timeout", "internal", ...).
  void count_error(const std::string& kind);
  void add_queries(uint64_t n) { queries_.fetch_add(n, std::memory_order_relaxed); }
  void connection_opened() {
    connections_.fetch_add(1, std::memory_order_relaxed);
    accepted_.fetch_add(1, std::memory_order_relaxed);
  }
  void connection_closed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  void in_flight_add(int d) { in_flight_.fetch_add(d, std::memory_order_relaxed); }
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // Connections accepted since start (keep-alive reuse shows as few connections, many requests).
  uint64_t connections_accepted() const { return accepted_.load(std::memory_order_relaxed); }

  uint64_t requests(const std::string& path, int status) const;
  uint64_t errors(const std::string& kind) const;

  // The whole exposition, with `documents` as the index-size gauge.
  std::string render(uint32_t documents) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> errors_;
  std::vector<double> bounds_;           // histogram upper bounds, seconds
  std::vector<uint64_t> bucket_counts_;  // non-cumulative, one per bound plus +Inf
  double latency_sum_ = 0;
  uint64_t latency_count_ = 0;
  std::atomic<uint64_t> queries_{0};
  std::atomic<int64_t> connections_{0};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace strata::retrieval
