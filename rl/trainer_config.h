// grpo_train's config: every key, its checks, and the learning-rate schedule.
//
// Learning rate: linear warm-up over the first W steps (W = warmup_steps, or
// floor(warmup_ratio * steps) as veRL computes it), then constant or cosine down to
// min_lr_ratio * lr (see lr_at_step).
//
// Device and precision (`device` cpu | cuda | cuda:N, `precision`, rl/precision.h):
//   fp32         weights, gradients, optimiser and every pass in float32.
//   bf16         fp32 weights and optimiser; forward passes of the update (old, reference and
//                current log-probs) run under bf16 autocast, so matrix products are bf16 while
//                norms, softmax and the loss stay fp32. Rollouts run on a bf16 copy of the
//                policy refreshed after every update (a device-side cast), because autocast
//                would re-cast every weight on every decoding step. The reference stays fp32
//                under the same autocast, so before the first update its log-probs equal the
//                policy's (KL starts at 0 up to the noise of different padding), which a bf16
//                reference would not give.
//   bf16_master  the policy holds bf16 weights used for rollouts and forward/backward; the
//                optimiser updates fp32 master copies (gradients accumulated in fp32) that are
//                rounded back into the bf16 weights after each step; the reference is bf16.
//                Less memory than bf16 (no fp32 weights on the forward path), less accurate
//                (bf16 activations throughout).
// rollout_threads: decoding runs hundreds of small parallel regions per token; when the cores are
// shared with other processes, each OpenMP barrier can wait a whole scheduler time slice for a
// descheduled thread. On the 2-core development VM under load, 16 SmolLM2 sequences x 48 tokens
// took 7.7 s with 1 thread and 191 s with 2 (docs/BENCHMARKS.md). The update's large matrix
// products still use `threads`. configs/demo.json sets 0 (the demo assumes the cores are its own).
// rollout_precision (the issue's `rollout.weights`): what the rollouts sample from. bf16 = a bf16
// copy of the policy, refreshed after every update (with bf16_master, the policy itself); int8 =
// a copy whose linear layers and lm_head hold weight-only int8 (per-output-channel scales,
// agent/int8_linear.h) with bf16 activations, re-quantised from the trained weights after every
// update; fp32 = the fp32 policy itself (not with bf16_master). auto = bf16 under precision bf16
// or bf16_master, and under fp32 when the device is CUDA or a CPU with AVX512-BF16 or AMX-BF16
// (agent::auto_inference_dtype, the rule generate and evaluate follow too: decoding reads every
// weight once per token, so half the bytes is about half the time there); fp32 otherwise. auto
// never picks int8, and the demo does not set it. int8 rollouts are 1.33-1.51x faster than bf16
// ones over 20 RL steps at the same reward (two runs of scripts/bench/decode.sh). But over the
// whole demo, one of two int8 runs drifted to two searches per question and ended 6 EM points
// below bf16. And bf16 needs no importance-sampling correction (docs/BENCHMARKS.md, "What caps
// the int8 rollout ratio, and int8 over the whole demo").
// A copy (bf16 under fp32 or bf16 training, or int8) samples slightly off-policy: the loss's old
// log-probs still come from the trained weights (never from the sampler), rollout/logp_mismatch
// logs the gap, and truncated importance sampling (loss.tis_cap, rl/loss.h) reweights each
// token's policy-gradient term by min(pi_trained_old / pi_rollout, C) to correct it.
// Checkpoints and the final model are written in float32 (the weights or the masters), so a
// resume continues exactly.
//
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"
#include "retrieval/client_urls.h"
#include "rl/advantage.h"
#include "rl/loss.h"
#include "rl/ppo_update.h"
#include "rl/precision.h"
#include "rl/rollout.h"

