// libFuzzer target: the daemon's HTTP front on raw bytes. The input is what a client could send
// on one connection: Boost.Beast's request parser with retrieval_server's default body and header
// limits (ServerOptions), one parser per request as the daemon does for keep-alive connections;
// a POST /retrieve body that parses goes through parse_retrieve_request like the daemon's.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "retrieval/protocol.h"
#include "retrieval/server.h"
#include "tests/fuzz/fuzz_util.h"

namespace http = boost::beast::http;
using namespace strata::retrieval;

namespace {

// Feeds `in` to `parser` as the daemon's reads do when all of `in` has arrived; returns the bytes
// consumed. `ec` is the parser's error, if any. need_more means that the parser wants bytes beyond
// `in` (it is eager: it parses the body in the same call), so the client has sent everything it
// will and the message ends there. Beast expects the next put() after need_more to bring new
// bytes (its read loop only calls again after a read); calling it again with the same bytes trips
// an assertion in basic_parser::parse_chunk_header, an artefact of the harness, not of the daemon.
size_t feed(http::request_parser<http::string_body>& parser, std::string_view in,
            boost::beast::error_code& ec) {
  size_t used = 0;
  while (used < in.size() && !parser.is_done()) {
    const size_t n = parser.put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
    used += n;
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec || n == 0) break;
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec);  // the client hung up
  return used;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ServerOptions opts;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // A keep-alive connection carries several requests; the daemon builds a fresh parser for each.
  for (int message = 0; message < 8 && !in.empty(); ++message) {
    std::optional<http::request_parser<http::string_body>> parser;
    parser.emplace();
    parser->body_limit(opts.max_body_bytes);
    parser->header_limit(static_cast<std::uint32_t>(opts.max_header_bytes));
    parser->eager(true);
    boost::beast::error_code ec;
    const size_t used = feed(*parser, in, ec);
    FUZZ_CHECK(used <= in.size(), "the parser consumes at most its input");
    if (ec || !parser->is_done()) return 0;  // 400/413/431, or a request that never completed
    in.remove_prefix(used);

    const auto& req = parser->get();
    FUZZ_CHECK(req.body().size() <= opts.max_body_bytes, "the body limit holds");
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    (void)req.keep_alive();
    (void)req[http::field::expect];
    if (path == "/retrieve" && req.method() == http::verb::post) {
      RetrieveRequest r;
      RequestError err;
      if (!parse_retrieve_request(req.body(), opts.limits, r, err))
        (void)render_error(err.message);
    }
    if (!req.keep_alive()) break;
  }
  return 0;
}
