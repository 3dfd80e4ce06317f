#include "agent/generation.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace strata::agent {

using torch::Tensor;

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kRunning: return "running";
    case FinishReason::kEos: return "eos";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kPaused: return "paused";
  }
  return "?";
}

void GenerationOptions::validate() const {
  STRATA_CHECK(max_new_tokens >= 1, "max_new_tokens must be >= 1, got " << max_new_tokens);
  sampling.validate();
  for (const auto& s : stop_sequences) STRATA_CHECK(!s.empty(), "a stop sequence is empty");
}

struct GenerationEngine::Slot {
  Sequence seq;
  GenerationOptions options;
  std::vector<int64_t> eos;
  Rng rng;
  int64_t slot = -1;
  int64_t cached = 0;  // positions of seq.tokens already in the KV cache
  explicit Slot(uint64_t seed) : rng(seed) {}
};

GenerationEngine::GenerationEngine(const Model& model, const EngineOptions& options)
    : model_(model),
      options_(options),
      cache_(model.config().num_hidden_layers, options.max_slots, options.max_seq_len,
             model.config().num_key_value_heads, model.config().head_dim,
             torch::TensorOptions().dtype(model.dtype()).device(model.device())) {
  STRATA_CHECK(model.defined(), "GenerationEngine needs a loaded model");
}

GenerationEngine::~GenerationEngine() = default;

GenerationEngine::Slot& GenerationEngine::get(int64_t id) {
  auto it = seqs_.find(id);
  STRATA_CHECK(it != seqs_.end(), "no sequence with id " << id << " in the generation engine");
  return *it->second;
}

const GenerationEngine::Slot& GenerationEngine::get(int64_t id) const {
  auto it = seqs_.find(id);
  STRATA_CHECK(it != seqs_.end(), "no sequence with id " << id << " in the generation engine");
  return *it->second;
}

const Sequence& GenerationEngine::sequence(int64_t id) const { return get(id).seq; }

int64_t GenerationEngine::cached_length(int64_t id) const { return get(id).cached; }

bool GenerationEngine::has_free_slot() const { return cache_.free_slots() > 0; }

int64_t GenerationEngine::add(const std::vector<int64_t>& prompt, const GenerationOptions& options) {
  options.validate();
  STRATA_CHECK(!prompt.empty(), "cannot generate from an empty prompt");
  STRATA_CHECK(static_cast<int64_t>(prompt.size()) < options_.max_seq_len,
               "prompt of " << prompt.size() << " tokens does not fit max_seq_len " << options_.max_seq_len);
  const int64_t V = model_.config().vocab_size;
  for (int64_t t : prompt) STRATA_CHECK(t >= 0 && t < V, "prompt token id " << t << " is outside the vocabulary [0, " << V << ")");
  const int64_t slot = cache_.acquire();
  STRATA_CHECK(slot >= 0, "no free generation slot (max_slots " << options_.max_slots << ")");
  auto s = std::make_unique<Slot>(options.seed);
  s->slot = slot;
  s->options = options;
  s->eos = options.eos_ids;
  if (s->eos.empty() && options.use_config_eos) s->eos = model_.config().eos_token_ids;
  s->seq.id = next_id_++;
  s->seq.tokens = prompt;
  const int64_t id = s->seq.id;
  seqs_.emplace(id, std::move(s));
  return id;
}

void GenerationEngine::pause(int64_t id) {
  Slot& s = get(id);
  if (s.seq.running()) s.seq.reason = FinishReason::kPaused;
}

void GenerationEngine::resume(int64_t id, const std::vector<int64_t>& tokens, const GenerationOptions& options) {
  options.validate();
  Slot& s = get(id);
  STRATA_CHECK(!s.seq.running(), "sequence " << id << " is still running; pause it before resume");
  const int64_t V = model_.config().vocab_size;
  for (int64_t t : tokens) STRATA_CHECK(t >= 0 && t < V, "appended token id " << t << " is outside the vocabulary");
  STRATA_CHECK(static_cast<int64_t>(s.seq.tokens.size() + tokens.size()) < options_.max_seq_len,
               "sequence " << id << " would grow to " << (s.seq.tokens.size() + tokens.size())
                           << " tokens, beyond max_seq_len " << options_.max_seq_len);
  s.seq.tokens.insert(s.seq.tokens.end(), tokens.begin(), tokens.end());
  s.seq.generated.clear();
  s.seq.logprobs.clear();
  s.options = options;
  s.eos = options.eos_ids;
  if (s.eos.empty() && options.use_config_eos) s.eos = model_.config().eos_token_ids;
  s.seq.reason = FinishReason::kRunning;
}

