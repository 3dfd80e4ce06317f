// Over 450 lines on purpose: the wire format's parser and the client's retry, timeout and
// back-pressure behaviour against one in-process server fixture.
// The libcurl retrieval client: response parsing, retries and their limits, back-pressure, and a
// server restarted on the same port while requests are in flight.
#include "retrieval/client.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "retrieval/client_asio.h"
#include "retrieval/protocol.h"
#include "retrieval/server.h"
#include "tests/retrieval/server_test_util.h"

namespace strata::retrieval {
namespace {

// ---- wire format (no network) ---------------------------------------------------------------

TEST(RetrieveProtocol, ParsesResponsesWithAndWithoutScores) {
  std::vector<std::vector<Document>> out;
  std::string err;
  ASSERT_TRUE(parse_retrieve_response(
      R"({"result": [[{"document": {"id": "7", "contents": "\"T\"\nx"}, "score": 1.5},
                      {"document": {"id": 8, "contents": "y"}, "score": 0.25}], []]})",
      2, out, err))
      << err;
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out[0].size(), 2u);
  EXPECT_EQ(out[0][0].id, "7");
  EXPECT_EQ(out[0][0].contents, "\"T\"\nx");
  EXPECT_FLOAT_EQ(out[0][0].score, 1.5f);
  EXPECT_EQ(out[0][1].id, "8");  // integer ids become strings
  EXPECT_TRUE(out[1].empty());

  ASSERT_TRUE(parse_retrieve_response(R"({"result": [[{"id": "3", "contents": "c"}]]})", 1, out,
                                      err))
      << err;
  ASSERT_EQ(out[0].size(), 1u);
  EXPECT_EQ(out[0][0].id, "3");
  EXPECT_EQ(out[0][0].score, 0.0f);
}

TEST(RetrieveProtocol, RejectsMalformedResponses) {
  std::vector<std::vector<Document>> out;
  std::string err;
  EXPECT_FALSE(parse_retrieve_response("not json", 1, out, err));
  EXPECT_NE(err.find("not JSON"), std::string::npos);
  EXPECT_FALSE(parse_retrieve_response(R"({"results": []})", 1, out, err));
  EXPECT_NE(err.find("\"result\""), std::string::npos);
  EXPECT_FALSE(parse_retrieve_response(R"({"result": [[]]})", 2, out, err));
  EXPECT_NE(err.find("1 result lists for 2 queries"), std::string::npos);
  EXPECT_FALSE(parse_retrieve_response(R"({"result": [[{"id": "1"}]]})", 1, out, err));
  EXPECT_FALSE(parse_retrieve_response(R"({"result": [[{"document": {"id": "1", "contents": "c"},
                                                         "score": "high"}]]})",
                                       1, out, err));
  EXPECT_NE(err.find("score"), std::string::npos);
}

TEST(RetrieveProtocol, RequestBodyRoundTrips) {
  RetrieveRequest req{{"who wrote hamlet", "caf\xC3\xA9"}, 5, true};
  RetrieveRequest back;
  RequestError err;
  ASSERT_TRUE(parse_retrieve_request(make_retrieve_body(req), RequestLimits{}, back, err))
      << err.message;
  EXPECT_EQ(back.queries, req.queries);
  EXPECT_EQ(back.topk, 5);
  EXPECT_TRUE(back.return_scores);
  req.topk = 0;  // omitted: the server's default applies
  RequestLimits limits;
  limits.default_topk = 7;
  ASSERT_TRUE(parse_retrieve_request(make_retrieve_body(req), limits, back, err));
  EXPECT_EQ(back.topk, 7);
}

TEST(RetrieveProtocol, DeepNestingAndHugeBadValuesAreRefusedBriefly) {
  RetrieveRequest out;
  RequestError err;
  const std::string deep = "{\"queries\":[\"a\"],\"return_scores\":" + std::string(100000, '[') +
                           std::string(100000, ']') + "}";
  EXPECT_FALSE(parse_retrieve_request(deep, RequestLimits{}, out, err));
  EXPECT_NE(err.message.find("nested more than 32 levels"), std::string::npos) << err.message;
  // Brackets inside strings do not count.
  const std::string in_string = "{\"queries\":[\"" + std::string(100, '[') + "\\\"\"]}";
  EXPECT_TRUE(parse_retrieve_request(in_string, RequestLimits{}, out, err)) << err.message;
  EXPECT_EQ(out.queries.at(0), std::string(100, '[') + "\"");
  // A 600 KB bad value is named, not echoed whole.
  const std::string huge = "{\"queries\":[\"a\"],\"topk\":\"" + std::string(600000, 'x') + "\"}";
  EXPECT_FALSE(parse_retrieve_request(huge, RequestLimits{}, out, err));
  EXPECT_NE(err.message.find("\"topk\" must be an integer"), std::string::npos);
  EXPECT_NE(err.message.find("(600002 bytes)"), std::string::npos) << err.message.substr(0, 300);
  EXPECT_LT(err.message.size(), 400u);
}

