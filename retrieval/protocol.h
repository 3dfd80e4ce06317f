// The Search-R1 retrieval wire format, shared by the daemon (retrieval/server.*) and the client
// (retrieval/client.*). JSON lives only here; both sides see the typed structs below.
//
//   request:  {"queries": ["q1", ...], "topk": 3, "return_scores": true}
//   response: {"result": [[{"document": {"id": "7", "contents": "\"T\"\ntext"}, "score": 1.5}, ...],
//                         ...]}                   one list per query, in request order
//   without return_scores each entry is the bare document {"id": ..., "contents": ...}
//   errors:   {"error": "what was wrong"}
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "retrieval/searcher.h"

namespace strata::retrieval {

// Search-R1's default number of documents per query, and the largest topk strata's daemon
// accepts by default: the one home of both (the server's limits and the search environment's
// `env.topk` check use them).
constexpr int kDefaultTopk = 3;
constexpr int kMaxTopk = 100;

// Limits the server applies to one /retrieve body (part of ServerOptions).
struct RequestLimits {
  int default_topk = kDefaultTopk;   // topk when the request has none
  int max_topk = kMaxTopk;           // largest topk accepted
  int max_queries = 256;             // most queries in one request
  size_t max_query_bytes = 4096;     // longest single query, in bytes
};

struct RetrieveRequest {
  std::vector<std::string> queries;  // one result list per query, same order
  int topk = 0;                      // 0 = the server's default
  bool return_scores = false;        // entries carry {"document", "score"} when true
};

// Why a request was refused; `kind` is a short label for metrics ("bad_json", "bad_field", ...).
struct RequestError {
  std::string kind;
  std::string message;
};

// Parses and validates a /retrieve body. Returns false and fills `err` on bad input; on success
// `out.topk` is resolved (never 0).
bool parse_retrieve_request(std::string_view body, const RequestLimits& limits,
                            RetrieveRequest& out, RequestError& err);

// Serialises the response for `hits` (hits[i] are the hits of query i). Invalid UTF-8 in stored
// contents is replaced by U+FFFD rather than failing the request.
std::string render_retrieve_response(const Searcher& searcher,
                                     const std::vector<std::vector<Hit>>& hits,
                                     bool return_scores);

// {"error": message}
std::string render_error(std::string_view message);

// ---- client side -------------------------------------------------------------------------

struct Document {
  std::string id;
  std::string contents;  // "\"Title\"\ntext"
  float score = 0;       // 0 when the server was asked without return_scores
};

// JSON body for a request (topk is omitted when 0, letting the server choose).
std::string make_retrieve_body(const RetrieveRequest& req);

// Parses a response body with or without scores. `expected_queries` (when >= 0) must match the
// number of result lists. Returns false with a reason in `error` on a malformed body.
bool parse_retrieve_response(std::string_view body, long expected_queries,
                             std::vector<std::vector<Document>>& out, std::string& error);

// The "error" text of an error body, or the body itself (truncated) when it is not one.
std::string error_message_from_body(std::string_view body);

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). On failure
// `bad_offset` is the offset of the first bad byte.
bool valid_utf8(std::string_view s, size_t* bad_offset = nullptr);

}  // namespace strata::retrieval
