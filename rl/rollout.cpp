#include "rl/rollout.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "agent/tokenizer/chat_template.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "env/search_step.h"

namespace strata::rl {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<int64_t> to64(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }
std::vector<int32_t> to32(const std::vector<int64_t>& v) {
  std::vector<int32_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<int32_t>(v[i]);
  return out;
}

// One trajectory being rolled out.
struct Traj {
  int prompt = 0;
  int sample = 0;
  std::optional<env::Episode> ep;
  std::vector<int32_t> prompt_ids;
  agent::GenerationOptions gen;
  int64_t seq = -1;        // engine sequence id while it holds a slot
  bool finished = false;
};

// Retrieval results handed from the client's thread to the generation thread.
class CompletionQueue {
 public:
  void push(size_t traj, retrieval::RetrieveResult r) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.emplace_back(traj, std::move(r));
    }
    cv_.notify_one();
  }
  std::deque<std::pair<size_t, retrieval::RetrieveResult>> drain(bool wait) {
    std::unique_lock<std::mutex> lock(mu_);
    if (wait) cv_.wait(lock, [&] { return !items_.empty(); });
    std::deque<std::pair<size_t, retrieval::RetrieveResult>> out;
    out.swap(items_);
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<size_t, retrieval::RetrieveResult>> items_;
};