namespace strata::rl {

// The learning rate after warm-up.
enum class LrSchedule { kConstant, kCosine };
inline constexpr config::EnumName<LrSchedule> kLrScheduleNames[] = {{LrSchedule::kConstant, "constant"},
                                                                    {LrSchedule::kCosine, "cosine"}};
inline config::EnumTable<LrSchedule> enum_names(LrSchedule) { return kLrScheduleNames; }

// Hard caps on sizes, checked before any work (TrainerConfig::validate), far above any recipe
// (Search-R1: 512 prompts x 5 samples, 64 sequences at once, 4096 positions): a value beyond them
// is a typo, and would otherwise allocate gigabytes before failing somewhere deep. The memory the
// sizes imply is also estimated against the model and the memory available (check_sizes).
inline constexpr int kMaxTrajectoriesPerStep = 65536;  // prompts_per_step x samples_per_prompt; mini/micro batch
inline constexpr int kMaxSamplesPerPrompt = 1024;
inline constexpr int kMaxRolloutBatch = 65536;         // rollout.max_batch
inline constexpr int64_t kMaxSeqLen = 1 << 20;         // rollout.max_seq_len (and the model's context)
inline constexpr int kMaxThreads = 1024;

// Retrieval during rollouts: the client's retry budget per search, a warning while searches wait,
// and what a step does when many of its searches fail after their retries.
//   * a search is tried up to max_attempts times, each attempt cut after timeout_ms, with waits of
//     backoff_initial_ms, doubling, at most backoff_max_ms (each scaled by a random factor in
//     [0.5, 1]) in between; a 503's Retry-After is honoured. The defaults ride out a daemon
//     restart of about 4 s and bound a hung daemon to about a minute per search.
//   * while searches wait and none has come back for warn_after_s, a warning says so (and again
//     every warn_after_s).
//   * a step in which more than max_failed_fraction of the trajectories failed retrieval is not
//     used for the update (update/skipped_failed = 1; the weights do not change); after
//     max_failed_steps such steps in a row the run stops with exit status 3 and says how to
//     resume.
struct RetrievalBudget {
  int timeout_ms = 10000;          // per attempt
  int max_attempts = 6;            // attempts per search, the first included
  int backoff_initial_ms = 250;    // wait before the 2nd attempt
  int backoff_max_ms = 4000;       // cap on one wait
  double warn_after_s = 15;        // warn when waiting searches get no answer for this long
  double max_failed_fraction = 0.2;  // a step with a larger share of failed trajectories is not used
  int max_failed_steps = 3;        // stop after this many such steps in a row

  void validate() const;
  template <class V>
  void visit(V& v) {
    v("timeout_ms", timeout_ms, "per search attempt, in ms (a hung daemon costs at most max_attempts of these)");
    v("max_attempts", max_attempts, "attempts per search, the first included (1..100)");
    v("backoff_initial_ms", backoff_initial_ms, "wait before the 2nd attempt, doubling per attempt");
    v("backoff_max_ms", backoff_max_ms, "cap on one wait between attempts");
    v("warn_after_s", warn_after_s, "warn while searches wait with no answer for this many seconds");
    v("max_failed_fraction", max_failed_fraction,
      "a step in which a larger share of trajectories failed retrieval is not used for the update");
    v("max_failed_steps", max_failed_steps,
      "stop the run (exit 3, resumable) after this many unused steps in a row");
  }
};

struct TrainerConfig {
  std::string model;            // Hugging Face model directory (config.json, weights, tokenizer.json)
  std::string train_data;       // QA file (any format data/qa.h reads)
  retrieval::RetrieverUrls retriever = "http://127.0.0.1:8000/retrieve";  // /retrieve URL, or a list
  std::string out_dir = "runs/grpo";  // logs, rollouts and the final model
  int steps = 10;               // RL steps
  int prompts_per_step = 8;     // B prompts per step (each sampled rollout.samples_per_prompt times)
  uint64_t seed = 1;            // data order, sampling and update (rollout.seed moves the sampling alone)
  double lr = 1e-6;             // AdamW learning rate
  double weight_decay = 0.0;    // AdamW weight decay
  LrSchedule lr_schedule = LrSchedule::kConstant;  // after warm-up: constant or cosine
  int warmup_steps = 0;         // linear LR warm-up over this many RL steps
  double warmup_ratio = 0.0;    // or over floor(warmup_ratio * steps) steps (Search-R1: 0.285)
  double min_lr_ratio = 0.0;    // cosine ends at min_lr_ratio * lr
  std::string device = "cpu";   // cpu, cuda or cuda:N (agent::pick_device)
  Precision precision = Precision::kFp32;  // fp32, bf16 (autocast) or bf16_master
  RolloutPrecision rollout_precision = RolloutPrecision::kAuto;  // what generates (see above)
  int threads = 0;              // torch intra-op threads (0 = LibTorch's default)
  int rollout_threads = 1;      // intra-op threads while rolling out (0 = as `threads`); see below
  int save_every = 0;           // checkpoint every this many steps (0 = only at the end)
  int keep_checkpoints = 2;     // newest checkpoints kept
  RetrievalBudget retrieval;    // retries, timeouts, the failure-rate limit (above)
  RolloutOptions rollout;       // sampling, batch, environment, reward
  AdvantageOptions advantage;   // grpo or stratified (SAN + blend)
  LossOptions loss;             // PPO clip, KL, entropy, aggregation
  UpdateOptions update;         // PPO epochs, mini/micro batches, grad clip

