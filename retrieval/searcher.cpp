#include "retrieval/searcher.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace strata::retrieval {

std::vector<std::vector<Hit>> Searcher::search_batch(const std::vector<std::string>& queries,
                                                     int k, int threads) const {
  STRATA_CHECK(k >= 0, "top-k must be >= 0, got " << k);
  STRATA_CHECK(threads >= 0, "threads must be >= 0 (0 = all cores), got " << threads);
  std::vector<std::vector<Hit>> results(queries.size());
  size_t workers = threads > 0 ? static_cast<size_t>(threads)
                               : std::max(1u, std::thread::hardware_concurrency());
  workers = std::min(workers, queries.size());
  if (workers <= 1) {
    for (size_t i = 0; i < queries.size(); ++i) results[i] = search(queries[i], k);
    return results;
  }
  // Workers take the next query from a shared counter; an exception stops the others (the
  // counter jumps to the end) and travels to the caller instead of terminating the process.
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&] {
    try {
      for (size_t i; (i = next.fetch_add(1)) < queries.size();) results[i] = search(queries[i], k);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      next = queries.size();
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < workers; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return results;
}

}  // namespace strata::retrieval
