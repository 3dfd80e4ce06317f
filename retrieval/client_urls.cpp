// The `retriever` option's URL list (retrieval/client_urls.h).
#include "retrieval/client_urls.h"

#include <algorithm>

#include "core/error.h"

namespace strata::retrieval {

namespace {

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string join(const std::vector<std::string>& urls) {
  std::string out;
  for (const auto& u : urls) out += (out.empty() ? "" : ",") + u;
  return out;
}

}  // namespace

std::vector<std::string> split_urls(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    std::string item = trim(std::string_view(text).substr(start, comma == std::string::npos ? std::string::npos
                                                                                            : comma - start));
    STRATA_CHECK(!item.empty(), (text.find_first_not_of(" \t\r\n,") == std::string::npos
                                     ? std::string("no /retrieve URL given")
                                     : "an empty item in the URL list \"" + text + "\""));
    STRATA_CHECK(std::find(out.begin(), out.end(), item) == out.end(),
                 "the URL " << item << " is listed twice (one daemon, one entry)");
    out.push_back(std::move(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

RetrieverUrls::RetrieverUrls(const std::vector<std::string>& urls) : text_(join(urls)) {}

void read_container(const config::Json& j, RetrieverUrls& out, const config::Source& src,
                    const std::string& path) {
  std::vector<std::string> urls;
  if (j.is_string()) {
    try {
      urls = split_urls(j.get<std::string>());
    } catch (const Error& e) {
      config::fail_at(src, path, e.what());
    }
  } else if (j.is_array()) {
    if (j.empty()) config::fail_at(src, path, "an empty list: give at least one /retrieve URL");
    for (size_t i = 0; i < j.size(); ++i) {
      const std::string item = path + "[" + std::to_string(i) + "]";
      if (!j[i].is_string()) config::fail_at(src, item, "expected a URL string, got " + config::describe(j[i]));
      const std::string u = trim(j[i].get<std::string>());
      if (u.empty() || u.find(',') != std::string::npos)
        config::fail_at(src, item, "expected one URL, got " + config::describe(j[i]));
      if (std::find(urls.begin(), urls.end(), u) != urls.end())
        config::fail_at(src, item, "the URL " + u + " is listed twice (one daemon, one entry)");
      urls.push_back(u);
    }
  } else {
    config::fail_at(src, path, "expected a URL or a list of URLs, got " + config::describe(j));
  }
  out = RetrieverUrls(urls);
}

config::Json container_to_json(const RetrieverUrls& u) {
  std::vector<std::string> urls;
  try {
    urls = split_urls(u.str());
  } catch (const Error&) {
    return config::Json(u.str());  // not a valid list (the reader refuses it): written as it is
  }
  return urls.size() == 1 ? config::Json(urls[0]) : config::Json(urls);
}

}  // namespace strata::retrieval
