#include "eval/endpoint_agent.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "env/search_step.h"
#include "eval/text_codec.h"

namespace strata::eval {

namespace {

const char* const kStops[] = {"</search>", "</answer>"};

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void EndpointAgentOptions::validate() const {
  env.validate();
  STRATA_CHECK(temperature >= 0, "temperature: expected >= 0, got " << temperature);
  STRATA_CHECK(top_p > 0 && top_p <= 1, "top_p: expected in (0, 1], got " << top_p);
  STRATA_CHECK(parallel >= 1, "--parallel: expected >= 1, got " << parallel);
}

std::string restore_stop(const ChatResponse& r) {
  const std::string& text = r.content;
  const std::string trimmed = trim(text);
  for (const char* s : kStops)
    if (ends_with(trimmed, s)) return text;  // the server kept it
  for (const char* s : kStops)
    if (r.stop_string == s) return text + s;
  if (r.finish_reason != "stop") return text;
  // Ended on a stop string or on EOS: a stop string when a <search> or <answer> is left open.
  const size_t search_open = text.rfind("<search>");
  const size_t answer_open = text.rfind("<answer>");
  const bool search_open_last = search_open != std::string::npos &&
                                (answer_open == std::string::npos || search_open > answer_open);
  const size_t open = search_open_last ? search_open : answer_open;
  if (open == std::string::npos) return text;
  const std::string close = search_open_last ? "</search>" : "</answer>";
  if (text.find(close, open) != std::string::npos) return text;
  return text + close;
}

Prediction run_endpoint_question(const ChatClient& chat, retrieval::RetrievalClient& search,
                                 const data::QaRecord& record, const std::string& dataset,
                                 const EndpointAgentOptions& opts, uint64_t seed) {
  WordCodec codec;
  env::Episode ep(
      opts.env, record, [&codec](std::string_view s) { return codec.encode(s); },
      [&codec](const std::vector<int32_t>& ids) { return codec.decode(ids); });
  ChatRequest req;
  req.messages.push_back({"user", ep.prompt_text()});
  req.temperature = opts.temperature;
  req.top_p = opts.top_p;
  req.max_tokens = opts.env.max_turn_tokens;
  req.stop = {kStops[0], kStops[1]};
  int turn = 0;
  while (!ep.done()) {
    if (opts.temperature > 0) req.seed = seed + static_cast<uint64_t>(turn);
    const ChatResponse r = chat.complete(req);
    ++turn;
    const std::string text = restore_stop(r);
    const auto ids = codec.encode(text);
    const std::string tail = trim(text);
    const env::TurnFinish finish = r.finish_reason == "length" ? env::TurnFinish::kMaxTokens
                                   : ends_with(tail, kStops[0]) || ends_with(tail, kStops[1])
                                       ? env::TurnFinish::kStopSequence
                                       : env::TurnFinish::kEos;
    const auto step = ep.on_generation(ids, std::vector<float>(ids.size(), 0.0f), finish);
    req.messages.push_back({"assistant", text});
    if (step.kind == env::Episode::StepKind::kSearch) env::run_search(ep, search);
    if (ep.done()) break;
    const std::string obs = trim(codec.decode(ep.take_pending_observation()));
    req.messages.push_back({"user", obs});
  }
  Prediction p = make_prediction(record, dataset, policy_answer(ep.segments()));
  p.searches = ep.num_searches();
  for (const auto& t : ep.turns())
    if (t.action == env::Action::kSearch) p.queries.push_back(t.query);
  p.trajectory = ep.response_text();
  p.end_reason = env::end_reason_name(ep.end_reason());
  p.error = ep.error();
  return p;
}

std::vector<Prediction> run_endpoint_agent(const ChatClient& chat,
                                           retrieval::RetrievalClient& search,
                                           const std::vector<data::QaRecord>& records,
                                           const std::string& dataset,
                                           const EndpointAgentOptions& opts,
                                           const std::function<void(const Prediction&)>& on_done) {
  opts.validate();
  std::vector<std::optional<Prediction>> results(records.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  size_t frontier = 0;  // results[0, frontier) have been handed to on_done
  std::exception_ptr failure;

  auto worker = [&] {
    while (!stop.load()) {
      const size_t i = next.fetch_add(1);
      if (i >= records.size()) return;
      try {
        Prediction p = run_endpoint_question(chat, search, records[i], dataset, opts,
                                             opts.seed * 1000003ULL + i * 1009ULL);
        std::lock_guard<std::mutex> lock(mu);
        results[i] = std::move(p);
        while (frontier < results.size() && results[frontier]) {
          if (on_done) on_done(*results[frontier]);
          ++frontier;
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failure) failure = std::current_exception();
        stop = true;
        return;
      }
    }
  };
  const int n =
      static_cast<int>(std::min<size_t>(static_cast<size_t>(opts.parallel), records.size()));
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
  std::vector<Prediction> out;
  out.reserve(results.size());
  for (auto& r : results) out.push_back(std::move(*r));
  return out;
}

}  // namespace strata::eval
