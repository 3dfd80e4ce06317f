#include "retrieval/server_metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace strata::retrieval {

ServerMetrics::ServerMetrics()
    : bounds_{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
      bucket_counts_(bounds_.size() + 1, 0) {}

void ServerMetrics::observe_request(const std::string& path, int status, double seconds) {
  const size_t b = std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin();
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{path, status}];
  ++bucket_counts_[b];
  latency_sum_ += seconds;
  ++latency_count_;
}

void ServerMetrics::count_error(const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  ++errors_[kind];
}

uint64_t ServerMetrics::requests(const std::string& path, int status) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = requests_.find({path, status});
  return it == requests_.end() ? 0 : it->second;
}

uint64_t ServerMetrics::errors(const std::string& kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = errors_.find(kind);
  return it == errors_.end() ? 0 : it->second;
}

std::string ServerMetrics::render(uint32_t documents) const {
  std::string out;
  auto add = [&out](const std::string& s) { out += s; };
  std::lock_guard<std::mutex> lock(mu_);
  add("# HELP strata_retrieval_requests_total HTTP requests answered, by path and status.\n");
  add("# TYPE strata_retrieval_requests_total counter\n");
  for (const auto& [key, n] : requests_)
    add(fmt::format("strata_retrieval_requests_total{{path=\"{}\",status=\"{}\"}} {}\n", key.first,
                    key.second, n));
  add("# HELP strata_retrieval_errors_total Refused or failed requests, by kind.\n");
  add("# TYPE strata_retrieval_errors_total counter\n");
  for (const auto& [kind, n] : errors_)
    add(fmt::format("strata_retrieval_errors_total{{kind=\"{}\"}} {}\n", kind, n));
  add("# HELP strata_retrieval_request_duration_seconds Time to handle and answer a request.\n");
  add("# TYPE strata_retrieval_request_duration_seconds histogram\n");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += bucket_counts_[i];
    add(fmt::format("strata_retrieval_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                    bounds_[i], cumulative));
  }
  cumulative += bucket_counts_.back();
  add(fmt::format("strata_retrieval_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
                  cumulative));
  add(fmt::format("strata_retrieval_request_duration_seconds_sum {}\n", latency_sum_));
  add(fmt::format("strata_retrieval_request_duration_seconds_count {}\n", latency_count_));
  add("# HELP strata_retrieval_queries_total Queries searched (a request may carry many).\n");
  add("# TYPE strata_retrieval_queries_total counter\n");
  add(fmt::format("strata_retrieval_queries_total {}\n", queries_.load()));
  add("# HELP strata_retrieval_in_flight_requests Requests read but not yet answered.\n");
  add("# TYPE strata_retrieval_in_flight_requests gauge\n");
  add(fmt::format("strata_retrieval_in_flight_requests {}\n", in_flight_.load()));
  add("# HELP strata_retrieval_open_connections Client connections currently open.\n");
  add("# TYPE strata_retrieval_open_connections gauge\n");
  add(fmt::format("strata_retrieval_open_connections {}\n", connections_.load()));
  add("# HELP strata_retrieval_connections_total Client connections accepted.\n");
  add("# TYPE strata_retrieval_connections_total counter\n");
  add(fmt::format("strata_retrieval_connections_total {}\n", accepted_.load()));
  add("# HELP strata_retrieval_documents Passages in the loaded index.\n");
  add("# TYPE strata_retrieval_documents gauge\n");
  add(fmt::format("strata_retrieval_documents {}\n", documents));
  return out;
}

}  // namespace strata::retrieval
