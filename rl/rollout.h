// The async rollout engine: B prompts x G samples of search-agent trajectories.
//
// Generation runs on the calling thread through agent::GenerationEngine (continuous batching).
// When a trajectory emits </search>, its sequence leaves the running batch and its query goes to
// the retrieval daemon through the client (many in flight at once, bounded by the client's
// max_in_flight); the others keep generating. When the documents come back (on the client's
// thread, handed over through a completion queue), the observation is appended to the
// sequence's KV cache (only the new tokens are prefilled) and it rejoins the batch.
//
// `sync_search = true` is the Search-R1-style baseline used by the benchmark: every running
// trajectory finishes its turn, then all searches of the turn go out as one blocking batched
// request, then all resume together.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/generation.h"
#include "agent/model.h"
#include "agent/tokenizer/tokenizer.h"
#include "data/qa.h"
#include "env/rollout_file.h"
#include "env/search_env.h"
#include "retrieval/client.h"
#include "rl/advantage.h"

namespace strata::rl {

struct RolloutOptions {
  int samples_per_prompt = 5;       // G: trajectories per prompt group
  double temperature = 1.0;         // sampling temperature (0 = greedy)
  double top_p = 1.0;               // nucleus sampling (1 = off)
  int64_t top_k = 0;                // top-k sampling (0 = off)
  int max_batch = 64;               // sequences generating at once (KV-cache slots)
  int64_t max_seq_len = 2048;       // prompt + response positions per sequence
  uint64_t seed = 1;                // sampling seed; trajectory (p, g) uses a stream of its own
  std::string chat = "plain";       // prompt formatting: plain, chatml or llama3
  std::string stratum_key = "searches";  // searches or searches_x_hit
  bool sync_search = false;         // Search-R1-style blocking turns (benchmark baseline)
  env::SearchEnvOptions env;        // protocol, limits and reward

  void validate() const;
  template <class V>
  void visit(V& v) {
    v("samples_per_prompt", samples_per_prompt, "G: trajectories per prompt (grpo_train: at most 1024)");
    v("temperature", temperature, "sampling temperature (0 = greedy)");
    v("top_p", top_p, "nucleus sampling (1 = off)");
    v("top_k", top_k, "top-k sampling (0 = off)");
    v("max_batch", max_batch,
      "sequences generating at once (grpo_train: at most 65536, and their KV cache within the memory available)");
    v("max_seq_len", max_seq_len,
      "prompt + response positions per sequence (grpo_train: at most the model's max_position_embeddings)");
    v("seed", seed, "sampling seed (grpo_train: shifts each step's sampling stream; 1 = none)");
    v("chat", chat, "prompt formatting: plain, chatml or llama3");
    v("stratum_key", stratum_key, "searches or searches_x_hit");
    v("sync_search", sync_search, "block each turn on search (Search-R1 baseline)");
    v("env", env, "search environment");
  }
};

struct RolloutMetrics {
  double seconds = 0;             // wall time of the phase
  double generate_seconds = 0;    // time inside engine steps (prefill + decode)
  double wait_seconds = 0;        // time with nothing to generate, waiting on retrieval
  // generate_seconds split as the engine measured it (agent::EngineTimes): prefill forwards,
  // decoding forwards, lm_head + sampling.
  double prefill_seconds = 0;
  double decode_seconds = 0;
  double sample_seconds = 0;
  int64_t prefill_tokens = 0;     // positions prefilled (prompts once per group, observations)
  int64_t decode_tokens = 0;      // positions decoded
  int64_t generated_tokens = 0;   // tokens sampled by the policy
  double tokens_per_s = 0;        // generated_tokens / seconds
  double mean_occupancy = 0;      // mean running sequences per engine step / max_batch
  double retrieval_p50_ms = 0;
  double retrieval_p99_ms = 0;
  int64_t retrieval_calls = 0;
  int64_t failed = 0;             // trajectories ended by a failed retrieval
  std::map<std::string, int> end_reasons;
  std::map<int, int> searches;    // number of searches -> trajectories
};

struct RolloutBatch {
  std::vector<env::pb::Trajectory> trajectories;  // prompt-major: p * G + g
  RolloutMetrics metrics;
};

// Runs one rollout phase. Group ids are `group_offset + p`, unique per prompt in the batch.
// Prompt p samples from the stream of prompt `prompt_offset + p` of the step: a data-parallel rank
// holding prompts [k, k + n) of the step passes k, and samples what one process would.
RolloutBatch run_rollouts(const agent::Model& model, const agent::Tokenizer& tokenizer,
                          retrieval::RetrievalClient& client,
                          const std::vector<data::QaRecord>& prompts, const RolloutOptions& opts,
                          int step = 0, int64_t group_offset = 0, int64_t prompt_offset = 0);

// The prompt token ids for a question under the given chat style.
std::vector<int32_t> encode_prompt(const agent::Tokenizer& tok, const std::string& user_text,
                                   const std::string& chat);

}  // namespace strata::rl
