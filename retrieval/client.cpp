// Over 450 lines on purpose: the worker loop owns the curl multi handle, the retries and the
// routing and failover over the daemon list; split apart, the pieces would share all of Impl.
#include "retrieval/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "retrieval/client_urls.h"

namespace strata::retrieval {

using Clock = std::chrono::steady_clock;

void validate(const ClientOptions& o) {
  STRATA_CHECK(!o.url.empty(), "client url is empty");
  try {
    (void)split_urls(o.url);
  } catch (const Error& e) {
    STRATA_FAIL("client url: " << e.what());
  }
  STRATA_CHECK(o.timeout_ms >= 1, "timeout_ms must be >= 1, got " << o.timeout_ms);
  STRATA_CHECK(o.connect_timeout_ms >= 1,
               "connect_timeout_ms must be >= 1, got " << o.connect_timeout_ms);
  STRATA_CHECK(o.max_attempts >= 1, "max_attempts must be >= 1, got " << o.max_attempts);
  STRATA_CHECK(o.backoff_initial_ms >= 0,
               "backoff_initial_ms must be >= 0, got " << o.backoff_initial_ms);
  STRATA_CHECK(o.backoff_max_ms >= o.backoff_initial_ms,
               "backoff_max_ms must be >= backoff_initial_ms, got " << o.backoff_max_ms);
  STRATA_CHECK(o.backoff_multiplier >= 1.0,
               "backoff_multiplier must be >= 1, got " << o.backoff_multiplier);
  STRATA_CHECK(o.jitter >= 0.0 && o.jitter <= 1.0, "jitter must be in [0, 1], got " << o.jitter);
  STRATA_CHECK(o.max_in_flight >= 1, "max_in_flight must be >= 1, got " << o.max_in_flight);
  STRATA_CHECK(o.max_connections >= 0,
               "max_connections must be >= 0, got " << o.max_connections);
  STRATA_CHECK(o.down_backoff_ms >= 1, "down_backoff_ms must be >= 1, got " << o.down_backoff_ms);
  STRATA_CHECK(o.down_backoff_max_ms >= o.down_backoff_ms,
               "down_backoff_max_ms must be >= down_backoff_ms, got " << o.down_backoff_max_ms);
}

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    STRATA_ASSERT(rc == CURLE_OK, "curl_global_init failed: " << curl_easy_strerror(rc));
  });
}

// Transport errors that another attempt cannot fix.
bool permanent(CURLcode rc) {
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_TOO_MANY_REDIRECTS:
      return true;
    default:
      return false;
  }
}

struct Job {
  RetrieveRequest req;
  std::string body;
  RetrievalClient::Callback on_done;
  Clock::time_point submitted;
  Clock::time_point next_attempt;
  int attempts = 0;
  int daemon = -1;     // where the current (or last) attempt went
  bool probe = false;  // that attempt went to a daemon marked down
  long last_status = 0;
  std::string last_error;
  std::string response;
  char errbuf[CURL_ERROR_SIZE] = {0};
};

size_t on_data(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* job = static_cast<Job*>(user);
  job->response.append(ptr, size * nmemb);
  return size * nmemb;
}

}  // namespace

// A daemon of the list. Its counters are read by daemon_stats() (under Impl::mu); the routing
// fields are the worker's alone.
struct Daemon {
  DaemonStats stats;
  Clock::time_point retry_at;  // down: when a probe may go
  int down_ms = 0;             // down: the current wait; doubles per failed probe
  bool probing = false;        // down: one request is probing it now
};

struct RetrievalClient::Impl {
  explicit Impl(ClientOptions o) : opts(std::move(o)), rng(opts.seed) {}

  void run();                                // worker loop
  void start_attempt(std::unique_ptr<Job> job);
  void finish_attempt(CURL* easy, CURLcode rc);
  void complete(std::unique_ptr<Job> job, RetrieveResult result);
  void fail(std::unique_ptr<Job> job, const std::string& why);
  int backoff_ms(int attempts_made);
  int pick_daemon(int avoid);           // worker thread: where the next attempt goes
  bool available(const Daemon& d, Clock::time_point now) const;
  void mark_down(int d, bool probe, const std::string& why);

  ClientOptions opts;
  CURLM* multi = nullptr;
  curl_slist* headers = nullptr;

  mutable std::mutex mu;
  std::condition_variable space_cv;
  std::deque<std::unique_ptr<Job>> incoming;  // guarded by mu
  int in_flight = 0;                          // guarded by mu
  int peak = 0;                               // guarded by mu
  int64_t completed = 0;                      // guarded by mu
  bool shutting_down = false;                 // guarded by mu

  std::thread worker;
  std::thread::id worker_id;