TEST(RetrieveProtocol, Utf8Validation) {
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  size_t at = 0;
  EXPECT_FALSE(valid_utf8("ab\xC3", &at));
  EXPECT_EQ(at, 2u);
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xFF"));
}

// ---- against an in-process server ---------------------------------------------------------

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() : searcher_(testing::small_searcher()) {}
  ~ClientTest() override {
    if (server_) server_->stop();
  }
  void start(ServerOptions o = {}, int port = 0) {
    o.port = port;
    o.io_threads = 2;
    o.search_threads = 2;
    o.drain_timeout_ms = 3000;
    server_ = std::make_unique<RetrievalServer>(searcher_, o);
    server_->start();
    port_ = server_->port();
  }
  ClientOptions client_options() const {
    ClientOptions c;
    c.url = "http://127.0.0.1:" + std::to_string(port_) + "/retrieve";
    c.timeout_ms = 5000;
    c.max_attempts = 3;
    c.backoff_initial_ms = 10;
    c.backoff_max_ms = 50;
    c.seed = 7;
    return c;
  }

  testing::OverlapSearcher searcher_;
  std::unique_ptr<RetrievalServer> server_;
  uint16_t port_ = 0;
};

TEST_F(ClientTest, RetrieveReturnsTypedDocumentsInQueryOrder) {
  start();
  RetrievalClient client(client_options());
  const RetrieveResult r = client.retrieve({{"capital of France", "Shakespeare"}, 2, true});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.http_status, 200);
  ASSERT_EQ(r.results.size(), 2u);
  const std::vector<std::string> qs = {"capital of France", "Shakespeare"};
  for (size_t i = 0; i < 2; ++i) {
    const auto hits = searcher_.search(qs[i], 2);
    ASSERT_EQ(r.results[i].size(), hits.size());
    for (size_t h = 0; h < hits.size(); ++h) {
      EXPECT_EQ(r.results[i][h].id, std::string(searcher_.document(hits[h].doc).id));
      EXPECT_EQ(r.results[i][h].contents, std::string(searcher_.document(hits[h].doc).contents));
      EXPECT_FLOAT_EQ(r.results[i][h].score, hits[h].score);
    }
  }
  const RetrieveResult bare = client.retrieve({{"capital of France"}, 0, false});
  ASSERT_TRUE(bare.ok) << bare.error;
  ASSERT_EQ(bare.results[0].size(), 3u);  // the server's default topk
  EXPECT_EQ(bare.results[0][0].id, "0");
  EXPECT_EQ(bare.results[0][0].score, 0.0f);
}

TEST_F(ClientTest, SequentialRequestsReuseOneConnection) {
  start();
  RetrievalClient client(client_options());
  for (int i = 0; i < 30; ++i) {
    const RetrieveResult r = client.retrieve({{"Berlin"}, 1, false});
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.results[0][0].id, "1");
  }
  EXPECT_EQ(server_->metrics().connections_accepted(), 1u);
}

TEST_F(ClientTest, BlockingRetrieveFromManyThreadsAtOnce) {
  start();
  RetrievalClient client(client_options());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        const RetrieveResult r = client.retrieve({{"Hamlet", "Germany"}, 1, true});
        if (r.ok && r.results[0][0].id == "4" && r.results[1][0].id == "1") ++ok;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 160);
}

TEST_F(ClientTest, AsioHandlerRunsOnTheGivenExecutor) {
  start();
  RetrievalClient client(client_options());
  boost::asio::io_context ioc;
  auto guard = boost::asio::make_work_guard(ioc);
  std::thread::id ran_on;
  RetrieveResult got;
  async_retrieve_on(client, {{"Colosseum"}, 1, false}, ioc.get_executor(),
                    [&](RetrieveResult r) {
                      ran_on = std::this_thread::get_id();
                      got = std::move(r);
                      guard.reset();
                    });
  ioc.run_for(std::chrono::seconds(10));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  ASSERT_TRUE(got.ok) << got.error;
  EXPECT_EQ(got.results[0][0].id, "2");  // ties go to the smaller document number
}

