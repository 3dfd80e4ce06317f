// Client for the retrieval daemon (or any Search-R1-compatible /retrieve server), on libcurl.
//
// One worker thread drives a curl multi handle: many requests are in flight at once over a pool
// of reused keep-alive connections. Each request has a per-attempt timeout and is retried with
// exponential backoff and jitter on connection errors, timeouts, 5xx, 408 and 429 answers (never on
// other 4xx); a 503's or 429's Retry-After lengthens the wait, up to backoff_max_ms.
// A request that still fails returns an error value (ok = false); nothing throws to the caller.
//
// Several daemons (url = "URL1,URL2,...", one daemon per node is the usual layout): each attempt
// goes to the daemon with the fewest requests outstanding, ties taken in turn (round robin). A
// daemon whose attempt fails on the transport (refused, reset, timed out) is marked down: the
// request's retry goes at once to another daemon (still within max_attempts), and the daemon gets
// no new work until down_backoff_ms has passed; then one request probes it (answered: up again;
// failed: down for twice as long, up to down_backoff_max_ms). When every daemon is down, attempts
// go to the one due soonest, with the usual backoff, so a request that no daemon answers fails
// after max_attempts like with one daemon: recorded as a failed retrieval, never dropped.
//
//   ClientOptions opts;
//   opts.url = "http://127.0.0.1:8000/retrieve";
//   RetrievalClient client(opts);
//   client.async_retrieve({{"who wrote hamlet"}, 3, true}, [](RetrieveResult r) { ... });
//   RetrieveResult r = client.retrieve({{"q1", "q2"}});   // blocking convenience
//
// With Boost.Asio (see also retrieval/client_asio.h): completion handlers run on the client's
// worker thread and must be short;
// post the result to your executor from the handler, e.g.
//   client.async_retrieve(req, [ex](RetrieveResult r) { net::post(ex, [r = std::move(r)] {...}); });
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "retrieval/protocol.h"

namespace strata::retrieval {

struct ClientOptions {
  std::string url = "http://127.0.0.1:8000/retrieve";  // the /retrieve endpoint, or several
                                                       // separated by commas (one per daemon)
  int timeout_ms = 30000;          // per attempt: connect + send + wait + receive
  int connect_timeout_ms = 3000;   // per attempt: TCP connect alone
  int max_attempts = 5;            // attempts per request, the first included (>= 1)
  int backoff_initial_ms = 50;     // wait before the 2nd attempt
  int backoff_max_ms = 2000;       // cap on one wait
  double backoff_multiplier = 2.0; // wait grows by this factor per attempt
  double jitter = 0.5;             // each wait is scaled by a uniform factor in [1 - jitter, 1]
  int max_in_flight = 64;          // requests accepted and not yet completed; async_retrieve
                                   // blocks the caller while this many are outstanding
  int max_connections = 0;         // open connections to the server; 0 = max_in_flight
  uint64_t seed = 0;               // seed of the jitter generator
  int down_backoff_ms = 1000;      // several daemons: a daemon that stopped answering gets no
                                   // work for this long, then one request probes it
  int down_backoff_max_ms = 30000; // cap on that wait, which doubles per failed probe
};

// One daemon of a client's list, as its worker saw it so far.
struct DaemonStats {
  std::string url;
  bool down = false;         // marked down and not answered since
  int outstanding = 0;       // attempts in flight there now
  int64_t attempts = 0;      // attempts sent there
  int64_t answered = 0;      // attempts it answered with a valid 2xx response
  int64_t failed = 0;        // attempts that failed there (transport, HTTP error, bad response)
  int64_t marked_down = 0;   // times it was marked down
};

// Checks the options; throws strata::Error naming the bad field and value.
void validate(const ClientOptions& opts);

struct RetrieveResult {
  bool ok = false;
  std::vector<std::vector<Document>> results;  // one list per query, request order (when ok)
  std::string error;     // why it failed (when !ok): transport error or the server's message
  int attempts = 0;      // attempts made
  long http_status = 0;  // status of the last attempt; 0 when no response came back
  double seconds = 0;    // from submission to completion, retries included
};

// The daemon's health as seen from a client, before any work depends on it.
struct HealthResult {
  enum class Status {
    kOk,           // GET /health answered 200, or (servers without /health, such as Search-R1's)
                   // a one-query POST to the /retrieve URL answered 200
    kUnreachable,  // nothing answered at /health: no daemon at that host:port
    kNotWorking,   // something answered, but neither /health nor a probe /retrieve with 200
  };
  Status status = Status::kUnreachable;
  std::string retrieve_url;  // the /retrieve URL probed
  std::string health_url;    // the /health URL asked: the /retrieve URL's last segment replaced
  long health_status = 0;    // HTTP status of GET /health; 0 when nothing came back
  long retrieve_status = 0;  // HTTP status of the probe POST (0: not sent, or nothing came back)
  std::string error;         // transport error (curl's message) of the failing request, if any
  // Several URLs: how many were checked, and "URL: why" for each that does not work. The fields
  // above are those of the first daemon that works, or, when none does, of the first one.
  int daemons = 1;
  std::vector<std::string> not_working;
  bool ok() const { return status == Status::kOk; }
};

// GET /health beside `retrieve_url` (http://host:port/retrieve -> http://host:port/health), with a
// short timeout (connecting: at most 3 s; the whole request: timeout_ms), then, when that does
// not answer 200, one probe query to the /retrieve URL itself. Never throws for network errors.
// A comma-separated list checks every URL: ok when at least one daemon works.
HealthResult check_health(const std::string& retrieve_url, int timeout_ms = 10000);

// Throws strata::UnreachableError (programs exit with 3) unless `h` is ok; the message starts with
// `key` (the option naming the URL, e.g. "retriever" or "--retriever"), says what failed and how
// to start a daemon. With several daemons: exit 3 only when none works; when some do, a warning
// names the others (the client probes them again later and uses them once they answer).
void require_healthy(const HealthResult& h, const std::string& key);

class RetrievalClient {
 public:
  using Callback = std::function<void(RetrieveResult)>;

  explicit RetrievalClient(ClientOptions opts = {});
  // Fails every request still pending with "client shut down" and joins the worker.
  ~RetrievalClient();
  RetrievalClient(const RetrievalClient&) = delete;
  RetrievalClient& operator=(const RetrievalClient&) = delete;

  // Queues a request; `on_done` is called exactly once, on the worker thread. Blocks while
  // max_in_flight requests are outstanding (back-pressure), except when called from a completion
  // handler, where it never blocks.
  void async_retrieve(RetrieveRequest req, Callback on_done);
  // Blocking convenience over async_retrieve. From a completion handler it returns an error
  // value instead of deadlocking.
  RetrieveResult retrieve(RetrieveRequest req);

  // Requests accepted and not yet completed.
  int in_flight() const;
  // Peak of in_flight() since construction (for tests of back-pressure).
  int peak_in_flight() const;
  // Requests completed (answered or failed) since construction; with in_flight(), what a watchdog
  // needs to tell a slow daemon from a hung one.
  int64_t completed() const;
  const ClientOptions& options() const;
  // check_health() of this client's URL(s).
  HealthResult health() const;
  // Per daemon, in the order of the URL list.
  std::vector<DaemonStats> daemon_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::retrieval
