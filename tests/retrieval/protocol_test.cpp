// Regressions the fuzzers (tests/fuzz) found in the /retrieve wire format, one test each, with
// the input that found them.
#include "retrieval/protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata::retrieval {
namespace {

// fuzz_retrieve_request: a number too large for a double made nlohmann throw out_of_range, which
// is no parse_error: it escaped parse_retrieve_request (the daemon answered 500, not 400), and the
// client's response parser alike.
TEST(RetrieveProtocolFuzz, NumberOverflowIsABadJson400NotAnException) {
  for (const char* body : {R"({"queries": ["a"], "topk": 1e400, "return_scores": "yes"})",
                           R"({"queries": ["a"], "x": -1e999})", "1e400"}) {
    RetrieveRequest req;
    RequestError err;
    bool ok = true;
    EXPECT_NO_THROW(ok = parse_retrieve_request(body, RequestLimits{}, req, err)) << body;
    EXPECT_FALSE(ok) << body;
    EXPECT_EQ(err.kind, "bad_json") << body;
    EXPECT_NE(err.message.find("number overflow"), std::string::npos) << err.message;
  }
  std::vector<std::vector<Document>> out;
  std::string error;
  bool ok = true;
  EXPECT_NO_THROW(ok = parse_retrieve_response(R"({"result": [[{"id": "1", "contents": "x"}]], "t": 1e400})",
                                               1, out, error));
  EXPECT_FALSE(ok);
  EXPECT_NE(error.find("number overflow"), std::string::npos) << error;
}

// The parser's own message quotes the token it read; a long bad token is cut like a bad value.
TEST(RetrieveProtocolFuzz, MalformedJsonMessagesAreBounded) {
  const std::string body = R"({"queries": [")" + std::string(100000, 'a') + "\x01\"]}";
  RetrieveRequest req;
  RequestError err;
  ASSERT_FALSE(parse_retrieve_request(body, RequestLimits{}, req, err));
  EXPECT_EQ(err.kind, "bad_json");
  EXPECT_LT(err.message.size(), 400u) << err.message.substr(0, 500);
}

}  // namespace
}  // namespace strata::retrieval
