#include "retrieval/dense/dense_searcher.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace strata::retrieval::dense {

using Clock = std::chrono::steady_clock;

void validate(const BatchOptions& o) {
  STRATA_CHECK(o.max_batch >= 1, "max_batch must be >= 1, got " << o.max_batch);
  STRATA_CHECK(o.max_wait_us >= 0, "max_wait_us must be >= 0, got " << o.max_wait_us);
  STRATA_CHECK(o.max_queue >= 1, "max_queue must be >= 1, got " << o.max_queue);
}

namespace {

// Upper bounds of the batch-size histogram exposed on /metrics.
constexpr std::array<int, 9> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

struct Job {
  const std::vector<std::string>* queries;
  int k;
  std::promise<std::vector<std::vector<Hit>>> done;
  Clock::time_point arrived;
};

}  // namespace

struct DenseSearcher::Impl {
  const DenseIndex& index;
  Embedder& embedder;
  BatchOptions opt;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Job*> queue;
  size_t queued_queries = 0;
  bool stopping = false;
  DenseStats stats;
  std::array<uint64_t, kBatchBounds.size() + 1> batch_hist{};
  std::thread worker;

  Impl(const DenseIndex& i, Embedder& e, BatchOptions o) : index(i), embedder(e), opt(o) {}

  void run() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, nothing left
      // Let the batch fill up: until max_batch queries wait or the first has waited max_wait.
      const auto deadline = queue.front()->arrived + std::chrono::microseconds(opt.max_wait_us);
      cv.wait_until(lock, deadline, [&] {
        return stopping || queued_queries >= static_cast<size_t>(opt.max_batch);
      });
      std::vector<Job*> jobs;
      size_t total = 0;
      while (!queue.empty()) {
        const size_t q = queue.front()->queries->size();
        if (!jobs.empty() && total + q > static_cast<size_t>(opt.max_batch)) break;
        jobs.push_back(queue.front());
        total += q;
        queue.pop_front();
      }
      queued_queries -= total;
      lock.unlock();
      process(jobs, total);
      lock.lock();
    }
  }

  void process(const std::vector<Job*>& jobs, size_t total) {
    try {
      std::vector<std::string> texts;
      texts.reserve(total);
      int k = 0;
      for (Job* j : jobs) {
        texts.insert(texts.end(), j->queries->begin(), j->queries->end());
        k = std::max(k, j->k);
      }
      const auto t0 = Clock::now();
      const std::vector<float> vecs = embedder.embed(texts, /*is_query=*/true);
      const auto t1 = Clock::now();
      STRATA_CHECK(vecs.size() == texts.size() * static_cast<size_t>(index.dim()),
                   "the encoder returned " << vecs.size() << " floats for " << texts.size()
                                           << " queries of dimension " << index.dim());
      auto hits = index.search(vecs.data(), texts.size(), k);
      const auto t2 = Clock::now();
      {
        std::lock_guard<std::mutex> lock(mu);
        stats.batches += 1;
        stats.queries += total;
        stats.largest_batch = std::max<uint64_t>(stats.largest_batch, total);
        stats.encoder_seconds += std::chrono::duration<double>(t1 - t0).count();
        stats.search_seconds += std::chrono::duration<double>(t2 - t1).count();
        size_t b = 0;
        while (b < kBatchBounds.size() && static_cast<int>(total) > kBatchBounds[b]) ++b;
        batch_hist[b] += 1;
      }
      size_t at = 0;
      for (Job* j : jobs) {
        std::vector<std::vector<Hit>> mine(j->queries->size());
        for (auto& m : mine) {
          m = std::move(hits[at++]);
          if (m.size() > static_cast<size_t>(j->k)) m.resize(j->k);
        }
        j->done.set_value(std::move(mine));
      }
    } catch (...) {
      for (Job* j : jobs) j->done.set_exception(std::current_exception());
    }
  }
};

