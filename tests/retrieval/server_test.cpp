// Over 450 lines on purpose: one test per promise of the daemon (docs/RELIABILITY.md's table),
// sharing one in-process server fixture.
// The retrieval daemon, run in-process on an ephemeral loopback port against a small in-test
// searcher (and the real sample corpus when ../shared is present).
#include "retrieval/server.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "retrieval/bm25_builder.h"
#include "retrieval/bm25_index.h"
#include "retrieval/scan_searcher.h"
#include "tests/retrieval/server_test_util.h"
#include "tests/test_util.h"

namespace strata::retrieval {
namespace {

using nlohmann::json;
using testing::HttpResponse;
using testing::RawConn;
using testing::http_get;
using testing::http_post;

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : searcher_(testing::small_searcher()) {}
  ~ServerTest() override {
    if (server_) server_->stop();
  }

  static ServerOptions test_options() {
    ServerOptions o;
    o.port = 0;
    o.io_threads = 2;
    o.search_threads = 2;
    o.read_timeout_ms = 3000;
    o.drain_timeout_ms = 3000;
    return o;
  }
  void start(ServerOptions o = test_options()) {
    server_ = std::make_unique<RetrievalServer>(searcher_, o);
    server_->start();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  // POST /retrieve on a fresh connection.
  HttpResponse retrieve(const std::string& body) {
    RawConn c(port_);
    EXPECT_TRUE(c.connected());
    EXPECT_TRUE(c.send_all(http_post("/retrieve", body)));
    HttpResponse r;
    EXPECT_TRUE(c.read_response(r));
    return r;
  }

  // The ids the searcher itself ranks for `q`.
  std::vector<std::string> expected_ids(const std::string& q, int k) const {
    std::vector<std::string> ids;
    for (const Hit& h : searcher_.search(q, k)) ids.emplace_back(searcher_.document(h.doc).id);
    return ids;
  }

  testing::OverlapSearcher searcher_;
  std::unique_ptr<RetrievalServer> server_;
  uint16_t port_ = 0;
};

// Metrics are recorded when the server's write completes, which may be just after the client has
// read the response: poll briefly.
template <class F>
bool eventually(F pred, int timeout_ms = 2000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

const char* kGood = R"({"queries": ["capital of France"], "topk": 2})";

void expect_good(const HttpResponse& r) {
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  ASSERT_EQ(j["result"].size(), 1u);
  ASSERT_EQ(j["result"][0].size(), 2u);
  EXPECT_EQ(j["result"][0][0]["id"], "0");
}

TEST_F(ServerTest, RetrieveWithScoresMatchesTheSearcherInOrder) {
  start();
  const std::vector<std::string> qs = {"capital of France", "Shakespeare tragedy", "Colosseum",
                                       "zzz no match"};
  const json req = {{"queries", qs}, {"topk", 2}, {"return_scores", true}};
  const HttpResponse r = retrieve(req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  const json j = json::parse(r.body);
  ASSERT_EQ(j.size(), 1u);
  ASSERT_EQ(j["result"].size(), qs.size());
  for (size_t i = 0; i < qs.size(); ++i) {
    const auto hits = searcher_.search(qs[i], 2);
    ASSERT_EQ(j["result"][i].size(), hits.size()) << qs[i];
    for (size_t h = 0; h < hits.size(); ++h) {
      const json& e = j["result"][i][h];
      ASSERT_TRUE(e.contains("document") && e.contains("score")) << e.dump();
      EXPECT_EQ(e["document"]["id"], std::string(searcher_.document(hits[h].doc).id));
      EXPECT_EQ(e["document"]["contents"], std::string(searcher_.document(hits[h].doc).contents));
      EXPECT_FLOAT_EQ(e["score"].get<float>(), hits[h].score);
    }
  }
  EXPECT_TRUE(j["result"][3].empty());
  // The serialised key order follows Search-R1: id before contents.
  EXPECT_LT(r.body.find("\"id\""), r.body.find("\"contents\""));
}

TEST_F(ServerTest, RetrieveWithoutScoresGivesBareDocumentsAndDefaultTopk) {
  ServerOptions o = test_options();
  o.limits.default_topk = 3;
  start(o);
  const HttpResponse r = retrieve(R"({"queries": ["capital of France", "William Shakespeare"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  ASSERT_EQ(j["result"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto ids = expected_ids(i == 0 ? "capital of France" : "William Shakespeare", 3);
    ASSERT_EQ(j["result"][i].size(), ids.size());
    for (size_t h = 0; h < ids.size(); ++h) {
      const json& e = j["result"][i][h];
      EXPECT_EQ(e.size(), 2u) << "bare document expected: " << e.dump();
      EXPECT_EQ(e["id"], ids[h]);
      EXPECT_TRUE(e["contents"].is_string());
    }
  }
  // return_scores false explicitly is the same shape.
  const json j2 = json::parse(
      retrieve(R"({"queries": ["capital of France"], "return_scores": false, "topk": 1})").body);
  ASSERT_EQ(j2["result"][0].size(), 1u);
  EXPECT_FALSE(j2["result"][0][0].contains("score"));
  EXPECT_EQ(j2["result"][0][0]["id"], "0");
}

TEST_F(ServerTest, TopkBoundsTheListsAndMayExceedTheMatches) {
  start();
  for (int k : {1, 2, 5, 100}) {
    const json req = {{"queries", {"capital of Italy"}}, {"topk", k}};
    const HttpResponse r = retrieve(req.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body);
    EXPECT_EQ(j["result"][0].size(), expected_ids("capital of Italy", k).size()) << "k=" << k;
    EXPECT_LE(j["result"][0].size(), static_cast<size_t>(k));
  }
}

TEST_F(ServerTest, HealthAndMetrics) {
  start();
  RawConn c(port_);
  ASSERT_TRUE(c.send_all(http_get("/health")));
  HttpResponse r;
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 200);
  const json h = json::parse(r.body);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["documents"], 8);

  const uint64_t before = server_->metrics().requests("/retrieve", 200);
  expect_good(retrieve(kGood));
  expect_good(retrieve(kGood));
  EXPECT_EQ(retrieve("{").status, 400);
  EXPECT_TRUE(eventually([&] {
    return server_->metrics().requests("/retrieve", 200) == before + 2 &&
           server_->metrics().requests("/retrieve", 400) == 1;
  }));

  ASSERT_TRUE(c.send_all(http_get("/metrics")));
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.header("content-type").find("text/plain"), std::string::npos);
  const std::string& m = r.body;
  EXPECT_NE(m.find("strata_retrieval_requests_total{path=\"/retrieve\",status=\"200\"} 2\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("strata_retrieval_requests_total{path=\"/retrieve\",status=\"400\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.find("strata_retrieval_errors_total{kind=\"bad_json\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("strata_retrieval_request_duration_seconds_bucket{le=\"+Inf\"}"),
            std::string::npos);
  EXPECT_NE(m.find("strata_retrieval_request_duration_seconds_count"), std::string::npos);
  EXPECT_NE(m.find("strata_retrieval_in_flight_requests 1\n"), std::string::npos)
      << "the /metrics request itself is in flight";
  EXPECT_NE(m.find("strata_retrieval_documents 8\n"), std::string::npos);
  EXPECT_NE(m.find("strata_retrieval_queries_total 2\n"), std::string::npos);
}

struct BadCase {
  std::string name;
  std::string raw;        // bytes sent on a fresh connection
  int status;             // expected status
  std::string mentions;   // the error text must contain this
  std::string allow;      // expected Allow header (405 only)
};

std::vector<BadCase> bad_cases() {
  const std::string long_query(5000, 'a');
  json many = {{"queries", std::vector<std::string>(300, "paris")}};
  return {
      {"malformed_json", http_post("/retrieve", R"({"queries": ["a")"), 400, "malformed JSON", ""},
      {"not_an_object", http_post("/retrieve", "[1, 2]"), 400, "JSON object", ""},
      {"queries_not_list", http_post("/retrieve", R"({"queries": "paris"})"), 400, "\"queries\"",
       ""},
      {"query_not_string", http_post("/retrieve", R"({"queries": ["paris", 3]})"), 400,
       "queries[1]", ""},
      {"topk_string", http_post("/retrieve", R"({"queries": ["paris"], "topk": "3"})"), 400,
       "\"topk\"", ""},
      {"topk_float", http_post("/retrieve", R"({"queries": ["paris"], "topk": 2.5})"), 400,
       "\"topk\"", ""},
      {"return_scores_string",
       http_post("/retrieve", R"({"queries": ["paris"], "return_scores": "yes"})"), 400,
       "\"return_scores\"", ""},
      {"missing_queries", http_post("/retrieve", R"({"topk": 3})"), 400, "missing \"queries\"",
       ""},
      {"empty_queries", http_post("/retrieve", R"({"queries": []})"), 400, "empty", ""},
      {"empty_body", http_post("/retrieve", ""), 400, "malformed JSON", ""},
      {"topk_zero", http_post("/retrieve", R"({"queries": ["paris"], "topk": 0})"), 400,
       "between 1 and 100", ""},
      {"topk_negative", http_post("/retrieve", R"({"queries": ["paris"], "topk": -4})"), 400,
       "between 1 and 100", ""},
      {"topk_too_big", http_post("/retrieve", R"({"queries": ["paris"], "topk": 101})"), 400,
       "between 1 and 100", ""},
      {"topk_huge", http_post("/retrieve", R"({"queries": ["paris"], "topk": 18446744073709551615})"),
       400, "between 1 and 100", ""},
      {"query_too_long", http_post("/retrieve", json{{"queries", {long_query}}}.dump()), 400,
       "5000 bytes", ""},
      {"too_many_queries", http_post("/retrieve", many.dump()), 400, "too many queries", ""},
      {"invalid_utf8", http_post("/retrieve", "{\"queries\": [\"caf\xC3\"]}"), 400, "UTF-8", ""},
      {"overlong_utf8", http_post("/retrieve", "{\"queries\": [\"\xC0\xAF\"]}"), 400, "UTF-8", ""},
      {"lone_surrogate", http_post("/retrieve", R"({"queries": ["\ud800"]})"), 400,
       "malformed JSON", ""},
      // ~200 KB nested 100,000 deep: once a stack overflow in the error path (SIGSEGV).
      {"deep_nesting",
       http_post("/retrieve", "{\"queries\":[\"a\"],\"topk\":" + std::string(100000, '[') +
                                  std::string(100000, ']') + "}"),
       400, "nested more than", ""},
      {"body_too_large",
       "POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n{\"queries\"", 413,
       "larger than", ""},
      {"unknown_path", http_get("/nope"), 404, "no such path", ""},
      {"wrong_method_retrieve", http_get("/retrieve"), 405, "not allowed", "POST"},
      {"wrong_method_health", http_post("/health", "{}"), 405, "not allowed", "GET"},
      {"garbage", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n", 24),
       400, "malformed HTTP", ""},
      {"text_garbage", "HELLO THERE\r\n\r\n", 400, "malformed HTTP", ""},
      {"bad_content_length",
       "POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "malformed HTTP",
       ""},
      {"header_too_large",
       "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n", 431,
       "headers are larger", ""},
  };
}

TEST_F(ServerTest, EveryBadInputGetsAJsonErrorAndTheNextRequestSucceeds) {
  start();
  for (const BadCase& bc : bad_cases()) {
    SCOPED_TRACE(bc.name);
    RawConn c(port_);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send_all(bc.raw));
    HttpResponse r;
    ASSERT_TRUE(c.read_response(r)) << "no response";
    EXPECT_EQ(r.status, bc.status) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    json j;
    ASSERT_NO_THROW(j = json::parse(r.body)) << r.body;
    ASSERT_TRUE(j.contains("error")) << r.body;
    EXPECT_NE(j["error"].get<std::string>().find(bc.mentions), std::string::npos)
        << "error text: " << j["error"];
    if (!bc.allow.empty()) {
      EXPECT_EQ(r.header("allow"), bc.allow);
    }
    // Same connection when the server kept it open, otherwise a fresh one.
    if (r.header("connection") == "close") {
      EXPECT_TRUE(c.wait_closed(3000)) << "server said close but kept the connection";
      expect_good(retrieve(kGood));
    } else {
      ASSERT_TRUE(c.send_all(http_post("/retrieve", kGood)));
      HttpResponse ok;
      ASSERT_TRUE(c.read_response(ok));
      expect_good(ok);
    }
  }
  EXPECT_GE(server_->metrics().errors("bad_field"), 4u);
  EXPECT_EQ(server_->metrics().errors("body_too_large"), 1u);
  EXPECT_EQ(server_->metrics().errors("invalid_utf8"), 2u);
}

TEST_F(ServerTest, SearcherExceptionIsA500AndTheServerKeepsServing) {
  start();
  const HttpResponse r = retrieve(R"({"queries": ["__throw__"]})");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(json::parse(r.body)["error"].get<std::string>().find("exploded on purpose"),
            std::string::npos);
  expect_good(retrieve(kGood));
  EXPECT_EQ(server_->metrics().errors("internal"), 1u);
}

TEST_F(ServerTest, SlowAndHalfClosedClientsAreCutOffWhileOthersAreServed) {
  ServerOptions o = test_options();
  o.read_timeout_ms = 1000;
  start(o);
  const auto t0 = std::chrono::steady_clock::now();
  RawConn half_header(port_);
  ASSERT_TRUE(half_header.send_all("POST /retrieve HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  RawConn half_body(port_);
  ASSERT_TRUE(half_body.send_all(
      "POST /retrieve HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"queries\""));
  RawConn half_closed(port_);
  ASSERT_TRUE(half_closed.send_all("POST /retrieve HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"));
  half_closed.shutdown_write();
  EXPECT_TRUE(half_closed.wait_closed(2000)) << "a half-closed client must be let go at once";

  // Others are served while the slow ones hang.
  for (int i = 0; i < 5; ++i) expect_good(retrieve(kGood));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900));

  EXPECT_TRUE(half_header.wait_closed(4000));
  EXPECT_TRUE(half_body.wait_closed(4000));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(950));
  EXPECT_LT(waited, std::chrono::milliseconds(4000));
  EXPECT_TRUE(eventually([&] { return server_->metrics().errors("read_timeout") >= 2; }));
  expect_good(retrieve(kGood));
}

TEST_F(ServerTest, IncompleteRequestGets408) {
  ServerOptions o = test_options();
  o.read_timeout_ms = 300;
  start(o);
  RawConn c(port_);
  ASSERT_TRUE(c.send_all(
      "POST /retrieve HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"queries\""));
  HttpResponse r;
  ASSERT_TRUE(c.read_response(r, 3000));
  EXPECT_EQ(r.status, 408);
  EXPECT_NE(json::parse(r.body)["error"].get<std::string>().find("not received whole within 300 ms"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(c.wait_closed(3000));
  EXPECT_EQ(server_->metrics().errors("read_timeout"), 1u);
  expect_good(retrieve(kGood));
}

TEST_F(ServerTest, ConnectionsBeyondTheLimitGet503AndTheOthersAreServed) {
  ServerOptions o = test_options();
  o.max_connections = 2;
  o.retry_after_s = 7;
  start(o);
  RawConn a(port_), b(port_);  // keep-alive connections holding the two places
  HttpResponse r;
  for (RawConn* conn : {&a, &b}) {
    ASSERT_TRUE(conn->send_all(http_post("/retrieve", kGood)));
    ASSERT_TRUE(conn->read_response(r));
    expect_good(r);
  }
  RawConn c(port_);
  ASSERT_TRUE(c.send_all(http_post("/retrieve", kGood)));
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("retry-after"), "7");
  EXPECT_NE(r.body.find("too many connections"), std::string::npos) << r.body;
  EXPECT_TRUE(c.wait_closed(3000));
  EXPECT_EQ(server_->metrics().errors("too_many_connections"), 1u);
  // The open connections keep working; once one closes, a new connection is served.
  ASSERT_TRUE(a.send_all(http_post("/retrieve", kGood)));
  ASSERT_TRUE(a.read_response(r));
  expect_good(r);
  b.close();
  ASSERT_TRUE(eventually([&] {
    RawConn d(port_);
    HttpResponse x;
    return d.send_all(http_post("/retrieve", kGood)) && d.read_response(x) && x.status == 200;
  }));
}

TEST_F(ServerTest, IdleKeepAliveConnectionWithoutBytesIsClosedQuietly) {
  ServerOptions o = test_options();
  o.read_timeout_ms = 300;
  start(o);
  RawConn c(port_);
  ASSERT_TRUE(c.send_all(http_post("/retrieve", kGood)));
  HttpResponse r;
  ASSERT_TRUE(c.read_response(r));
  expect_good(r);
  EXPECT_TRUE(c.wait_closed(2000));
  EXPECT_EQ(server_->metrics().errors("read_timeout"), 0u);
}

TEST_F(ServerTest, SlowSearchDoesNotStallOtherConnections) {
  ServerOptions o = test_options();
  o.io_threads = 1;
  o.search_threads = 2;
  start(o);
  RawConn slow(port_);
  ASSERT_TRUE(slow.send_all(http_post("/retrieve", R"({"queries": ["__sleep__"]})")));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto t0 = std::chrono::steady_clock::now();
  RawConn other(port_);
  ASSERT_TRUE(other.send_all(http_get("/health")));
  HttpResponse r;
  ASSERT_TRUE(other.read_response(r));
  EXPECT_EQ(r.status, 200);
  ASSERT_TRUE(other.send_all(http_post("/retrieve", kGood)));
  ASSERT_TRUE(other.read_response(r));
  expect_good(r);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(600))
      << "the 800 ms search must not hold the only I/O thread";
  ASSERT_TRUE(slow.read_response(r));
  EXPECT_EQ(r.status, 200);
}

TEST_F(ServerTest, DelayMsWaitsOnATimerWithoutBlockingThreads) {
  ServerOptions o = test_options();
  o.io_threads = 1;
  o.search_threads = 1;
  o.delay_ms = 300;
  start(o);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<RawConn>> conns;
  for (int i = 0; i < 8; ++i) {
    conns.push_back(std::make_unique<RawConn>(port_));
    ASSERT_TRUE(conns.back()->send_all(http_post("/retrieve", kGood)));
  }
  for (auto& c : conns) {
    HttpResponse r;
    ASSERT_TRUE(c->read_response(r));
    expect_good(r);
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::milliseconds(1800)) << "8 x 300 ms delays must overlap (2.4 s)";
}

TEST_F(ServerTest, OverloadGets503) {
  ServerOptions o = test_options();
  o.delay_ms = 400;
  o.max_pending_requests = 1;
  start(o);
  RawConn a(port_);
  ASSERT_TRUE(a.send_all(http_post("/retrieve", kGood)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const HttpResponse b = retrieve(kGood);
  EXPECT_EQ(b.status, 503);
  EXPECT_EQ(b.header("retry-after"), "1");
  HttpResponse r;
  ASSERT_TRUE(a.read_response(r));
  expect_good(r);
  expect_good(retrieve(kGood));
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  RawConn c(port_);
  ASSERT_TRUE(c.send_all(http_post("/retrieve", R"({"queries": ["Berlin"], "topk": 1})") +
                         http_get("/health") +
                         http_post("/retrieve", R"({"queries": ["Hamlet"], "topk": 1})")));
  HttpResponse r1, r2, r3;
  ASSERT_TRUE(c.read_response(r1));
  ASSERT_TRUE(c.read_response(r2));
  ASSERT_TRUE(c.read_response(r3));
  EXPECT_EQ(json::parse(r1.body)["result"][0][0]["id"], "1");
  EXPECT_EQ(json::parse(r2.body)["status"], "ok");
  EXPECT_EQ(json::parse(r3.body)["result"][0][0]["id"], "4");
}

TEST_F(ServerTest, ExpectContinueIsHonoured) {
  start();
  RawConn c(port_);
  const std::string body = kGood;
  ASSERT_TRUE(c.send_all("POST /retrieve HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  HttpResponse r;
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 100);
  ASSERT_TRUE(c.send_all(body));
  ASSERT_TRUE(c.read_response(r));
  expect_good(r);
}

TEST_F(ServerTest, ManyConcurrentKeepAliveClientsGetCorrectAnswers) {
  start();
  const std::vector<std::string> qs = {"capital of France", "Shakespeare", "Colosseum Rome",
                                       "Germany Europe", "Hamlet tragedy", "Berlin"};
  std::vector<std::vector<std::string>> expected;
  for (const auto& q : qs) expected.push_back(expected_ids(q, 3));
  constexpr int kThreads = 32, kRequests = 20;
  std::atomic<int> good{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      RawConn c(port_);
      for (int i = 0; i < kRequests; ++i) {
        const size_t qi = (t + i) % qs.size();
        const json req = {{"queries", {qs[qi]}}, {"topk", 3}};
        HttpResponse r;
        if (!c.send_all(http_post("/retrieve", req.dump())) || !c.read_response(r) ||
            r.status != 200) {
          ++bad;
          return;
        }
        const json j = json::parse(r.body);
        std::vector<std::string> ids;
        for (const auto& e : j["result"][0]) ids.push_back(e["id"]);
        (ids == expected[qi] ? good : bad)++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(good.load(), kThreads * kRequests);
  EXPECT_TRUE(eventually([&] {
    return server_->metrics().requests("/retrieve", 200) ==
           static_cast<uint64_t>(kThreads * kRequests);
  })) << server_->metrics().requests("/retrieve", 200);
}

TEST_F(ServerTest, StopFinishesInFlightRequestsThenRefusesConnections) {
  ServerOptions o = test_options();
  o.delay_ms = 400;
  start(o);
  RawConn busy(port_);
  ASSERT_TRUE(busy.send_all(http_post("/retrieve", kGood)));
  RawConn idle(port_);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::thread stopper([&] { server_->stop(); });
  HttpResponse r;
  ASSERT_TRUE(busy.read_response(r));
  expect_good(r);
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(idle.wait_closed(3000));
  stopper.join();
  EXPECT_FALSE(server_->running());
  RawConn after(port_);
  EXPECT_FALSE(after.connected());
}

TEST_F(ServerTest, APortInUseIsReportedAtStart) {
  start();
  ServerOptions o = test_options();
  o.port = port_;
  RetrievalServer second(searcher_, o);
  try {
    second.start();
    FAIL() << "two servers bound the same port";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot bind"), std::string::npos) << e.what();
  }
  expect_good(retrieve(kGood));
}

TEST(ServerOptionsTest, BadOptionsAreRejectedWithTheValue) {
  ServerOptions o;
  o.limits.max_topk = 0;
  try {
    validate(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_topk"), std::string::npos);
  }
  ServerOptions p;
  p.limits.default_topk = 200;
  EXPECT_THROW(validate(p), Error);
}

TEST(ServerRealCorpus, ScanSearcherOverTheWikiSample) {
  STRATA_REQUIRE_SHARED(dir);
  const ScanSearcher searcher = ScanSearcher::from_jsonl(dir + "/wiki18_sample_1000.jsonl");
  ASSERT_EQ(searcher.num_docs(), 1000u);
  ServerOptions o;
  o.port = 0;
  RetrievalServer server(searcher, o);
  server.start();
  RawConn c(server.port());
  ASSERT_TRUE(c.send_all(http_post(
      "/retrieve", R"({"queries": ["Evan Morris lobbyist Genentech"], "topk": 3,
                      "return_scores": true})")));
  HttpResponse r;
  ASSERT_TRUE(c.read_response(r));
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  ASSERT_GE(j["result"][0].size(), 1u);
  ASSERT_LE(j["result"][0].size(), 3u);
  EXPECT_EQ(j["result"][0][0]["document"]["id"], "0");
  EXPECT_EQ(j["result"][0][0]["document"]["contents"].get<std::string>().rfind("\"Evan Morris\"\n", 0),
            0u);
  server.stop();
}

TEST(ServerRealCorpus, Bm25IndexOverTheWikiSample) {
  STRATA_REQUIRE_SHARED(dir);
  strata::testing::TempDir tmp;
  BuildOptions bo;
  bo.threads = 1;
  bo.progress = false;
  build_index(dir + "/wiki18_sample_1000.jsonl", tmp.file("index"), bo);
  const Bm25Index index(tmp.file("index"));
  ASSERT_EQ(index.num_docs(), 1000u);
  ServerOptions o;
  o.port = 0;
  RetrievalServer server(index, o);
  server.start();
  const std::vector<std::string> qs = {"Evan Morris lobbyist Genentech", "who was the president",
                                       "football club in England"};
  const json req = {{"queries", qs}, {"topk", 5}, {"return_scores", true}};
  RawConn c(server.port());
  ASSERT_TRUE(c.send_all(http_post("/retrieve", req.dump())));
  HttpResponse r;
  ASSERT_TRUE(c.read_response(r));
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  ASSERT_EQ(j["result"].size(), qs.size());
  for (size_t i = 0; i < qs.size(); ++i) {
    const auto hits = index.search(qs[i], 5);
    ASSERT_EQ(j["result"][i].size(), hits.size()) << qs[i];
    for (size_t h = 0; h < hits.size(); ++h) {
      EXPECT_EQ(j["result"][i][h]["document"]["id"], std::string(index.document(hits[h].doc).id));
      EXPECT_FLOAT_EQ(j["result"][i][h]["score"].get<float>(), hits[h].score);
    }
  }
  EXPECT_EQ(j["result"][0][0]["document"]["id"], "0");
  ASSERT_TRUE(c.send_all(http_get("/health")));
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(json::parse(r.body)["documents"], 1000);
  server.stop();
}

// ---- the real binary -------------------------------------------------------------------------

// Runs retrieval_server with `args`; returns its pid (or -1).
pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::fopen(log_path.c_str(), "w");
    if (f) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// waitpid with a deadline; kills the child (and reports -1) when it does not exit in time.
int wait_exit(pid_t pid, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

// Starts the binary on a two-passage corpus (a BM25 index, or the --scan-corpus fallback),
// checks /health, sends SIGTERM with a request in flight and expects that request answered and
// exit code 0.
void sigterm_round_trip(bool use_index) {
  const std::string exe = strata::testing::bin("retrieval_server");
  ASSERT_TRUE(std::filesystem::exists(exe)) << exe;
  strata::testing::TempDir tmp;
  strata::testing::write_file(
      tmp.file("corpus.jsonl"),
      "{\"id\": \"0\", \"contents\": \"\\\"Paris\\\"\\nParis is the capital of France.\"}\n"
      "{\"id\": \"1\", \"contents\": \"\\\"Berlin\\\"\\nBerlin is the capital of Germany.\"}\n");
  std::vector<std::string> source = {"--scan-corpus", tmp.file("corpus.jsonl")};
  if (use_index) {
    BuildOptions bo;
    bo.threads = 1;
    bo.progress = false;
    build_index(tmp.file("corpus.jsonl"), tmp.file("index"), bo);
    source = {"--index", tmp.file("index")};
  }
  const std::string port_file = tmp.file("port");
  const pid_t pid = spawn({exe, source[0], source[1], "--port", "0", "--port-file", port_file,
                           "--delay-ms", "300"},
                          tmp.file("log.txt"));
  ASSERT_GT(pid, 0);
  uint16_t port = 0;
  for (int i = 0; i < 500 && port == 0; ++i) {  // up to 10 s
    if (std::filesystem::exists(port_file))
      port = static_cast<uint16_t>(std::stoi(strata::testing::read_file(port_file)));
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (port == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    FAIL() << "no port file; log:\n" << strata::testing::read_file(tmp.file("log.txt"));
  }
  RawConn c(port);
  ASSERT_TRUE(c.send_all(http_get("/health")));
  HttpResponse r;
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(json::parse(r.body)["documents"], 2);
  // A request in flight when SIGTERM arrives is still answered.
  ASSERT_TRUE(c.send_all(http_post("/retrieve", R"({"queries": ["capital of France"]})")));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["result"][0][0]["id"], "0");
  EXPECT_EQ(wait_exit(pid, 10000), 0) << strata::testing::read_file(tmp.file("log.txt"));
  const std::string log = strata::testing::read_file(tmp.file("log.txt"));
  EXPECT_NE(log.find("listening on 127.0.0.1:" + std::to_string(port)), std::string::npos) << log;
}

TEST(ServerBinary, SigtermWithABm25IndexExitsZero) { sigterm_round_trip(true); }
TEST(ServerBinary, SigtermWithTheScanFallbackExitsZero) { sigterm_round_trip(false); }

TEST(ServerBinary, BadUsageExitsTwo) {
  const std::string exe = strata::testing::bin("retrieval_server");
  strata::testing::TempDir tmp;
  const pid_t pid = spawn({exe, "--port", "0"}, tmp.file("log.txt"));  // neither index nor corpus
  ASSERT_GT(pid, 0);
  EXPECT_EQ(wait_exit(pid, 10000), 2);
}

}  // namespace
}  // namespace strata::retrieval