  // Worker-thread only.
  std::vector<std::unique_ptr<Job>> waiting;  // backing off before their next attempt
  std::unordered_map<CURL*, std::unique_ptr<Job>> active;
  std::vector<CURL*> idle_handles;
  Rng rng;
  std::vector<Daemon> daemons;  // fixed after construction; stats guarded by mu
  size_t turn = 0;              // round-robin cursor among daemons with equal load
};

RetrievalClient::RetrievalClient(ClientOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {
  validate(impl_->opts);
  global_init();
  auto& s = *impl_;
  for (auto& u : split_urls(s.opts.url)) {
    s.daemons.emplace_back();
    s.daemons.back().stats.url = std::move(u);
  }
  s.multi = curl_multi_init();
  STRATA_CHECK(s.multi != nullptr, "curl_multi_init failed");
  // max_connections (or max_in_flight) per daemon.
  const long conns = s.opts.max_connections > 0 ? s.opts.max_connections : s.opts.max_in_flight;
  const long total = conns * static_cast<long>(s.daemons.size());
  curl_multi_setopt(s.multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
  curl_multi_setopt(s.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
  curl_multi_setopt(s.multi, CURLMOPT_MAXCONNECTS, total);
  s.headers = curl_slist_append(s.headers, "Content-Type: application/json");
  s.headers = curl_slist_append(s.headers, "Accept: application/json");
  s.headers = curl_slist_append(s.headers, "Expect:");  // no 100-continue round trip
  s.worker = std::thread([&s] { s.run(); });
  s.worker_id = s.worker.get_id();
}

RetrievalClient::~RetrievalClient() {
  auto& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.shutting_down = true;
  }
  s.space_cv.notify_all();
  curl_multi_wakeup(s.multi);
  if (s.worker.joinable()) s.worker.join();
  for (CURL* e : s.idle_handles) curl_easy_cleanup(e);
  curl_multi_cleanup(s.multi);
  curl_slist_free_all(s.headers);
}

const ClientOptions& RetrievalClient::options() const { return impl_->opts; }

int RetrievalClient::in_flight() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->in_flight;
}

int64_t RetrievalClient::completed() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->completed;
}

std::vector<DaemonStats> RetrievalClient::daemon_stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<DaemonStats> out;
  for (const auto& d : impl_->daemons) out.push_back(d.stats);
  return out;
}

int RetrievalClient::peak_in_flight() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->peak;
}

void RetrievalClient::async_retrieve(RetrieveRequest req, Callback on_done) {
  auto& s = *impl_;
  auto job = std::make_unique<Job>();
  job->body = make_retrieve_body(req);
  job->req = std::move(req);
  job->on_done = std::move(on_done);
  job->submitted = Clock::now();
  job->next_attempt = job->submitted;
  const bool from_worker = std::this_thread::get_id() == s.worker_id;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    if (!from_worker)
      s.space_cv.wait(lock, [&] { return s.in_flight < s.opts.max_in_flight || s.shutting_down; });
    if (s.shutting_down) {
      lock.unlock();
      RetrieveResult r;
      r.error = "retrieval client is shutting down";
      if (job->on_done) job->on_done(std::move(r));
      return;
    }
    ++s.in_flight;
    s.peak = std::max(s.peak, s.in_flight);
    s.incoming.push_back(std::move(job));
  }
  curl_multi_wakeup(s.multi);
}

RetrieveResult RetrievalClient::retrieve(RetrieveRequest req) {
  if (std::this_thread::get_id() == impl_->worker_id) {
    RetrieveResult r;
    r.error = "retrieve() called from a completion handler would deadlock; use async_retrieve()";
    return r;
  }
  std::promise<RetrieveResult> promise;
  auto future = promise.get_future();
  async_retrieve(std::move(req), [&promise](RetrieveResult r) { promise.set_value(std::move(r)); });
  return future.get();
}

int RetrievalClient::Impl::backoff_ms(int attempts_made) {
  const double base = std::min<double>(
      opts.backoff_max_ms,
      opts.backoff_initial_ms * std::pow(opts.backoff_multiplier, attempts_made - 1));
  const double scale = 1.0 - opts.jitter * rng.uniform();
  return static_cast<int>(std::lround(base * scale));
}

bool RetrievalClient::Impl::available(const Daemon& d, Clock::time_point now) const {
  return !d.stats.down || (!d.probing && d.retry_at <= now);
}

// The available daemon (up, or down and due for its probe) with the fewest attempts outstanding,
// ties in turn, other than `avoid` (where the last attempt failed) when another is available;
// when none is available, the down daemon due soonest.
int RetrievalClient::Impl::pick_daemon(int avoid) {
  const size_t n = daemons.size();
  if (n == 1) return 0;
  const auto now = Clock::now();
  int best = -1;
  for (int pass = 0; pass < 2 && best < 0; ++pass) {
    for (size_t k = 0; k < n; ++k) {
      const int i = static_cast<int>((turn + k) % n);
      if ((pass == 0 && i == avoid) || !available(daemons[i], now)) continue;
      if (best < 0 || daemons[i].stats.outstanding < daemons[best].stats.outstanding) best = i;
    }
  }
  if (best < 0) {
    best = 0;
    for (size_t i = 1; i < n; ++i)
      if (daemons[i].retry_at < daemons[best].retry_at) best = static_cast<int>(i);
  }
  turn = (static_cast<size_t>(best) + 1) % n;
  return best;
}

