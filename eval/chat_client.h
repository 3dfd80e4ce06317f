// A blocking client for an OpenAI-compatible chat completions endpoint (vLLM, SGLang,
// llama.cpp's server, TGI, OpenAI itself), on libcurl.
//
//   ChatClientOptions o;
//   o.url = "http://127.0.0.1:8001";          // POSTs go to {url}/v1/chat/completions
//   o.model = "Qwen/Qwen2.5-3B-Instruct";
//   ChatClient chat(o);
//   ChatResponse r = chat.complete({{{"user", "Hello"}}, 0.0, 1.0, 64, {"</answer>"}});
//
// Each attempt has a timeout; connection errors, timeouts, 408, 429 and 5xx answers are retried
// with exponential backoff; any other 4xx fails at once with the server's message. A request that
// still fails throws EndpointError (a std::runtime_error: a runtime failure, exit code 1) naming
// the URL, the attempts and the last error. complete() may be called from several threads.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace strata::eval {

struct ChatClientOptions {
  std::string url;                // server base URL; "/v1/chat/completions" is appended unless the
                                  // URL already ends in "/chat/completions" ("/chat/completions"
                                  // only when it ends in "/v1")
  std::string model;              // the "model" field of each request
  std::string api_key;            // sent as "Authorization: Bearer <key>" when not empty
  int timeout_ms = 300000;        // per attempt: connect + send + generate + receive
  int connect_timeout_ms = 5000;  // per attempt: TCP connect alone
  int max_attempts = 4;           // attempts per request, the first included (>= 1)
  int backoff_initial_ms = 500;   // wait before the 2nd attempt; doubles per attempt
  int backoff_max_ms = 8000;      // cap on one wait

  void validate() const;  // throws strata::Error naming the bad field and value
};

// The full URL requests go to.
std::string chat_completions_url(const std::string& base_url);

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatRequest {
  std::vector<ChatMessage> messages;
  double temperature = 0;         // 0 = greedy
  double top_p = 1;               // nucleus sampling (1 = off)
  int max_tokens = 500;           // new tokens of this turn
  std::vector<std::string> stop;  // stop strings (servers drop them from the content)
  std::optional<uint64_t> seed;   // sampling seed, when the server supports one
};

struct ChatResponse {
  std::string content;        // choices[0].message.content ("" when null)
  std::string finish_reason;  // choices[0].finish_reason: "stop", "length", ...
  std::string stop_string;    // the stop string that ended the text when the server says so
                              // (vLLM's choices[0].stop_reason), else ""
  int attempts = 0;           // attempts made
  double seconds = 0;         // wall time, retries included
};

class EndpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ChatClient {
 public:
  explicit ChatClient(ChatClientOptions opts);
  ChatResponse complete(const ChatRequest& req) const;  // throws EndpointError
  const ChatClientOptions& options() const { return opts_; }
  const std::string& url() const { return url_; }

 private:
  ChatClientOptions opts_;
  std::string url_;
};

}  // namespace strata::eval