DenseSearcher::DenseSearcher(const DenseIndex& index, Embedder& embedder, BatchOptions options)
    : impl_(std::make_unique<Impl>(index, embedder, options)) {
  validate(options);
  STRATA_CHECK(embedder.dim() == index.dim(),
               "the encoder (" << embedder.describe() << ") makes vectors of " << embedder.dim()
                               << " floats but the index " << index.describe() << " holds "
                               << index.dim() << "; use the encoder the index was built with");
  if (!index.encoder().empty() && index.encoder() != embedder.describe())
    STRATA_LOG_WARN("the index was built with encoder '{}' and is queried with '{}'",
                    index.encoder(), embedder.describe());
  impl_->worker = std::thread([this] { impl_->run(); });
}

DenseSearcher::~DenseSearcher() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->worker.join();
}

std::vector<Hit> DenseSearcher::search(std::string_view query, int k) const {
  return search_batch({std::string(query)}, k, 0)[0];
}

std::vector<std::vector<Hit>> DenseSearcher::search_batch(const std::vector<std::string>& queries,
                                                          int k, int) const {
  STRATA_CHECK(k >= 0, "top-k must be >= 0, got " << k);
  if (queries.empty()) return {};
  auto& s = *impl_;
  Job job{&queries, k, {}, Clock::now()};
  auto result = job.done.get_future();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    STRATA_CHECK(!s.stopping, "the dense searcher is shutting down");
    if (s.queued_queries + queries.size() > static_cast<size_t>(s.opt.max_queue) &&
        s.queued_queries > 0) {
      s.stats.overloaded += queries.size();
      throw OverloadedError("the query encoder has " + std::to_string(s.queued_queries) +
                            " queries waiting (max_queue " + std::to_string(s.opt.max_queue) +
                            ")");
    }
    s.queue.push_back(&job);
    s.queued_queries += queries.size();
  }
  s.cv.notify_all();
  return result.get();
}

DocumentView DenseSearcher::document(uint32_t doc) const { return impl_->index.document(doc); }
uint32_t DenseSearcher::num_docs() const { return impl_->index.num_docs(); }

DenseStats DenseSearcher::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

std::string DenseSearcher::metrics_text() const {
  DenseStats st;
  std::array<uint64_t, kBatchBounds.size() + 1> hist{};
  size_t queued = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    st = impl_->stats;
    hist = impl_->batch_hist;
    queued = impl_->queued_queries;
  }
  std::ostringstream o;
  o << "# HELP strata_encoder_seconds_total Time spent encoding queries.\n"
    << "# TYPE strata_encoder_seconds_total counter\n"
    << "strata_encoder_seconds_total " << st.encoder_seconds << "\n"
    << "# HELP strata_dense_search_seconds_total Time spent searching the vector index.\n"
    << "# TYPE strata_dense_search_seconds_total counter\n"
    << "strata_dense_search_seconds_total " << st.search_seconds << "\n"
    << "# HELP strata_encoder_queue_queries Queries waiting for the encoder.\n"
    << "# TYPE strata_encoder_queue_queries gauge\n"
    << "strata_encoder_queue_queries " << queued << "\n"
    << "# HELP strata_encoder_overloaded_total Queries refused because the encoder queue was "
       "full.\n"
    << "# TYPE strata_encoder_overloaded_total counter\n"
    << "strata_encoder_overloaded_total " << st.overloaded << "\n"
    << "# HELP strata_encoder_batch_size Queries per encoder call.\n"
    << "# TYPE strata_encoder_batch_size histogram\n";
  uint64_t cum = 0;
  for (size_t b = 0; b < kBatchBounds.size(); ++b) {
    cum += hist[b];
    o << "strata_encoder_batch_size_bucket{le=\"" << kBatchBounds[b] << "\"} " << cum << "\n";
  }
  cum += hist[kBatchBounds.size()];
  o << "strata_encoder_batch_size_bucket{le=\"+Inf\"} " << cum << "\n"
    << "strata_encoder_batch_size_sum " << st.queries << "\n"
    << "strata_encoder_batch_size_count " << st.batches << "\n";
  return o.str();
}

}  // namespace strata::retrieval::dense
