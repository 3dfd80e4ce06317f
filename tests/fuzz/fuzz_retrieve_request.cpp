// libFuzzer target: the /retrieve body parser (retrieval/protocol.h) with the daemon's default
// limits. Its contract is a bool with a reason, never an exception: any exception, crash or
// sanitizer report is a finding. A body that parses must survive the client's serialiser and
// parse again to the same request (the client and the daemon share this wire format).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "retrieval/protocol.h"
#include "tests/fuzz/fuzz_util.h"

using namespace strata::retrieval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const RequestLimits limits;
  RetrieveRequest req;
  RequestError err;
  if (!parse_retrieve_request(body, limits, req, err)) {
    FUZZ_CHECK(!err.kind.empty() && !err.message.empty(), "a refusal names its kind and reason");
    // The daemon sends this back; it must stay small whatever the body was.
    FUZZ_CHECK(err.message.size() <= 1024, "an error message is bounded");
    (void)render_error(err.message);
    return 0;
  }
  FUZZ_CHECK(!req.queries.empty() && req.queries.size() <= size_t(limits.max_queries), "query count in range");
  FUZZ_CHECK(req.topk >= 1 && req.topk <= limits.max_topk, "topk resolved and in range");
  for (const std::string& q : req.queries) {
    FUZZ_CHECK(q.size() <= limits.max_query_bytes, "query length in range");
    FUZZ_CHECK(valid_utf8(q), "queries are valid UTF-8");
  }
  const std::string again = make_retrieve_body(req);
  RetrieveRequest req2;
  RequestError err2;
  FUZZ_CHECK(parse_retrieve_request(again, limits, req2, err2), "the re-serialised request parses");
  FUZZ_CHECK(req2.queries == req.queries, "round trip keeps the queries");
  FUZZ_CHECK(req2.topk == req.topk, "round trip keeps topk");
  FUZZ_CHECK(req2.return_scores == req.return_scores, "round trip keeps return_scores");
  return 0;
}