  // Leaf keys (device syntax included; whether the device exists is agent::pick_device's call).
  void validate() const;
  // What the rollouts sample from (rollout_precision with auto resolved: fp32, bf16 or int8), given
  // whether the CPU has bf16 dot-product instructions.
  RolloutPrecision rollout_weights(bool cpu_bf16) const;
  // Whether the rollouts' activations (and KV cache) are bf16: bf16 or int8 weights.
  bool bf16_rollouts(bool cpu_bf16) const { return rollout_weights(cpu_bf16) != RolloutPrecision::kFp32; }
  template <class V>
  void visit(V& v) {
    v("model", model, "Hugging Face model directory");
    v("train_data", train_data, "training questions");
    v("retriever", retriever, "retrieval endpoint: a /retrieve URL, or a list of them (one daemon each)");
    v("out_dir", out_dir, "output directory");
    v("steps", steps, "RL steps");
    v("prompts_per_step", prompts_per_step,
      "prompts per step (at most 65536 trajectories per step: prompts_per_step x rollout.samples_per_prompt)");
    v("seed", seed,
      "seed of the data order, the sampling and the update; step t samples with mix64(seed + t) + rollout.seed - 1");
    v("lr", lr, "AdamW learning rate (0 < lr <= 1)");
    v("weight_decay", weight_decay, "AdamW weight decay");
    v("lr_schedule", lr_schedule, "LR after warm-up: constant or cosine");
    v("warmup_steps", warmup_steps, "linear warm-up steps");
    v("warmup_ratio", warmup_ratio, "linear warm-up over floor(warmup_ratio * steps) steps (instead of warmup_steps)");
    v("min_lr_ratio", min_lr_ratio, "cosine decays to min_lr_ratio * lr");
    v("device", device, "cpu, cuda or cuda:N");
    v("precision", precision, "fp32, bf16 (autocast, fp32 weights) or bf16_master (bf16 weights, fp32 master copy)");
    v("rollout_precision", rollout_precision,
      "rollouts on the policy (fp32), on a bf16 copy (bf16) or on a weight-only int8 copy (int8, bf16 "
      "activations); auto: bf16 with precision bf16/bf16_master, and with fp32 on CUDA or a CPU with AVX512-BF16 "
      "or AMX; a copy's samples are corrected by loss.tis_cap");
    v("threads", threads, "torch threads (0 = default; at most 1024)");
    v("rollout_threads", rollout_threads,
      "torch threads while rolling out (0 = as threads); 1 avoids OpenMP barrier stalls of decoding on busy cores");
    v("save_every", save_every, "checkpoint every N steps (0 = only at the end)");
    v("keep_checkpoints", keep_checkpoints, "newest checkpoints kept");
    v("retrieval", retrieval, "retrieval retries, timeouts and failure-rate limit");
    v("rollout", rollout, "rollout options");
    v("advantage", advantage, "advantage estimator");
    v("loss", loss, "policy loss");
    v("update", update, "PPO update");
  }
};

// Warm-up steps of the run: warmup_steps, or floor(warmup_ratio * steps).
int warmup_steps_of(const TrainerConfig& cfg);

// The learning rate of RL step `step` (1-based, 1..cfg.steps). With W warm-up steps and s = step-1:
//   s < W:  lr * (s + 1) / W                      (linear; the first step is not wasted at 0)
//   else:   constant: lr
//           cosine:   lr * (m + (1 - m) * (1 + cos(pi * (s - W) / (steps - W))) / 2), m = min_lr_ratio
// Past warm-up this is transformers' get_{constant,cosine}_schedule_with_warmup (what veRL
// uses) at the same 0-based step; during warm-up ours is one step ahead of theirs (theirs starts
// at 0).
double lr_at_step(const TrainerConfig& cfg, int step);

// The sizes against the model (before its weights load): rollout.max_seq_len within the model's
// max_position_embeddings, and the rollouts' KV cache (min(max_batch, trajectories per step) slots
// x max_seq_len positions x layers x 2 x kv heads x head_dim, in bf16 or fp32) and the step's
// trajectories (about 16 bytes per position) within the memory available (MemAvailable of
// /proc/meminfo; on a CUDA device only the trajectories, which stay on the host). Throws
// strata::Error naming the key.
void check_sizes(const TrainerConfig& cfg, int64_t num_layers, int64_t kv_heads, int64_t head_dim,
                 int64_t max_positions, const std::string& model_config_file, bool bf16_rollouts);

// Bytes of memory available to this process (MemAvailable), or -1 when unknown.
int64_t available_memory_bytes();

// The CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16), which oneDNN uses for bf16
// matrix products.
bool cpu_has_bf16_dot();

}  // namespace strata::rl
