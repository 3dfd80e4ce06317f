// Generation engine with a slot-based KV cache and continuous batching.
//
// Sequences are added at any time, advanced together one token per step(), and leave the batch
// when they finish (EOS, a stop token sequence, max_new_tokens, or the cache capacity). A
// finished or paused sequence keeps its slot and cache until remove(): resume() appends tokens
// (e.g. retrieved documents) and prefills only those against the cached prefix.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/kv_cache.h"
#include "agent/model.h"
#include "agent/sampling.h"
#include "core/rng.h"

namespace strata::agent {

struct GenerationOptions {
  int64_t max_new_tokens = 128;                     // per segment (add or resume)
  SamplingOptions sampling;                         // greedy when sampling.temperature == 0
  uint64_t seed = 0;                                // this sequence's sampling stream
  std::vector<std::vector<int64_t>> stop_sequences; // stop after generating any of these id runs
  std::vector<int64_t> eos_ids;                     // stop ids; empty = the model config's eos ids
  bool use_config_eos = true;                       // when eos_ids is empty, use config eos ids
  void validate() const;
};

struct EngineOptions {
  int64_t max_slots = 16;      // sequences held at once (running, paused or finished)
  int64_t max_seq_len = 2048;  // positions per slot (prompt + everything generated/appended)
  // Prompts added since the last step() that are token-for-token identical (a GRPO group's G
  // samples of one question) are prefilled once; the other slots get a copy of its KV. Each
  // sequence still samples with its own seed.
  bool share_prompt_prefill = true;
};

enum class FinishReason { kRunning, kEos, kStop, kLength, kPaused };
const char* finish_reason_name(FinishReason r);

struct Sequence {
  int64_t id = -1;
  std::vector<int64_t> tokens;     // the whole sequence: prompt, generated and appended ids
  std::vector<int64_t> generated;  // ids sampled in the current segment (since add/resume)
  std::vector<float> logprobs;     // their log-probs under the sampling distribution
  FinishReason reason = FinishReason::kRunning;
  bool running() const { return reason == FinishReason::kRunning; }
};

// Where an engine's step() time went, summed since construction (seconds of wall time on the
// calling thread; on CUDA the forwards are only launched, so their device time shows up in
// sample_s, which waits for the logits). prefill: forwards of prompts and resumed segments (with the KV copies of shared
// prompts); decode: the batched forward of the decoding sequences' last tokens; sample: lm_head
// over the last positions, sampling and the stop checks.
struct EngineTimes {
  double prefill_s = 0;
  double decode_s = 0;
  double sample_s = 0;
  int64_t prefill_tokens = 0;  // positions run through prefill forwards
  int64_t decode_tokens = 0;   // positions run through decoding forwards
};

class GenerationEngine {
 public:
  // The model must outlive the engine. The cache is allocated on the model's device and dtype.
  explicit GenerationEngine(const Model& model, const EngineOptions& options = {});
  ~GenerationEngine();

  // Adds a sequence (it starts running; its prompt is prefilled in the next step()).
  // Throws when no slot is free or the prompt is empty/too long. Returns its id.
  int64_t add(const std::vector<int64_t>& prompt, const GenerationOptions& options);
  bool has_free_slot() const;
  // Stops generating for `id` (keeps its cache); a later resume() continues it.
  void pause(int64_t id);
  // Appends `tokens` (may be empty) to a non-running sequence and starts a new segment with
  // `options` (the sampling stream continues; its seed is not reapplied). Only the appended
  // tokens (plus the last sampled one, not yet cached) are prefilled.
  void resume(int64_t id, const std::vector<int64_t>& tokens, const GenerationOptions& options);
  // Frees the slot of `id`.
  void remove(int64_t id);

  // Advances every running sequence by one token; returns the ids that stopped running.
  std::vector<int64_t> step();
  // Steps until no sequence is running.
  void run();
  int64_t num_running() const;
  const Sequence& sequence(int64_t id) const;
  // Positions of `id` held in the KV cache (the last sampled token is fed in the next step).
  int64_t cached_length(int64_t id) const;
  // Tokens run through the model since construction (prefill + decode): a resumed sequence adds
  // only its uncached tokens, never its prefix again.
  int64_t tokens_forwarded() const { return tokens_forwarded_; }
  const EngineTimes& times() const { return times_; }

 private:
  struct Slot;
  Slot& get(int64_t id);
  const Slot& get(int64_t id) const;
  void finish_check(Slot& s);

  const Model& model_;
  EngineOptions options_;
  KVCache cache_;
  std::map<int64_t, std::unique_ptr<Slot>> seqs_;
  int64_t next_id_ = 0;
  int64_t tokens_forwarded_ = 0;
  EngineTimes times_;
};

struct GenerationResult {
  std::vector<int64_t> tokens;   // generated ids
  std::vector<float> logprobs;   // their log-probs
  FinishReason reason = FinishReason::kRunning;
};

// Runs `prompts` through one engine (all at once when they fit, else as slots free up).
// Sequence i samples with seed options.seed + i.
std::vector<GenerationResult> generate(const Model& model, const std::vector<std::vector<int64_t>>& prompts,
                                       const GenerationOptions& options, const EngineOptions& engine = {});

}  // namespace strata::agent
