#include "eval/chat_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace strata::eval {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    STRATA_ASSERT(rc == CURLE_OK, "curl_global_init failed: " << curl_easy_strerror(rc));
  });
}

size_t on_data(char* ptr, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(ptr, size * n);
  return size * n;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string snippet(const std::string& body) {
  std::string s = body.substr(0, 300);
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return body.size() > 300 ? s + "..." : s;
}

// The server's error message from an OpenAI-style {"error": {"message": ...}} body, or the body.
std::string server_message(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string())
      return e["message"].get<std::string>();
    if (e.is_string()) return e.get<std::string>();
  }
  return snippet(body);
}

struct Attempt {
  bool transport_ok = false;
  std::string transport_error;
  long status = 0;
  std::string body;
};

}  // namespace

void ChatClientOptions::validate() const {
  STRATA_CHECK(!url.empty(), "endpoint: the URL is empty");
  STRATA_CHECK(url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0,
               "endpoint: expected an http:// or https:// URL, got \"" << url << "\"");
  STRATA_CHECK(!model.empty(), "endpoint: the model name is empty (--endpoint-model NAME)");
  STRATA_CHECK(timeout_ms >= 1, "endpoint timeout: expected >= 1 ms, got " << timeout_ms);
  STRATA_CHECK(connect_timeout_ms >= 1,
               "endpoint connect timeout: expected >= 1 ms, got " << connect_timeout_ms);
  STRATA_CHECK(max_attempts >= 1, "endpoint attempts: expected >= 1, got " << max_attempts);
  STRATA_CHECK(backoff_initial_ms >= 0 && backoff_max_ms >= backoff_initial_ms,
               "endpoint backoff: expected 0 <= initial (" << backoff_initial_ms << ") <= max ("
                                                           << backoff_max_ms << ")");
}

std::string chat_completions_url(const std::string& base_url) {
  std::string u = base_url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (ends_with(u, "/chat/completions")) return u;
  if (ends_with(u, "/v1")) return u + "/chat/completions";
  return u + "/v1/chat/completions";
}

ChatClient::ChatClient(ChatClientOptions opts) : opts_(std::move(opts)) {
  opts_.validate();
  url_ = chat_completions_url(opts_.url);
  global_init();
}

ChatResponse ChatClient::complete(const ChatRequest& req) const {
  json body;
  body["model"] = opts_.model;
  body["messages"] = json::array();
  for (const auto& m : req.messages)
    body["messages"].push_back({{"role", m.role}, {"content", m.content}});
  body["temperature"] = req.temperature;
  body["top_p"] = req.top_p;
  body["max_tokens"] = req.max_tokens;
  body["n"] = 1;
  body["stream"] = false;
  if (!req.stop.empty()) body["stop"] = req.stop;
  if (req.seed) body["seed"] = *req.seed;
  const std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);

  const auto t0 = Clock::now();
  ChatResponse out;
  std::string last_error;
  for (int attempt = 1; attempt <= opts_.max_attempts; ++attempt) {
    if (attempt > 1) {
      const int64_t wait =
          std::min<int64_t>(opts_.backoff_max_ms, static_cast<int64_t>(opts_.backoff_initial_ms)
                                                      << std::min(attempt - 2, 20));
      STRATA_LOG_WARN("POST {}: {}; retrying in {} ms (attempt {} of {})", url_, last_error, wait,
                      attempt, opts_.max_attempts);
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    }
    out.attempts = attempt;
    Attempt a;
    {
      CURL* e = curl_easy_init();
      STRATA_ASSERT(e != nullptr, "curl_easy_init failed");
      char errbuf[CURL_ERROR_SIZE] = {0};
      curl_slist* headers = nullptr;
      headers = curl_slist_append(headers, "Content-Type: application/json");
      const std::string auth = "Authorization: Bearer " + opts_.api_key;
      if (!opts_.api_key.empty()) headers = curl_slist_append(headers, auth.c_str());
      curl_easy_setopt(e, CURLOPT_URL, url_.c_str());
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_data);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, &a.body);
      curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.timeout_ms));
      curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout_ms));
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(e, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
      const CURLcode rc = curl_easy_perform(e);
      if (rc == CURLE_OK) {
        a.transport_ok = true;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a.status);
      } else {
        a.transport_error = errbuf[0] != 0 ? std::string(errbuf) : curl_easy_strerror(rc);
      }
      curl_slist_free_all(headers);
      curl_easy_cleanup(e);
    }
    if (!a.transport_ok) {
      last_error = a.transport_error;
      continue;
    }
    if (a.status == 408 || a.status == 429 || a.status >= 500) {
      last_error = "HTTP " + std::to_string(a.status) + ": " + server_message(a.body);
      continue;
    }
    if (a.status != 200)
      throw EndpointError("POST " + url_ + ": HTTP " + std::to_string(a.status) + ": " +
                          server_message(a.body));
    const json j = json::parse(a.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw EndpointError("POST " + url_ + ": the answer is not a JSON object: " + snippet(a.body));
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
        !j["choices"][0].is_object())
      throw EndpointError("POST " + url_ + ": the answer has no choices: " + snippet(a.body));
    const json& c = j["choices"][0];
    if (c.contains("message") && c["message"].is_object()) {
      const json& m = c["message"];
      if (m.contains("content") && m["content"].is_string())
        out.content = m["content"].get<std::string>();
    } else if (c.contains("text") && c["text"].is_string()) {
      out.content = c["text"].get<std::string>();
    } else {
      throw EndpointError("POST " + url_ + ": choices[0] has no message: " + snippet(a.body));
    }
    if (c.contains("finish_reason") && c["finish_reason"].is_string())
      out.finish_reason = c["finish_reason"].get<std::string>();
    if (c.contains("stop_reason") && c["stop_reason"].is_string())
      out.stop_string = c["stop_reason"].get<std::string>();
    out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return out;
  }
  throw EndpointError("POST " + url_ + ": failed after " + std::to_string(opts_.max_attempts) +
                      " attempt(s): " + last_error);
}

}  // namespace strata::eval