void RetrievalClient::Impl::mark_down(int d, bool probe, const std::string& why) {
  Daemon& dm = daemons[d];
  if (dm.stats.down && !probe) return;  // an attempt sent before it was marked down
  dm.probing = false;
  dm.down_ms = dm.stats.down ? std::min(opts.down_backoff_max_ms, dm.down_ms * 2) : opts.down_backoff_ms;
  dm.retry_at = Clock::now() + std::chrono::milliseconds(dm.down_ms);
  if (dm.stats.down) return;  // a failed probe: down for longer
  {
    std::lock_guard<std::mutex> lock(mu);
    dm.stats.down = true;
    ++dm.stats.marked_down;
  }
  if (daemons.size() > 1)
    STRATA_LOG_WARN("retrieval daemon {} stopped answering ({}); its queries go to the other daemons, and it is "
                    "tried again in {} ms",
                    dm.stats.url, why, dm.down_ms);
}

void RetrievalClient::Impl::start_attempt(std::unique_ptr<Job> job) {
  CURL* e = nullptr;
  if (!idle_handles.empty()) {
    e = idle_handles.back();
    idle_handles.pop_back();
  } else {
    e = curl_easy_init();
    if (e == nullptr) return fail(std::move(job), "curl_easy_init failed");
  }
  ++job->attempts;
  job->response.clear();
  job->errbuf[0] = 0;
  job->daemon = pick_daemon(job->daemon);
  Daemon& dm = daemons[job->daemon];
  job->probe = dm.stats.down;
  if (job->probe) dm.probing = true;
  {
    std::lock_guard<std::mutex> lock(mu);
    ++dm.stats.attempts;
    ++dm.stats.outstanding;
  }
  curl_easy_setopt(e, CURLOPT_URL, dm.stats.url.c_str());
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, job->body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(job->body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, job.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->errbuf);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.timeout_ms));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts.connect_timeout_ms));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
  curl_easy_setopt(e, CURLOPT_PRIVATE, job.get());
  const CURLMcode mc = curl_multi_add_handle(multi, e);
  if (mc != CURLM_OK) {
    idle_handles.push_back(e);
    {
      std::lock_guard<std::mutex> lock(mu);
      --dm.stats.outstanding;
      ++dm.stats.failed;
    }
    dm.probing = false;
    return fail(std::move(job), std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc));
  }
  active.emplace(e, std::move(job));
}

void RetrievalClient::Impl::finish_attempt(CURL* easy, CURLcode rc) {
  curl_multi_remove_handle(multi, easy);
  auto it = active.find(easy);
  STRATA_ASSERT(it != active.end(), "a finished curl transfer has no job");
  std::unique_ptr<Job> job = std::move(it->second);
  active.erase(it);
  // The handle goes back to the pool; drop its pointers into the finished job.
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, nullptr);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, nullptr);
  idle_handles.push_back(easy);

  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  job->last_status = status;
  Daemon& dm = daemons[job->daemon];
  const bool several = daemons.size() > 1;
  bool retryable = false;
  bool answered = false;
  RetrieveResult result;
  if (rc != CURLE_OK) {
    job->last_error = curl_easy_strerror(rc);
    if (job->errbuf[0] != 0) job->last_error += std::string(" (") + job->errbuf + ")";
    retryable = !permanent(rc);
    if (retryable) mark_down(job->daemon, job->probe, job->last_error);
  } else if (status >= 200 && status < 300) {
    std::string why;
    answered = parse_retrieve_response(job->response, static_cast<long>(job->req.queries.size()),
                                       result.results, why);
    if (!answered) job->last_error = "bad response from " + dm.stats.url + ": " + why;
  } else if (status >= 500 || status == 408 || status == 429) {
    // Server trouble, a request the server timed out (408) or asked to slow down (429).
    job->last_error = "HTTP " + std::to_string(status) + ": " + error_message_from_body(job->response);
    retryable = true;
  } else {
    job->last_error = "HTTP " + std::to_string(status) + ": " + error_message_from_body(job->response);
  }
  // A probe answered: the daemon is back. (An attempt sent before it was marked down proves
  // nothing about now.)
  if (rc == CURLE_OK && dm.stats.down && job->probe) {
    dm.probing = false;
    dm.down_ms = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      dm.stats.down = false;
    }
    if (several) STRATA_LOG_INFO("retrieval daemon {} answers again", dm.stats.url);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    --dm.stats.outstanding;
    ++(answered ? dm.stats.answered : dm.stats.failed);
  }
  if (answered) {
    result.ok = true;
    return complete(std::move(job), std::move(result));
  }
  if (several && rc != CURLE_OK) job->last_error = dm.stats.url + ": " + job->last_error;
  if (retryable && job->attempts < opts.max_attempts) {
    // Another daemon that can take the retry: fail over at once, the backoff is for the same one.
    const auto now = Clock::now();
    bool other = false;
    for (size_t i = 0; i < daemons.size(); ++i)
      other = other || (static_cast<int>(i) != job->daemon && available(daemons[i], now));
    if (other) {
      STRATA_LOG_DEBUG("retrieval attempt {} failed ({}); retrying on another daemon", job->attempts,
                       job->last_error);
      job->next_attempt = now;
      waiting.push_back(std::move(job));
      return;
    }
    int wait = backoff_ms(job->attempts);
    // An overloaded server's Retry-After (503, 429) lengthens the wait, up to backoff_max_ms.
    curl_off_t retry_after_s = 0;
    if ((status == 503 || status == 429) &&
        curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after_s) == CURLE_OK && retry_after_s > 0)
      wait = std::max(wait, static_cast<int>(std::min<curl_off_t>(retry_after_s * 1000, opts.backoff_max_ms)));
    STRATA_LOG_DEBUG("retrieval attempt {} failed ({}); retrying in {} ms", job->attempts,
                     job->last_error, wait);
    job->next_attempt = Clock::now() + std::chrono::milliseconds(wait);
    waiting.push_back(std::move(job));
    return;
  }
  const std::string why = "retrieval request failed after " + std::to_string(job->attempts) +
                          (job->attempts == 1 ? " attempt: " : " attempts: ") + job->last_error;
  fail(std::move(job), why);
}

