// Over 450 lines on purpose: the daemon's connection state machine (read with one deadline,
// dispatch, search on the pool, write, graceful close) and the server's lifecycle share the
// Impl and Session types, which are private to this file; split, every step would need them
// in a header that nothing else may include.
#include "retrieval/server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "retrieval/protocol.h"

namespace strata::retrieval {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

void validate(const ServerOptions& o) {
  STRATA_CHECK(o.port >= 0 && o.port <= 65535, "port must be in 0..65535, got " << o.port);
  STRATA_CHECK(o.io_threads >= 1, "io_threads must be >= 1, got " << o.io_threads);
  STRATA_CHECK(o.search_threads >= 0, "search_threads must be >= 0, got " << o.search_threads);
  STRATA_CHECK(o.batch_threads >= 0, "batch_threads must be >= 0, got " << o.batch_threads);
  const RequestLimits& l = o.limits;
  STRATA_CHECK(l.max_topk >= 1, "max_topk must be >= 1, got " << l.max_topk);
  STRATA_CHECK(l.default_topk >= 1 && l.default_topk <= l.max_topk,
               "topk (default) must be in 1.." << l.max_topk << ", got " << l.default_topk);
  STRATA_CHECK(l.max_queries >= 1, "max_queries must be >= 1, got " << l.max_queries);
  STRATA_CHECK(l.max_query_bytes >= 1, "max_query_bytes must be >= 1, got " << l.max_query_bytes);
  STRATA_CHECK(o.max_body_bytes >= 16, "max_body_bytes must be >= 16, got " << o.max_body_bytes);
  STRATA_CHECK(o.max_header_bytes >= 256,
               "max_header_bytes must be >= 256, got " << o.max_header_bytes);
  STRATA_CHECK(o.max_pending_requests >= 1,
               "max_pending_requests must be >= 1, got " << o.max_pending_requests);
  STRATA_CHECK(o.max_connections >= 1, "max_connections must be >= 1, got " << o.max_connections);
  STRATA_CHECK(o.retry_after_s >= 0, "retry_after_s must be >= 0, got " << o.retry_after_s);
  STRATA_CHECK(o.read_timeout_ms >= 1, "read_timeout_ms must be >= 1, got " << o.read_timeout_ms);
  STRATA_CHECK(o.write_timeout_ms >= 1,
               "write_timeout_ms must be >= 1, got " << o.write_timeout_ms);
  STRATA_CHECK(o.drain_timeout_ms >= 0,
               "drain_timeout_ms must be >= 0, got " << o.drain_timeout_ms);
  STRATA_CHECK(o.delay_ms >= 0, "delay_ms must be >= 0, got " << o.delay_ms);
}

namespace {

class Session;

// The path label used in metrics; unknown paths are folded into one label.
std::string path_label(std::string_view path) {
  if (path == "/retrieve" || path == "/health" || path == "/metrics") return std::string(path);
  return "other";
}

bool is_http_parse_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

}  // namespace

struct RetrievalServer::Impl {
  Impl(const Searcher& s, ServerOptions o) : searcher(s), opts(std::move(o)) {}

  void do_accept();
  // Registers a new connection; false when max_connections are already open (the connection
  // is then answered 503 and closed, and not counted).
  bool register_session(Session* s, const std::shared_ptr<Session>& sp) {
    std::lock_guard<std::mutex> lock(sessions_mu);
    if (sessions.size() >= static_cast<size_t>(opts.max_connections)) return false;
    sessions[s] = sp;
    return true;
  }
  void unregister_session(Session* s) {
    std::lock_guard<std::mutex> lock(sessions_mu);
    sessions.erase(s);
    if (sessions.empty()) sessions_cv.notify_all();
  }

  const Searcher& searcher;
  ServerOptions opts;
  ServerMetrics metrics;
  std::atomic<bool> stopping{false};
  std::atomic<int> pending_retrieve{0};