TEST_F(ClientTest, ClientErrorsAreNotRetried) {
  start();
  RetrievalClient client(client_options());
  const RetrieveResult r = client.retrieve({{"paris"}, 1000, true});  // topk above the limit
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.http_status, 400);
  EXPECT_NE(r.error.find("\"topk\" must be between 1 and 100"), std::string::npos) << r.error;
  EXPECT_EQ(server_->metrics().errors("bad_topk"), 1u);  // counted before the answer is sent
}

TEST_F(ClientTest, ServerErrorsAreRetriedThenReported) {
  start();
  RetrievalClient client(client_options());
  const RetrieveResult r = client.retrieve({{"__throw__"}, 1, true});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(r.http_status, 500);
  EXPECT_NE(r.error.find("after 3 attempts"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("exploded on purpose"), std::string::npos) << r.error;
  EXPECT_EQ(server_->metrics().errors("internal"), 3u);
}

TEST_F(ClientTest, OverloadedServersRetryAfterIsHonoured) {
  ServerOptions so;
  so.delay_ms = 600;  // the first request holds the only pending slot for 600 ms
  so.max_pending_requests = 1;
  so.retry_after_s = 1;
  start(so);
  ClientOptions o = client_options();
  o.max_attempts = 2;
  o.backoff_max_ms = 5000;  // the cap on a Retry-After wait
  RetrievalClient busy(client_options()), client(o);
  RetrieveResult first;
  std::thread holder([&] { first = busy.retrieve({{"paris"}, 1, true}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const auto t0 = std::chrono::steady_clock::now();
  const RetrieveResult r = client.retrieve({{"paris"}, 1, true});
  const auto waited = std::chrono::steady_clock::now() - t0;
  holder.join();
  EXPECT_TRUE(first.ok) << first.error;
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 2);  // 503, then (after Retry-After: 1, not the 10 ms backoff) served
  EXPECT_GE(waited, std::chrono::milliseconds(950));
  EXPECT_EQ(server_->metrics().errors("overloaded"), 1u);
}

TEST_F(ClientTest, ConnectionRefusedIsRetriedThenReported) {
  port_ = testing::free_port();
  ClientOptions o = client_options();
  o.max_attempts = 4;
  RetrievalClient client(o);
  const auto t0 = std::chrono::steady_clock::now();
  const RetrieveResult r = client.retrieve({{"paris"}, 1, true});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 4);
  EXPECT_EQ(r.http_status, 0);
  EXPECT_NE(r.error.find("connect"), std::string::npos) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST_F(ClientTest, SlowAnswersTimeOutPerAttempt) {
  ServerOptions so;
  so.delay_ms = 600;
  start(so);
  ClientOptions o = client_options();
  o.timeout_ms = 100;
  o.max_attempts = 2;
  RetrievalClient client(o);
  const RetrieveResult r = client.retrieve({{"paris"}, 1, true});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_NE(r.error.find("imeout"), std::string::npos) << r.error;
  EXPECT_LT(r.seconds, 1.0);
}

TEST_F(ClientTest, ManyRequestsInFlightWithBackPressure) {
  start();
  ClientOptions o = client_options();
  o.max_in_flight = 8;
  RetrievalClient client(o);
  const std::vector<std::string> qs = {"capital of France", "Hamlet", "Colosseum", "Germany"};
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, ok = 0;
  constexpr int kRequests = 200;
  for (int i = 0; i < kRequests; ++i) {
    const std::string q = qs[i % qs.size()];
    const std::string want = std::string(searcher_.document(searcher_.search(q, 1)[0].doc).id);
    client.async_retrieve({{q}, 1, false}, [&, want](RetrieveResult r) {
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      if (r.ok && r.results.size() == 1 && r.results[0].size() == 1 && r.results[0][0].id == want)
        ++ok;
      cv.notify_all();
    });
    EXPECT_LE(client.in_flight(), 8);
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return done == kRequests; }))
      << done << " of " << kRequests << " completed";
  EXPECT_EQ(ok, kRequests);
  EXPECT_LE(client.peak_in_flight(), 8);
  EXPECT_GE(client.peak_in_flight(), 2) << "requests should overlap";
}

TEST_F(ClientTest, ServerRestartedOnTheSamePortMidStream) {
  start();
  const uint16_t port = port_;
  ClientOptions o = client_options();
  o.max_attempts = 40;
  o.backoff_initial_ms = 20;
  o.backoff_max_ms = 100;
  o.max_in_flight = 4;
  RetrievalClient client(o);

  std::mutex mu;
  std::condition_variable cv;
  int done = 0, ok = 0, retried = 0;
  std::vector<std::string> errors;
  std::atomic<bool> producing{true};
  std::atomic<int> submitted{0};
  std::thread producer([&] {
    while (producing.load()) {
      ++submitted;
      client.async_retrieve({{"capital of France"}, 1, false}, [&](RetrieveResult r) {
        std::lock_guard<std::mutex> lock(mu);
        ++done;
        if (r.ok && r.results[0][0].id == "0") {
          ++ok;
        } else {
          errors.push_back(r.error);
        }
        if (r.attempts > 1) ++retried;
        cv.notify_all();
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server_->stop();
  server_.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // requests fail and back off
  start({}, port);
  ASSERT_EQ(port_, port);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  producing = false;
  producer.join();

  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return done == submitted.load(); }))
      << done << " of " << submitted.load();
  EXPECT_EQ(ok, done) << (errors.empty() ? "" : errors.front());
  EXPECT_GT(retried, 0) << "some requests must have met the stopped server";
  EXPECT_GT(server_->metrics().requests("/retrieve", 200), 0u);
}

TEST_F(ClientTest, DestroyingTheClientFailsPendingRequests) {
  ServerOptions so;
  so.delay_ms = 800;
  start(so);
  std::atomic<int> called{0};
  std::string error;
  {
    RetrievalClient client(client_options());
    client.async_retrieve({{"paris"}, 1, true}, [&](RetrieveResult r) {
      error = r.error;
      EXPECT_FALSE(r.ok);
      ++called;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(called.load(), 1);
  EXPECT_NE(error.find("shut down"), std::string::npos) << error;
}

TEST_F(ClientTest, BlockingRetrieveFromACompletionHandlerIsRefused) {
  start();
  RetrievalClient client(client_options());
  std::promise<RetrieveResult> inner;
  client.async_retrieve({{"paris"}, 1, true}, [&](RetrieveResult) {
    inner.set_value(client.retrieve({{"paris"}, 1, true}));
  });
  auto f = inner.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const RetrieveResult r = f.get();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("deadlock"), std::string::npos);
}

// The health probe: a typed result, and one error type (programs exit with 3 on it).
TEST_F(ClientTest, HealthProbeIsTyped) {
  start();
  RetrievalClient client(client_options());
  const HealthResult ok = client.health();
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.status, HealthResult::Status::kOk);
  EXPECT_EQ(ok.health_status, 200);
  EXPECT_EQ(ok.health_url, "http://127.0.0.1:" + std::to_string(port_) + "/health");
  EXPECT_NO_THROW(require_healthy(ok, "retriever"));

  // A path the server does not serve: /health answers 404 and so does the probe query.
  const HealthResult broken = check_health("http://127.0.0.1:" + std::to_string(port_) + "/nope/retrieve");
  EXPECT_EQ(broken.status, HealthResult::Status::kNotWorking);
  EXPECT_EQ(broken.health_status, 404);
  EXPECT_EQ(broken.retrieve_status, 404);
  EXPECT_THROW(require_healthy(broken, "retriever"), UnreachableError);

  const uint16_t dead = testing::free_port();
  const auto t0 = std::chrono::steady_clock::now();
  const HealthResult down = check_health("http://127.0.0.1:" + std::to_string(dead) + "/retrieve");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_EQ(down.status, HealthResult::Status::kUnreachable);
  EXPECT_EQ(down.health_status, 0);
  EXPECT_FALSE(down.error.empty());
  try {
    require_healthy(down, "--retriever");
    ADD_FAILURE() << "no error";
  } catch (const UnreachableError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("--retriever: cannot reach the retrieval daemon at http://127.0.0.1:" + std::to_string(dead) +
                             "/health (",
                         0),
              0u)
        << what;
    EXPECT_NE(what.find("retrieval_server"), std::string::npos) << "says how to start one: " << what;
  }
}

TEST(ClientOptionsTest, BadOptionsAreRejected) {
  ClientOptions o;
  o.max_attempts = 0;
  EXPECT_THROW(validate(o), Error);
  ClientOptions p;
  p.jitter = 2;
  try {
    validate(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("jitter"), std::string::npos);
  }
}

}  // namespace
}  // namespace strata::retrieval