void GenerationEngine::remove(int64_t id) {
  Slot& s = get(id);
  cache_.release(s.slot);
  seqs_.erase(id);
}

int64_t GenerationEngine::num_running() const {
  int64_t n = 0;
  for (const auto& kv : seqs_) n += kv.second->seq.running() ? 1 : 0;
  return n;
}

void GenerationEngine::finish_check(Slot& s) {
  auto& seq = s.seq;
  const int64_t tok = seq.generated.back();
  if (std::find(s.eos.begin(), s.eos.end(), tok) != s.eos.end()) {
    seq.reason = FinishReason::kEos;
    return;
  }
  for (const auto& stop : s.options.stop_sequences) {
    if (stop.size() <= seq.generated.size() &&
        std::equal(stop.begin(), stop.end(), seq.generated.end() - static_cast<std::ptrdiff_t>(stop.size()))) {
      seq.reason = FinishReason::kStop;
      return;
    }
  }
  if (static_cast<int64_t>(seq.generated.size()) >= s.options.max_new_tokens ||
      static_cast<int64_t>(seq.tokens.size()) >= options_.max_seq_len)
    seq.reason = FinishReason::kLength;
}

std::vector<int64_t> GenerationEngine::step() {
  torch::NoGradGuard no_grad;
  // Adds the time since the last mark to `part` (EngineTimes). No device sync here: on CUDA that
  // would stall the host between the prefill and the decoding launches of every step.
  using Clock = std::chrono::steady_clock;
  auto mark_t = Clock::now();
  auto mark = [&](double& part) {
    const auto now = Clock::now();
    part += std::chrono::duration<double>(now - mark_t).count();
    mark_t = now;
  };
  std::vector<Slot*> prefill, decode;
  for (auto& kv : seqs_) {
    Slot& s = *kv.second;
    if (!s.seq.running()) continue;
    const int64_t pending = static_cast<int64_t>(s.seq.tokens.size()) - s.cached;
    STRATA_ASSERT(pending >= 1, "running sequence " << s.seq.id << " has nothing to feed");
    (pending == 1 ? decode : prefill).push_back(&s);
  }
  // Ascending slots let forward_cached read a contiguous block of the cache without a gather.
  auto by_slot = [](const Slot* a, const Slot* b) { return a->slot < b->slot; };
  std::sort(prefill.begin(), prefill.end(), by_slot);
  std::sort(decode.begin(), decode.end(), by_slot);
  std::vector<Slot*> order;
  std::vector<Tensor> last;  // hidden states of each sequence's last position: [1, H]
  auto lopt = torch::TensorOptions().dtype(torch::kInt64);
  // Fresh prompts identical to another fresh prompt of this step are not run: they copy the
  // first one's KV after its forward (`copies`: leader -> followers) and take its last hidden
  // state, so a group of G samples costs one prefill instead of G.
  std::map<Slot*, std::vector<Slot*>> copies;
  if (options_.share_prompt_prefill) {
    std::map<std::vector<int64_t>, Slot*> leader_of;
    std::vector<Slot*> kept;
    for (Slot* s : prefill) {
      if (s->cached == 0) {
        auto [it, fresh] = leader_of.emplace(s->seq.tokens, s);
        if (!fresh) {
          copies[it->second].push_back(s);
          continue;
        }
      }
      kept.push_back(s);
    }
    prefill.swap(kept);
  }
  // Prompts and resumed segments: one batched forward per group of equal uncached length
  // (e.g. a wave of same-length prompts), each row a sequence's uncached tokens.
  std::map<int64_t, std::vector<Slot*>> by_len;
  for (Slot* s : prefill) by_len[static_cast<int64_t>(s->seq.tokens.size()) - s->cached].push_back(s);
  for (auto& [n, group] : by_len) {
    std::vector<int64_t> ids, slots, starts;
    for (Slot* s : group) {
      ids.insert(ids.end(), s->seq.tokens.begin() + s->cached, s->seq.tokens.end());
      slots.push_back(s->slot);
      starts.push_back(s->cached);
    }
    const int64_t B = static_cast<int64_t>(group.size());
    Tensor h = model_.forward_cached(torch::tensor(ids, lopt).view({B, n}), cache_, slots, starts);  // [B, n, H]
    tokens_forwarded_ += B * n;
    times_.prefill_tokens += B * n;
    for (int64_t b = 0; b < B; ++b) {
      Slot* lead = group[static_cast<size_t>(b)];
      lead->cached += n;
      const Tensor hb = h.select(1, n - 1).narrow(0, b, 1);
      last.push_back(hb);
      order.push_back(lead);
      auto c = copies.find(lead);
      if (c == copies.end()) continue;
      std::vector<int64_t> to;
      for (Slot* f : c->second) to.push_back(f->slot);
      const Tensor idx = torch::tensor(to, lopt.device(model_.device()));
      using torch::indexing::Slice;
      for (int64_t l = 0; l < cache_.num_layers(); ++l) {
        for (Tensor* kv : {&cache_.k(l), &cache_.v(l)}) {
          const Tensor src = kv->index({lead->slot, Slice(), Slice(0, n)});  // [kvh, n, d]
          kv->index_put_({idx, Slice(), Slice(0, n)}, src.unsqueeze(0).expand({idx.size(0), -1, -1, -1}));
        }
      }
      for (Slot* f : c->second) {
        f->cached = n;
        last.push_back(hb);
        order.push_back(f);
      }
    }
  }
  mark(times_.prefill_s);
  // Decoding sequences: one batched forward of their last token.
  if (!decode.empty()) {
    std::vector<int64_t> ids, slots, starts;
    for (Slot* s : decode) {
      ids.push_back(s->seq.tokens.back());
      slots.push_back(s->slot);
      starts.push_back(s->cached);
    }
    const int64_t B = static_cast<int64_t>(decode.size());
    Tensor h = model_.forward_cached(torch::tensor(ids, lopt).view({B, 1}), cache_, slots, starts);  // [B, 1, H]
    tokens_forwarded_ += B;
    times_.decode_tokens += B;
    for (int64_t b = 0; b < B; ++b) {
      decode[static_cast<size_t>(b)]->cached += 1;
      last.push_back(h.select(1, 0).narrow(0, b, 1));
      order.push_back(decode[static_cast<size_t>(b)]);
    }
  }
  mark(times_.decode_s);
  std::vector<int64_t> stopped;
  if (order.empty()) return stopped;
  Tensor logits = model_.lm_head(torch::cat(last, 0));  // [n, V]
  std::vector<const SamplingOptions*> opts;
  std::vector<Rng*> rngs;
  for (Slot* s : order) {
    opts.push_back(&s->options.sampling);
    rngs.push_back(&s->rng);
  }
  const auto picks = sample_tokens(logits, opts, rngs);
  for (size_t i = 0; i < order.size(); ++i) {
    Slot& s = *order[i];
    s.seq.tokens.push_back(picks[i].id);
    s.seq.generated.push_back(picks[i].id);
    s.seq.logprobs.push_back(picks[i].logprob);
    finish_check(s);
    if (!s.seq.running()) stopped.push_back(s.seq.id);
  }
  mark(times_.sample_s);
  return stopped;
}

void GenerationEngine::run() {
  while (num_running() > 0) step();
}

std::vector<GenerationResult> generate(const Model& model, const std::vector<std::vector<int64_t>>& prompts,
                                       const GenerationOptions& options, const EngineOptions& engine_options) {
  GenerationEngine engine(model, engine_options);
  std::vector<GenerationResult> results(prompts.size());
  std::map<int64_t, size_t> owner;
  size_t next = 0;
  while (next < prompts.size() || engine.num_running() > 0) {
    while (next < prompts.size() && engine.has_free_slot()) {
      GenerationOptions o = options;
      o.seed = options.seed + next;
      owner[engine.add(prompts[next], o)] = next;
      ++next;
    }
    for (int64_t id : engine.step()) {
      const Sequence& s = engine.sequence(id);
      GenerationResult& r = results[owner.at(id)];
      r.tokens = s.generated;
      r.logprobs = s.logprobs;
      r.reason = s.reason;
      engine.remove(id);
    }
  }
  return results;
}

}  // namespace strata::agent