  // Declared before the io_context so that sessions still queued in it when it is destroyed can
  // unregister themselves.
  std::mutex sessions_mu;
  std::condition_variable sessions_cv;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  std::mutex state_mu;
  std::condition_variable state_cv;
  enum class State { kIdle, kRunning, kStopped } state = State::kIdle;
  bool stop_started = false;

  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;  // on its own strand
  std::optional<net::steady_timer> accept_retry;
  std::unique_ptr<net::thread_pool> search_pool;  // destroyed (joined) before the io_context
  std::vector<std::thread> threads;
  uint16_t port = 0;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(RetrievalServer::Impl& srv, tcp::socket socket)
      : srv_(srv),
        stream_(std::move(socket)),
        delay_timer_(stream_.get_executor()),
        read_timer_(stream_.get_executor()) {
    srv_.metrics.connection_opened();
  }
  ~Session() {
    if (counted_in_flight_) srv_.metrics.in_flight_add(-1);
    srv_.metrics.connection_closed();
    srv_.unregister_session(this);
  }

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::read_request, shared_from_this()));
  }

  // Called on the strand when the server stops: idle connections close now, busy ones after
  // their response is written.
  void on_server_stop() {
    if (phase_ == Phase::kReading || phase_ == Phase::kClosing) stream_.cancel();
  }
  net::any_io_executor executor() { return stream_.get_executor(); }

  // Answers a connection the server has no room for (max_connections) with 503 and closes it,
  // without reading its request.
  void reject() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->started_ = Clock::now();
      self->begin_request();
      self->keep_alive_ = false;
      self->send_error(http::status::service_unavailable,
                       "too many connections (" + std::to_string(self->srv_.opts.max_connections) +
                           " open); retry later");
    });
  }

 private:
  enum class Phase { kReading, kBusy, kWriting, kClosing };

  void read_request() {
    if (srv_.stopping.load()) return close_now();
    phase_ = Phase::kReading;
    parser_.emplace();
    parser_->body_limit(srv_.opts.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(srv_.opts.max_header_bytes));
    keep_alive_ = true;
    label_ = "other";
    // One deadline covers headers and body; it also bounds how long an idle keep-alive
    // connection is kept. It is a timer of our own rather than the stream's expiry (which closes
    // the socket) so that a client stuck mid-request can still be told 408.
    stream_.expires_never();
    read_timed_out_ = false;
    read_timer_.expires_after(std::chrono::milliseconds(srv_.opts.read_timeout_ms));
    read_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // cancelled: the request arrived, or the connection closed
      self->read_timed_out_ = true;
      self->stream_.cancel();
    });
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    auto& req = parser_->get();
    const std::string_view target(req.target().data(), req.target().size());
    label_ = path_label(target.substr(0, target.find('?')));
    if (beast::iequals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
      continue_.emplace(http::status::continue_, req.version());
      http::async_write(stream_, *continue_,
                        beast::bind_front_handler(&Session::on_continue, shared_from_this()));
      return;
    }
    read_body();
  }

  void on_continue(beast::error_code ec, std::size_t) {
    if (ec) return close_now();
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return handle_request();
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    handle_request();
  }

  void on_read_error(const beast::error_code& ec) {
    read_timer_.cancel();
    const bool got_bytes = buffer_.size() > 0 || (parser_ && parser_->got_some());
    if (read_timed_out_) {
      read_timed_out_ = false;
      if (!got_bytes || srv_.stopping.load()) return close_now();  // an idle keep-alive connection
      srv_.metrics.count_error("read_timeout");
      STRATA_LOG_DEBUG("answering 408 to a connection whose request was incomplete after {} ms",
                       srv_.opts.read_timeout_ms);
      started_ = Clock::now();
      begin_request();
      keep_alive_ = false;
      return send_error(http::status::request_timeout,
                        "the request was not received whole within " +
                            std::to_string(srv_.opts.read_timeout_ms) + " ms");
    }
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted) {
      return close_now();  // the client closed between requests, or the server is stopping
    }
    started_ = Clock::now();
    begin_request();
    keep_alive_ = false;  // the stream position is unknown after a parse error
    if (ec == http::error::body_limit) {
      srv_.metrics.count_error("body_too_large");
      return send_error(http::status::payload_too_large,
                        "request body is larger than " +
                            std::to_string(srv_.opts.max_body_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      srv_.metrics.count_error("header_too_large");
      return send_error(http::status::request_header_fields_too_large,
                        "request headers are larger than " +
                            std::to_string(srv_.opts.max_header_bytes) + " bytes");
    }
    if (ec == http::error::partial_message) {
      srv_.metrics.count_error("incomplete_request");
      return send_error(http::status::bad_request,
                        "the connection was half-closed in the middle of a request");
    }
    if (is_http_parse_error(ec)) {
      srv_.metrics.count_error("bad_http");
      return send_error(http::status::bad_request, "malformed HTTP request: " + ec.message());
    }
    // Socket errors (reset by peer, ...): nobody to answer.
    end_request();
    close_now();
  }

  void begin_request() {
    if (!counted_in_flight_) {
      counted_in_flight_ = true;
      srv_.metrics.in_flight_add(1);
    }
  }
  void end_request() {
    if (counted_in_flight_) {
      counted_in_flight_ = false;
      srv_.metrics.in_flight_add(-1);
    }
  }

  void handle_request() {
    read_timer_.cancel();
    started_ = Clock::now();
    begin_request();
    phase_ = Phase::kBusy;
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    try {
      if (path == "/retrieve") {
        if (req.method() != http::verb::post) return method_not_allowed("POST");
        return handle_retrieve(req.body());
      }
      if (path == "/health") {
        if (req.method() != http::verb::get) return method_not_allowed("GET");
        return send(http::status::ok,
                    "{\"status\":\"ok\",\"documents\":" +
                        std::to_string(srv_.searcher.num_docs()) + "}",
                    "application/json");
      }
      if (path == "/metrics") {
        if (req.method() != http::verb::get) return method_not_allowed("GET");
        return send(http::status::ok,
                    srv_.metrics.render(srv_.searcher.num_docs()) + srv_.searcher.metrics_text(),
                    "text/plain; version=0.0.4; charset=utf-8");
      }
      srv_.metrics.count_error("not_found");
      return send_error(http::status::not_found,
                        "no such path: " + std::string(path.substr(0, 200)) +
                            " (try POST /retrieve, GET /health or GET /metrics)");
    } catch (const std::exception& e) {
      STRATA_LOG_ERROR("internal error on {}: {}", label_, e.what());
      srv_.metrics.count_error("internal");
      return send_error(http::status::internal_server_error,
                        std::string("internal error: ") + e.what());
    }
  }

  void method_not_allowed(const char* allow) {
    srv_.metrics.count_error("method_not_allowed");
    allow_ = allow;
    send_error(http::status::method_not_allowed,
               std::string("method ") + std::string(parser_->get().method_string()) +
                   " is not allowed on " + label_ + " (use " + allow + ")");
  }

  void handle_retrieve(const std::string& body) {
    RetrieveRequest req;
    RequestError err;
    if (!parse_retrieve_request(body, srv_.opts.limits, req, err)) {
      srv_.metrics.count_error(err.kind);
      return send_error(http::status::bad_request, err.message);
    }
    if (srv_.pending_retrieve.fetch_add(1) >= srv_.opts.max_pending_requests) {
      srv_.pending_retrieve.fetch_sub(1);
      srv_.metrics.count_error("overloaded");
      return send_error(http::status::service_unavailable,
                        "server overloaded: " + std::to_string(srv_.opts.max_pending_requests) +
                            " requests already pending");
    }
    if (srv_.opts.delay_ms > 0) {
      delay_timer_.expires_after(std::chrono::milliseconds(srv_.opts.delay_ms));
      delay_timer_.async_wait(
          [self = shared_from_this(), req = std::move(req)](beast::error_code) mutable {
            self->start_search(std::move(req));
          });
      return;
    }
    start_search(std::move(req));
  }

  // Runs the search on the search pool and posts the answer back to this connection's strand.
  void start_search(RetrieveRequest req) {
    net::post(*srv_.search_pool, [self = shared_from_this(), req = std::move(req)]() {
      auto& srv = self->srv_;
      std::string body;
      http::status status = http::status::ok;
      try {
        std::vector<std::vector<Hit>> hits;
        if (req.queries.size() == 1) {
          hits.push_back(srv.searcher.search(req.queries[0], req.topk));
        } else {
          hits = srv.searcher.search_batch(req.queries, req.topk, srv.opts.batch_threads);
        }
        STRATA_ASSERT(hits.size() == req.queries.size(),
                      "searcher returned " << hits.size() << " lists for " << req.queries.size()
                                           << " queries");
        srv.metrics.add_queries(req.queries.size());
        body = render_retrieve_response(srv.searcher, hits, req.return_scores);
      } catch (const OverloadedError& e) {
        srv.metrics.count_error("overloaded");
        status = http::status::service_unavailable;
        body = render_error(std::string("server overloaded: ") + e.what());
      } catch (const std::exception& e) {
        STRATA_LOG_ERROR("search failed: {}", e.what());
        srv.metrics.count_error("internal");
        status = http::status::internal_server_error;
        body = render_error(std::string("internal error: ") + e.what());
      } catch (...) {
        STRATA_LOG_ERROR("search failed with a non-standard exception");
        srv.metrics.count_error("internal");
        status = http::status::internal_server_error;
        body = render_error("internal error: unknown exception");
      }
      srv.pending_retrieve.fetch_sub(1);
      net::post(self->stream_.get_executor(), [self, status, body = std::move(body)]() mutable {
        self->send(status, std::move(body), "application/json");
      });
    });
  }

  void send_error(http::status status, const std::string& message) {
    send(status, render_error(message), "application/json");
  }

  void send(http::status status, std::string body, const char* content_type) {
    phase_ = Phase::kWriting;
    res_ = {};
    res_.version(version_ == 10 ? 10 : 11);
    res_.result(status);
    res_.set(http::field::server, "strata-retrieval");
    res_.set(http::field::content_type, content_type);
    if (!allow_.empty()) res_.set(http::field::allow, allow_);
    if (status == http::status::service_unavailable)
      res_.set(http::field::retry_after, std::to_string(srv_.opts.retry_after_s));
    allow_.clear();
    res_.body() = std::move(body);
    res_.keep_alive(keep_alive_ && !srv_.stopping.load());
    res_.prepare_payload();
    status_ = static_cast<int>(status);
    stream_.expires_after(std::chrono::milliseconds(srv_.opts.write_timeout_ms));
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    const double secs = std::chrono::duration<double>(Clock::now() - started_).count();
    srv_.metrics.observe_request(label_, status_, secs);
    end_request();
    if (ec) return close_now();
    if (!res_.keep_alive()) return close_gracefully();
    read_request();
  }

  // Half-closes our side and reads what the client still sends (for a short while) before
  // closing, so that an error response is not lost to a TCP reset over unread request bytes.
  void close_gracefully() {
    phase_ = Phase::kClosing;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close_now();
    drained_ = 0;
    stream_.expires_after(std::chrono::milliseconds(1000));
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > (8u << 20)) return self->close_now();
                              self->drain();
                            });
  }

  void close_now() {
    phase_ = Phase::kClosing;
    read_timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  RetrievalServer::Impl& srv_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  http::response<http::string_body> res_;
  net::steady_timer delay_timer_;
  net::steady_timer read_timer_;  // the deadline to receive a whole request
  bool read_timed_out_ = false;
  Phase phase_ = Phase::kReading;
  bool keep_alive_ = true;
  bool counted_in_flight_ = false;
  unsigned version_ = 11;
  int status_ = 0;
  std::string label_ = "other";
  std::string allow_;
  Clock::time_point started_;
  std::size_t drained_ = 0;
  std::array<char, 16384> scratch_{};
};

}  // namespace