void RetrievalClient::Impl::fail(std::unique_ptr<Job> job, const std::string& why) {
  RetrieveResult r;
  r.ok = false;
  r.error = why;
  complete(std::move(job), std::move(r));
}

void RetrievalClient::Impl::complete(std::unique_ptr<Job> job, RetrieveResult result) {
  result.attempts = job->attempts;
  result.http_status = job->last_status;
  result.seconds = std::chrono::duration<double>(Clock::now() - job->submitted).count();
  {
    std::lock_guard<std::mutex> lock(mu);
    --in_flight;
    ++completed;
  }
  space_cv.notify_one();
  if (!job->on_done) return;
  try {
    job->on_done(std::move(result));
  } catch (const std::exception& e) {
    STRATA_LOG_ERROR("a retrieval completion handler threw: {}", e.what());
  } catch (...) {
    STRATA_LOG_ERROR("a retrieval completion handler threw a non-standard exception");
  }
}

void RetrievalClient::Impl::run() {
  std::deque<std::unique_ptr<Job>> fresh;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (shutting_down) break;
      fresh.swap(incoming);
    }
    while (!fresh.empty()) {
      start_attempt(std::move(fresh.front()));
      fresh.pop_front();
    }
    // Retries whose backoff is over.
    const auto now = Clock::now();
    auto due = std::partition(waiting.begin(), waiting.end(),
                              [&](const std::unique_ptr<Job>& j) { return j->next_attempt > now; });
    std::vector<std::unique_ptr<Job>> ready;
    for (auto it = due; it != waiting.end(); ++it) ready.push_back(std::move(*it));
    waiting.erase(due, waiting.end());
    for (auto& j : ready) start_attempt(std::move(j));

    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg == CURLMSG_DONE) finish_attempt(msg->easy_handle, msg->data.result);
    }
    // Sleep until socket activity, a wakeup (new request, shutdown) or the next retry.
    int timeout_ms = 1000;
    const auto after = Clock::now();
    for (const auto& j : waiting) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(j->next_attempt - after).count();
      timeout_ms = std::min<int>(timeout_ms, std::max<long>(0, static_cast<long>(ms) + 1));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!incoming.empty() || shutting_down) timeout_ms = 0;
    }
    curl_multi_poll(multi, nullptr, 0, timeout_ms, nullptr);
  }
  // Shutting down: everything still pending completes with an error.
  std::vector<std::unique_ptr<Job>> leftovers;
  for (auto& [easy, job] : active) {
    curl_multi_remove_handle(multi, easy);
    idle_handles.push_back(easy);
    leftovers.push_back(std::move(job));
  }
  active.clear();
  for (auto& j : waiting) leftovers.push_back(std::move(j));
  waiting.clear();
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& j : incoming) leftovers.push_back(std::move(j));
    incoming.clear();
  }
  for (auto& j : leftovers) fail(std::move(j), "retrieval client shut down before the request finished");
}

}  // namespace strata::retrieval
