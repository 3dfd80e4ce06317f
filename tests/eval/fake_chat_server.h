// A tiny OpenAI-compatible chat completions server for tests (Boost.Beast, loopback, port 0):
// every POST goes to a handler that plays the policy from a script.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace strata::testing {

class FakeChatServer {
 public:
  struct Request {
    std::string target;         // e.g. "/v1/chat/completions"
    std::string authorization;  // the Authorization header ("" when absent)
    nlohmann::json body;        // the parsed JSON body (null when it did not parse)
  };
  // Returns (HTTP status, JSON body).
  using Handler = std::function<std::pair<int, nlohmann::json>(const Request&)>;

  explicit FakeChatServer(Handler handler) : handler_(std::move(handler)), acceptor_(io_) {
    namespace net = boost::asio;
    const net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~FakeChatServer() { stop(); }
  FakeChatServer(const FakeChatServer&) = delete;
  FakeChatServer& operator=(const FakeChatServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void stop() {
    if (stopping_.exchange(true)) return;
    {  // wake the blocking accept() with a connection of our own
      namespace net = boost::asio;
      net::io_context io;
      net::ip::tcp::socket s(io);
      boost::system::error_code ec;
      s.connect({net::ip::make_address("127.0.0.1"), port_}, ec);
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : connections_)
      if (t.joinable()) t.join();
  }

 private:
  void accept_loop() {
    while (true) {
      boost::system::error_code ec;
      auto sock = std::make_shared<boost::asio::ip::tcp::socket>(io_);
      acceptor_.accept(*sock, ec);
      if (stopping_) return;
      if (ec) continue;
      std::lock_guard<std::mutex> lock(mu_);
      connections_.emplace_back([this, sock] { serve(*sock); });
    }
  }

  void serve(boost::asio::ip::tcp::socket& sock) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buf;
    while (true) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(sock, buf, req, ec);
      if (ec) break;
      Request r;
      r.target = std::string(req.target());
      r.authorization = std::string(req[http::field::authorization]);
      r.body = nlohmann::json::parse(req.body(), nullptr, false);
      if (r.body.is_discarded()) r.body = nullptr;
      auto [status, body] = handler_(r);
      http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(req.keep_alive());
      res.body() = body.dump();
      res.prepare_payload();
      http::write(sock, res, ec);
      if (ec || !req.keep_alive()) break;
    }
    boost::system::error_code ignored;
    sock.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  }

  Handler handler_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> connections_;
};

// An OpenAI chat.completion answer with one choice.
inline nlohmann::json chat_completion(const std::string& content, const std::string& finish,
                                      const std::string& stop_reason = "") {
  nlohmann::json choice = {{"index", 0},
                           {"message", {{"role", "assistant"}, {"content", content}}},
                           {"finish_reason", finish}};
  if (!stop_reason.empty()) choice["stop_reason"] = stop_reason;
  return {{"id", "chatcmpl-test"}, {"object", "chat.completion"}, {"choices", {choice}}};
}

}  // namespace strata::testing