void RetrievalServer::Impl::do_accept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor->is_open() || stopping.load()) return;
      // Out of descriptors or similar: wait a little instead of spinning.
      STRATA_LOG_WARN("accept failed: {}; retrying in 50 ms", ec.message());
      accept_retry->expires_after(std::chrono::milliseconds(50));
      accept_retry->async_wait([this](beast::error_code e) {
        if (!e && !stopping.load()) do_accept();
      });
      return;
    }
    if (stopping.load()) {
      beast::error_code ignored;
      socket.close(ignored);
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto session = std::make_shared<Session>(*this, std::move(socket));
    if (register_session(session.get(), session)) {
      session->run();
    } else {
      metrics.count_error("too_many_connections");
      session->reject();
    }
    do_accept();
  });
}

RetrievalServer::RetrievalServer(const Searcher& searcher, ServerOptions opts)
    : impl_(std::make_unique<Impl>(searcher, std::move(opts))) {
  validate(impl_->opts);
}

RetrievalServer::~RetrievalServer() { stop(); }

void RetrievalServer::start() {
  auto& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.state_mu);
    STRATA_CHECK(s.state == Impl::State::kIdle, "RetrievalServer::start() called twice");
  }
  beast::error_code ec;
  const auto address = net::ip::make_address(s.opts.host, ec);
  STRATA_CHECK(!ec, "bad --host address '" << s.opts.host << "': " << ec.message());
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(s.opts.port));
  s.acceptor.emplace(net::make_strand(s.ioc));
  s.accept_retry.emplace(s.acceptor->get_executor());
  s.acceptor->open(endpoint.protocol(), ec);
  STRATA_CHECK(!ec, "cannot open a socket: " << ec.message());
  s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  s.acceptor->bind(endpoint, ec);
  STRATA_CHECK(!ec, "cannot bind " << s.opts.host << ":" << s.opts.port << ": " << ec.message());
  s.acceptor->listen(net::socket_base::max_listen_connections, ec);
  STRATA_CHECK(!ec, "cannot listen on " << s.opts.host << ":" << s.opts.port << ": "
                                        << ec.message());
  s.port = s.acceptor->local_endpoint().port();

  int search_threads = s.opts.search_threads;
  if (search_threads == 0) search_threads = std::max(1u, std::thread::hardware_concurrency());
  s.search_pool = std::make_unique<net::thread_pool>(search_threads);
  s.work.emplace(s.ioc.get_executor());
  s.do_accept();
  for (int i = 0; i < s.opts.io_threads; ++i) s.threads.emplace_back([&s] { s.ioc.run(); });
  {
    std::lock_guard<std::mutex> lock(s.state_mu);
    s.state = Impl::State::kRunning;
  }
  STRATA_LOG_INFO("retrieval server listening on {}:{} ({} documents, {} I/O threads, {} search "
                  "threads)",
                  s.opts.host, s.port, s.searcher.num_docs(), s.opts.io_threads, search_threads);
}