env::TurnFinish turn_finish(agent::FinishReason r) {
  switch (r) {
    case agent::FinishReason::kStop: return env::TurnFinish::kStopSequence;
    case agent::FinishReason::kEos: return env::TurnFinish::kEos;
    default: return env::TurnFinish::kMaxTokens;
  }
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

void RolloutOptions::validate() const {
  STRATA_CHECK(samples_per_prompt >= 1, "rollout.samples_per_prompt: expected >= 1, got " << samples_per_prompt);
  STRATA_CHECK(temperature >= 0, "rollout.temperature: expected >= 0, got " << temperature);
  STRATA_CHECK(max_batch >= 1, "rollout.max_batch: expected >= 1, got " << max_batch);
  STRATA_CHECK(max_seq_len >= 64, "rollout.max_seq_len: expected >= 64, got " << max_seq_len);
  agent::parse_chat_style(chat);
  parse_stratum_kind(stratum_key);
  env.validate();
}

std::vector<int32_t> encode_prompt(const agent::Tokenizer& tok, const std::string& user_text,
                                   const std::string& chat) {
  const auto style = agent::parse_chat_style(chat);
  if (style == agent::ChatStyle::kPlain) return tok.encode(user_text, /*allow_special=*/false);
  const std::string text = agent::format_chat({{"user", user_text}}, style, true);
  return tok.encode(text, /*allow_special=*/true);
}

RolloutBatch run_rollouts(const agent::Model& model, const agent::Tokenizer& tok,
                          retrieval::RetrievalClient& client,
                          const std::vector<data::QaRecord>& prompts, const RolloutOptions& opts,
                          int step, int64_t group_offset, int64_t prompt_offset) {
  opts.validate();
  const auto t_start = Clock::now();
  const int G = opts.samples_per_prompt;
  const StratumKind kind = parse_stratum_kind(opts.stratum_key);

  // Token-level stop sequences: the tags as they tokenize alone and after a space.
  std::vector<std::vector<int64_t>> stops;
  for (const char* tag : {"</search>", "</answer>"})
    for (const std::string prefix : {"", " "}) {
      auto ids = to64(tok.encode(prefix + tag, false));
      if (std::find(stops.begin(), stops.end(), ids) == stops.end()) stops.push_back(ids);
    }
  std::vector<int64_t> eos;
  for (int32_t id : agent::chat_stop_ids(tok, agent::parse_chat_style(opts.chat))) eos.push_back(id);

  const env::EncodeFn encode = [&tok](std::string_view s) { return tok.encode(s, false); };
  const env::DecodeFn decode = [&tok](const std::vector<int32_t>& ids) { return tok.decode(ids); };

  std::vector<Traj> trajs(prompts.size() * static_cast<size_t>(G));
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (int g = 0; g < G; ++g) {
      Traj& t = trajs[p * G + g];
      t.prompt = static_cast<int>(p);
      t.sample = g;
      t.ep.emplace(opts.env, prompts[p], encode, decode);
      t.prompt_ids = encode_prompt(tok, t.ep->prompt_text(), opts.chat);
      t.gen.max_new_tokens = opts.env.max_turn_tokens;
      t.gen.sampling.temperature = opts.temperature;
      t.gen.sampling.top_p = opts.top_p;
      t.gen.sampling.top_k = opts.top_k;
      t.gen.seed = mix64(opts.seed ^ mix64(static_cast<uint64_t>(step) * 1000003ULL +
                                                  (static_cast<uint64_t>(prompt_offset) + p) * 131ULL + g));
      t.gen.stop_sequences = stops;
      t.gen.eos_ids = eos;
      STRATA_CHECK(static_cast<int64_t>(t.prompt_ids.size()) + opts.env.max_turn_tokens < opts.max_seq_len,
                   "prompt of question " << prompts[p].id << " has " << t.prompt_ids.size()
                                         << " tokens: too long for rollout.max_seq_len " << opts.max_seq_len);
    }
  }

  agent::EngineOptions eopts;
  // No more slots than trajectories: the cache is allocated (and zeroed) per phase, every slot
  // max_seq_len long (SmolLM2 at 40 x 1536 positions: 5.6 GB in fp32).
  eopts.max_slots = std::min<int64_t>(opts.max_batch, static_cast<int64_t>(trajs.size()));
  eopts.max_seq_len = opts.max_seq_len;
  agent::GenerationEngine engine(model, eopts);
  CompletionQueue completions;
  RolloutMetrics m;
  std::vector<double> latencies_ms;
  size_t next_start = 0;
  int outstanding = 0;
  std::vector<size_t> sync_batch;  // sync mode: trajectories whose search waits for the turn
  double occupancy_sum = 0;
  int64_t engine_steps = 0;

  auto finalize = [&](Traj& t) {
    if (t.seq >= 0) engine.remove(t.seq);
    t.seq = -1;
    t.finished = true;
  };
  auto continue_or_finish = [&](Traj& t) {
    if (t.ep->done()) {
      finalize(t);
      return;
    }
    const auto obs = to64(t.ep->take_pending_observation());
    const auto& seq = engine.sequence(t.seq);
    if (static_cast<int64_t>(seq.tokens.size() + obs.size()) + opts.env.max_turn_tokens > opts.max_seq_len) {
      t.ep->stop_for_length();
      finalize(t);
      return;
    }
    engine.resume(t.seq, obs, t.gen);
  };
  auto apply_result = [&](size_t i, const retrieval::RetrieveResult& r) {
    Traj& t = trajs[i];
    const env::SearchOutcome o = env::feed_search_result(*t.ep, r);
    latencies_ms.push_back(o.ms);
    ++m.retrieval_calls;
    if (!o.ok)
      STRATA_LOG_WARN("retrieval failed for {} (sample {}): {}", t.ep->question().id, t.sample,
                      t.ep->error());
    continue_or_finish(t);
  };
  auto handle_stop = [&](size_t i) {
    Traj& t = trajs[i];
    const auto& seq = engine.sequence(t.seq);
    m.generated_tokens += static_cast<int64_t>(seq.generated.size());
    const auto s = t.ep->on_generation(to32(seq.generated), seq.logprobs, turn_finish(seq.reason));
    if (s.kind == env::Episode::StepKind::kSearch) {
      if (opts.sync_search) {
        sync_batch.push_back(i);
      } else {
        ++outstanding;
        env::send_search(*t.ep, client, [&completions, i](retrieval::RetrieveResult r) {
          completions.push(i, std::move(r));
        });
      }
    } else {
      continue_or_finish(t);
    }
  };

  std::map<int64_t, size_t> by_seq;
  while (true) {
    while (next_start < trajs.size() && engine.has_free_slot()) {
      Traj& t = trajs[next_start];
      t.seq = engine.add(to64(t.prompt_ids), t.gen);
      by_seq[t.seq] = next_start;
      ++next_start;
    }
    for (auto& [i, r] : completions.drain(false)) {
      --outstanding;
      apply_result(i, r);
    }
    if (engine.num_running() > 0) {
      const auto t0 = Clock::now();
      occupancy_sum += static_cast<double>(engine.num_running()) / opts.max_batch;
      ++engine_steps;
      const auto stopped = engine.step();
      m.generate_seconds += since(t0);
      for (int64_t id : stopped) handle_stop(by_seq.at(id));
      continue;
    }
    if (!sync_batch.empty()) {
      // Search-R1 style: one blocking batched request for the whole turn.
      std::vector<const env::Episode*> waiting;
      for (size_t i : sync_batch) waiting.push_back(&*trajs[i].ep);
      const auto t0 = Clock::now();
      const auto results = env::retrieve_pending(waiting, client);
      m.wait_seconds += since(t0);
      for (size_t k = 0; k < sync_batch.size(); ++k) apply_result(sync_batch[k], results[k]);
      sync_batch.clear();
      continue;
    }
    if (outstanding > 0) {
      const auto t0 = Clock::now();
      auto items = completions.drain(true);
      m.wait_seconds += since(t0);
      for (auto& [i, r] : items) {
        --outstanding;
        apply_result(i, r);
      }
      continue;
    }
    if (next_start >= trajs.size()) break;
  }

  RolloutBatch out;
  for (auto& t : trajs) {
    STRATA_ASSERT(t.finished && t.ep->done(), "a trajectory did not finish");
    const auto reward = t.ep->score();
    const int64_t key = stratum_key(kind, t.ep->num_searches(), t.ep->gold_retrieved());
    out.trajectories.push_back(env::make_record(*t.ep, reward, t.prompt_ids, group_offset + t.prompt,
                                                t.sample, step, key));
    m.end_reasons[env::end_reason_name(t.ep->end_reason())]++;
    m.searches[t.ep->num_searches()]++;
    if (t.ep->end_reason() == env::EndReason::kRetrievalFailed) ++m.failed;
  }
  m.seconds = since(t_start);
  const agent::EngineTimes& et = engine.times();
  m.prefill_seconds = et.prefill_s;
  m.decode_seconds = et.decode_s;
  m.sample_seconds = et.sample_s;
  m.prefill_tokens = et.prefill_tokens;
  m.decode_tokens = et.decode_tokens;
  m.tokens_per_s = m.seconds > 0 ? static_cast<double>(m.generated_tokens) / m.seconds : 0;
  m.mean_occupancy = engine_steps > 0 ? occupancy_sum / static_cast<double>(engine_steps) : 0;
  m.retrieval_p50_ms = percentile(latencies_ms, 0.5);
  m.retrieval_p99_ms = percentile(latencies_ms, 0.99);
  out.metrics = m;
  return out;
}

}  // namespace strata::rl
