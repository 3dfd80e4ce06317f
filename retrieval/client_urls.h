// The `retriever` option of the programs: one /retrieve URL, or several (one daemon each) that
// one RetrievalClient spreads its queries over (retrieval/client.h).
//
// In a config file the key takes a string or a list of strings:
//   "retriever": "http://127.0.0.1:8000/retrieve"
//   "retriever": ["http://node0:8000/retrieve", "http://node1:8000/retrieve"]
// On the command line (--retriever, --set retriever=...) a comma-separated list:
//   --set retriever=http://node0:8000/retrieve,http://node1:8000/retrieve
// A single URL is written back as a string, a list as a list, so configs of one daemon dump and
// diff exactly as before.
#pragma once

#include <fmt/format.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"

namespace strata::retrieval {

// "a, b" -> {"a", "b"}: items trimmed of spaces. Throws strata::Error for an empty list, an empty
// item or a URL given twice.
std::vector<std::string> split_urls(const std::string& text);

class RetrieverUrls {
 public:
  RetrieverUrls() = default;
  // One URL or a comma-separated list; checked when used (split_urls), so that a config struct
  // can hold a default.
  RetrieverUrls(std::string text) : text_(std::move(text)) {}  // NOLINT: a URL converts
  RetrieverUrls(const char* text) : text_(text) {}             // NOLINT
  explicit RetrieverUrls(const std::vector<std::string>& urls);

  // The comma-separated form: what ClientOptions::url takes.
  const std::string& str() const { return text_; }
  operator const std::string&() const { return text_; }  // NOLINT: co.url = cfg.retriever
  bool empty() const { return text_.empty(); }
  std::vector<std::string> urls() const { return split_urls(text_); }

  friend bool operator==(const RetrieverUrls& a, const RetrieverUrls& b) { return a.text_ == b.text_; }
  friend std::ostream& operator<<(std::ostream& o, const RetrieverUrls& u) { return o << u.text_; }

 private:
  std::string text_;
};

// Config hooks, found by argument-dependent lookup from core/config.h's reader and writer: a
// string (one URL or a comma-separated list) or a list of strings; errors name the key and where
// its value came from.
void read_container(const config::Json& j, RetrieverUrls& out, const config::Source& src,
                    const std::string& path);
config::Json container_to_json(const RetrieverUrls& u);

}  // namespace strata::retrieval

template <>
struct fmt::formatter<strata::retrieval::RetrieverUrls> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const strata::retrieval::RetrieverUrls& u, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(u.str(), ctx);
  }
};