uint16_t RetrievalServer::port() const { return impl_->port; }

bool RetrievalServer::running() const {
  std::lock_guard<std::mutex> lock(impl_->state_mu);
  return impl_->state == Impl::State::kRunning && !impl_->stop_started;
}

void RetrievalServer::stop() {
  auto& s = *impl_;
  {
    std::unique_lock<std::mutex> lock(s.state_mu);
    if (s.state == Impl::State::kIdle) {
      s.state = Impl::State::kStopped;
      s.state_cv.notify_all();
      return;
    }
    if (s.stop_started) {  // another thread is stopping: wait for it
      s.state_cv.wait(lock, [&] { return s.state == Impl::State::kStopped; });
      return;
    }
    s.stop_started = true;
  }
  s.stopping.store(true);
  net::post(s.acceptor->get_executor(), [&s] {
    beast::error_code ignored;
    s.acceptor->close(ignored);
    s.accept_retry->cancel();
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(s.sessions_mu);
    for (auto& [ptr, weak] : s.sessions)
      if (auto sp = weak.lock()) live.push_back(std::move(sp));
  }
  for (auto& sp : live) {
    net::post(sp->executor(), [sp] { sp->on_server_stop(); });
  }
  live.clear();
  {
    std::unique_lock<std::mutex> lock(s.sessions_mu);
    const bool drained = s.sessions_cv.wait_for(
        lock, std::chrono::milliseconds(s.opts.drain_timeout_ms), [&] { return s.sessions.empty(); });
    if (!drained)
      STRATA_LOG_WARN("{} connections still busy after {} ms; closing them", s.sessions.size(),
                      s.opts.drain_timeout_ms);
  }
  s.work.reset();
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  s.search_pool->join();
  STRATA_LOG_INFO("retrieval server on port {} stopped", s.port);
  {
    std::lock_guard<std::mutex> lock(s.state_mu);
    s.state = Impl::State::kStopped;
  }
  s.state_cv.notify_all();
}

void RetrievalServer::wait() {
  std::unique_lock<std::mutex> lock(impl_->state_mu);
  impl_->state_cv.wait(lock, [&] { return impl_->state == Impl::State::kStopped; });
}

const ServerMetrics& RetrievalServer::metrics() const { return impl_->metrics; }
const ServerOptions& RetrievalServer::options() const { return impl_->opts; }

}  // namespace strata::retrieval
