// The daemon health probe of the retrieval client (retrieval/client.h): one blocking GET /health
// and, for servers without /health, one probe query, each with a short timeout.
#include <curl/curl.h>

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "retrieval/client.h"
#include "retrieval/client_urls.h"

namespace strata::retrieval {

namespace {

size_t discard_body(char*, size_t size, size_t n, void*) { return size * n; }

// One HTTP request; the status (0 when nothing came back) and curl's message in `err`.
long http_status(const std::string& url, const std::string* post_json, int timeout_ms, std::string& err) {
  CURL* h = curl_easy_init();
  STRATA_CHECK(h != nullptr, "curl_easy_init failed");
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(timeout_ms, 3000)));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &discard_body);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_slist* headers = nullptr;
  if (post_json != nullptr) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_json->c_str());
  }
  const CURLcode rc = curl_easy_perform(h);
  long status = 0;
  if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  else err = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return status;
}

HealthResult check_one(const std::string& retrieve_url, int timeout_ms) {
  HealthResult h;
  h.retrieve_url = retrieve_url;
  const size_t scheme = retrieve_url.find("://");
  const size_t path = retrieve_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  h.health_url = (path == std::string::npos ? retrieve_url : retrieve_url.substr(0, retrieve_url.rfind('/'))) +
                 "/health";
  h.health_status = http_status(h.health_url, nullptr, timeout_ms, h.error);
  if (h.health_status == 0) {
    h.status = HealthResult::Status::kUnreachable;
    return h;
  }
  if (h.health_status == 200) {
    h.status = HealthResult::Status::kOk;
    return h;
  }
  const std::string probe = R"({"queries": ["health check"], "topk": 1})";
  h.retrieve_status = http_status(retrieve_url, &probe, timeout_ms, h.error);
  h.status = h.retrieve_status == 200 ? HealthResult::Status::kOk : HealthResult::Status::kNotWorking;
  return h;
}

// What failed, for a list of daemons: "URL: why".
std::string problem(const HealthResult& h) {
  switch (h.status) {
    case HealthResult::Status::kOk: return h.retrieve_url + ": works";
    case HealthResult::Status::kUnreachable: return h.retrieve_url + ": does not answer (" + h.error + ")";
    case HealthResult::Status::kNotWorking: break;
  }
  return h.retrieve_url + ": GET /health answered HTTP " + std::to_string(h.health_status) + " and POST /retrieve " +
         (h.retrieve_status == 0 ? h.error : "HTTP " + std::to_string(h.retrieve_status));
}

}  // namespace

HealthResult check_health(const std::string& retrieve_url, int timeout_ms) {
  if (retrieve_url.find(',') == std::string::npos) return check_one(retrieve_url, timeout_ms);
  const auto urls = split_urls(retrieve_url);
  std::vector<HealthResult> all;
  for (const auto& u : urls) all.push_back(check_one(u, timeout_ms));
  const auto good = std::find_if(all.begin(), all.end(), [](const HealthResult& h) { return h.ok(); });
  HealthResult out = good != all.end() ? *good : all.front();
  out.daemons = static_cast<int>(all.size());
  for (const auto& h : all)
    if (!h.ok()) out.not_working.push_back(problem(h));
  return out;
}

void require_healthy(const HealthResult& h, const std::string& key) {
  if (h.daemons > 1) {
    std::string list;
    for (const auto& p : h.not_working) list += (list.empty() ? "" : "; ") + p;
    if (h.ok()) {
      if (!h.not_working.empty())
        STRATA_LOG_WARN("{}: {} of {} retrieval daemons do not work; the client sends their share to the "
                        "others and tries them again later: {}",
                        key, h.not_working.size(), h.daemons, list);
      return;
    }
    throw UnreachableError(key + ": none of the " + std::to_string(h.daemons) + " retrieval daemons works: " + list +
                           ". Start them first (one per node: build/bin/retrieval_server --index INDEX --port "
                           "PORT), or set " + key + " to the /retrieve URLs of running ones");
  }
  switch (h.status) {
    case HealthResult::Status::kOk: return;
    case HealthResult::Status::kUnreachable:
      throw UnreachableError(key + ": cannot reach the retrieval daemon at " + h.health_url + " (" + h.error +
                             "). Start it first, e.g. build/bin/retrieval_server --index INDEX --port PORT, "
                             "or set " + key + " to the /retrieve URL of a running one");
    case HealthResult::Status::kNotWorking:
      throw UnreachableError(key + ": the retrieval daemon does not work: GET " + h.health_url + " answered HTTP " +
                             std::to_string(h.health_status) + " and POST " + h.retrieve_url + " answered " +
                             (h.retrieve_status == 0 ? h.error : "HTTP " + std::to_string(h.retrieve_status)));
  }
}

HealthResult RetrievalClient::health() const {
  return check_health(options().url);
}

}  // namespace strata::retrieval
