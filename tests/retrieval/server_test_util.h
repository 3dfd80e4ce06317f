// Helpers for the retrieval daemon and client tests: a small in-test Searcher and a raw HTTP/1.1
// connection with bounded waits (POSIX sockets, loopback only).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "retrieval/searcher.h"

namespace strata::retrieval::testing {

// Brute-force scorer: the score of a passage is the number of distinct query words it contains.
// Test hooks: the query "__throw__" throws; "__sleep__" sleeps 800 ms before answering.
class OverlapSearcher : public Searcher {
 public:
  struct Doc {
    std::string id;
    std::string contents;
  };
  explicit OverlapSearcher(std::vector<Doc> docs) : docs_(std::move(docs)) {}

  static std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    std::string cur;
    for (char ch : s) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (std::isalnum(c)) {
        cur.push_back(static_cast<char>(std::tolower(c)));
      } else if (!cur.empty()) {
        out.push_back(cur);
        cur.clear();
      }
    }
    if (!cur.empty()) out.push_back(cur);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  std::vector<Hit> search(std::string_view query, int k) const override {
    if (query == "__throw__") throw std::runtime_error("searcher exploded on purpose");
    if (query == "__sleep__") std::this_thread::sleep_for(std::chrono::milliseconds(800));
    const auto q = words(query);
    std::vector<Hit> hits;
    for (uint32_t d = 0; d < docs_.size(); ++d) {
      const auto w = words(docs_[d].contents);
      int n = 0;
      for (const auto& t : q) n += std::binary_search(w.begin(), w.end(), t) ? 1 : 0;
      if (n > 0) hits.push_back({d, static_cast<float>(n)});
    }
    std::stable_sort(hits.begin(), hits.end(),
                     [](const Hit& a, const Hit& b) { return a.score > b.score; });
    if (hits.size() > static_cast<size_t>(k)) hits.resize(k);
    return hits;
  }
  DocumentView document(uint32_t doc) const override {
    return {docs_.at(doc).id, docs_.at(doc).contents};
  }
  uint32_t num_docs() const override { return static_cast<uint32_t>(docs_.size()); }

 private:
  std::vector<Doc> docs_;
};

inline OverlapSearcher small_searcher() {
  return OverlapSearcher({
      {"0", "\"Paris\"\nParis is the capital of France."},
      {"1", "\"Berlin\"\nBerlin is the capital of Germany."},
      {"2", "\"Rome\"\nRome is the capital of Italy and home of the Colosseum."},
      {"3", "\"France\"\nFrance is a country in Europe; its capital is Paris."},
      {"4", "\"Hamlet\"\nHamlet is a tragedy written by William Shakespeare."},
      {"5", "\"Shakespeare\"\nWilliam Shakespeare was an English playwright."},
      {"6", "\"Colosseum\"\nThe Colosseum is an amphitheatre in Rome."},
      {"7", "\"Germany\"\nGermany is a country in central Europe."},
  });
}

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// One client TCP connection to 127.0.0.1:port; every wait is bounded.
class RawConn {
 public:
  explicit RawConn(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool connected() const { return fd_ >= 0; }

  bool send_all(std::string_view data) {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads one response (headers + Content-Length body). False on close, error or timeout.
  bool read_response(HttpResponse& out, int timeout_ms = 5000) {
    out = HttpResponse{};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    size_t end = std::string::npos;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(deadline)) return false;
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12 || status_line.compare(0, 5, "HTTP/") != 0) return false;
    out.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      const std::string line = head.substr(pos, e - pos);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        out.headers[name] = value;
      }
      pos = e + 2;
    }
    if (out.status == 100) return true;
    const size_t len = out.headers.count("content-length")
                           ? static_cast<size_t>(std::stoul(out.headers["content-length"]))
                           : 0;
    while (buf_.size() < len)
      if (!fill(deadline)) return false;
    out.body = buf_.substr(0, len);
    buf_.erase(0, len);
    return true;
  }

  // True when the server closes the connection (EOF or reset) within timeout_ms; data that
  // arrives meanwhile is discarded.
  bool wait_closed(int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            deadline - std::chrono::steady_clock::now())
                                            .count());
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0) continue;
      char tmp[4096];
      const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n <= 0) return true;
    }
  }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) return false;
    char tmp[16384];
    const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buf_;
};

inline std::string http_post(const std::string& target, const std::string& body,
                             const std::string& extra_headers = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

inline std::string http_get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

// A loopback port that was free a moment ago (bind to 0, read it, close).
inline uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace strata::retrieval::testing
