// grpo_train's loop: rollouts -> advantages (GRPO or Stratified GRPO) -> PPO-clip update, with
// a console line per step, a JSONL metrics file, TensorBoard events and a rollouts file per step.
//
// Before any expensive work (loading weights, rollouts) train_grpo checks every part of the
// config it can: the keys (validate()), the device, the model directory (config.json, weights,
// tokenizer.json), the QA file, the chat format, the retrieval daemon (GET /health, or a probe
// POST /retrieve for servers without /health, such as Search-R1's) and, with resume, the
// checkpoint and the config it was written with. Each failure is a strata::Error that names the
// key and the file or URL.
//
// Learning rate: linear warm-up over the first W steps (W = warmup_steps, or
// floor(warmup_ratio * steps) as veRL computes it), then constant or cosine down to
// min_lr_ratio * lr (see lr_at_step).
//
// Device and precision (`device` cpu | cuda | cuda:N, `precision`):
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
// products still use `threads`.
// rollout_precision: what the rollouts sample from. bf16 = a bf16 copy of the policy, refreshed
// after every update (with bf16_master, the policy itself); fp32 = the fp32 policy itself (not
// with bf16_master). auto = bf16 under precision bf16 or bf16_master, and under fp32 when the
// device is a CPU with AVX512-BF16 or AMX-BF16 (decoding reads every weight once per token, so
// half the bytes is about half the time there); fp32 otherwise. Under fp32 training a bf16
// sampler is slightly off-policy: the loss's old log-probs still come from the fp32 policy (never
// from the sampler), and rollout/logp_mismatch logs the gap (sampler vs policy, per token).
// Checkpoints and the final model are written in float32 (the weights or the masters), so a
// resume continues exactly.
//
// Checkpoints (every save_every steps and at the end) hold the policy in the Hugging Face layout,
// the optimiser state, the data order and position, the RNG state and the config; they are
// written to a temporary folder (.tmp_step_N), synced, then renamed, keeping the last
// keep_checkpoints. A run killed while writing one leaves the previous checkpoint intact; the
// leftover temporary folder is removed when the next run starts. resume continues from the
// newest checkpoint exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rl/advantage.h"
#include "rl/grpo_step.h"
#include "rl/loss.h"
#include "rl/rollout.h"

namespace strata::rl {

struct TrainerConfig {
  std::string model;            // Hugging Face model directory (config.json, weights, tokenizer.json)
  std::string train_data;       // QA file (any format data/qa.h reads)
  std::string retriever = "http://127.0.0.1:8000/retrieve";  // Search-R1 /retrieve endpoint
  std::string out_dir = "runs/grpo";  // logs, rollouts and the final model
  int steps = 10;               // RL steps
  int prompts_per_step = 8;     // B prompts per step (each sampled rollout.samples_per_prompt times)
  uint64_t seed = 1;            // data order and sampling
  double lr = 1e-6;             // AdamW learning rate
  double weight_decay = 0.0;    // AdamW weight decay
  std::string lr_schedule = "constant";  // after warm-up: constant or cosine
  int warmup_steps = 0;         // linear LR warm-up over this many RL steps
  double warmup_ratio = 0.0;    // or over floor(warmup_ratio * steps) steps (Search-R1: 0.285)
  double min_lr_ratio = 0.0;    // cosine ends at min_lr_ratio * lr
  std::string device = "cpu";   // cpu, cuda or cuda:N
  std::string precision = "fp32";  // fp32, bf16 (autocast) or bf16_master
  std::string rollout_precision = "auto";  // what generates: auto, fp32 or bf16 (see below)
  int threads = 0;              // torch intra-op threads (0 = LibTorch's default)
  int rollout_threads = 1;      // intra-op threads while rolling out (0 = as `threads`); see below
  int save_every = 0;           // checkpoint every this many steps (0 = only at the end)
  int keep_checkpoints = 2;     // newest checkpoints kept
  RolloutOptions rollout;       // sampling, batch, environment, reward
  AdvantageOptions advantage;   // grpo or stratified (SAN + blend)
  LossOptions loss;             // PPO clip, KL, entropy, aggregation
  UpdateOptions update;         // PPO epochs, mini/micro batches, grad clip

  void validate() const;
  template <class V>
  void visit(V& v) {
    v("model", model, "Hugging Face model directory");
    v("train_data", train_data, "training questions");
    v("retriever", retriever, "retrieval endpoint");
    v("out_dir", out_dir, "output directory");
    v("steps", steps, "RL steps");
    v("prompts_per_step", prompts_per_step, "prompts per step");
    v("seed", seed, "seed");
    v("lr", lr, "AdamW learning rate");
    v("weight_decay", weight_decay, "AdamW weight decay");
    v("lr_schedule", lr_schedule, "LR after warm-up: constant or cosine");
    v("warmup_steps", warmup_steps, "linear warm-up steps");
    v("warmup_ratio", warmup_ratio, "linear warm-up over floor(warmup_ratio * steps) steps (instead of warmup_steps)");
    v("min_lr_ratio", min_lr_ratio, "cosine decays to min_lr_ratio * lr");
    v("device", device, "cpu, cuda or cuda:N");
    v("precision", precision, "fp32, bf16 (autocast, fp32 weights) or bf16_master (bf16 weights, fp32 master copy)");
    v("rollout_precision", rollout_precision,
      "rollouts on the policy (fp32) or on a bf16 copy (bf16); auto: bf16 with precision bf16/bf16_master, "
      "and with fp32 on a CPU with AVX512-BF16 or AMX");
    v("threads", threads, "torch threads (0 = default)");
    v("rollout_threads", rollout_threads,
      "torch threads while rolling out (0 = as threads); 1 avoids OpenMP barrier stalls of decoding on busy cores");
    v("save_every", save_every, "checkpoint every N steps (0 = only at the end)");
    v("keep_checkpoints", keep_checkpoints, "newest checkpoints kept");
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

// The run as a whole, from every step of out_dir/metrics.jsonl (steps before a --resume too).
struct TrainSummary {
  int steps = 0;                  // steps completed
  int window = 0;                 // steps averaged at each end: min(5, max(1, steps / 2))
  double first_reward = 0;        // mean reward of the first `window` steps
  double last_reward = 0;         // mean reward of the last `window` steps
  int skipped_zero_advantage = 0; // steps whose update was skipped (every advantage 0)
  int64_t trajectories = 0;       // trajectories rolled out
  int64_t failed = 0;             // of which ended by a failed retrieval (kept out of the loss)
};

// The summary of a run from its metrics.jsonl (the last line of a step wins; cut lines are
// skipped).
TrainSummary summarize_metrics_file(const std::string& path);

// The closing line of grpo_train: "trained N steps: mean reward A (steps 1-5) -> B (steps
// 16-20); K of N steps skipped (every advantage 0); F of T trajectories failed (retrieval)".
std::string format_summary(const TrainSummary& s);

// Adds the per-step statistics of a rollout batch to `m`: reward/mean, reward/em,
// rollout/answer_rate (ended with an answer), rollout/searches_per_traj, rollout/turns_per_traj,
// rollout/response_len (policy tokens per trajectory), rollout/trajectories, tokens/prompt,
// tokens/policy, tokens/observation, tokens/total (sums over the batch), rollout/end/<reason>
// (share of trajectories per end reason), and per stratum k: stratum/k/count, stratum/k/reward,
// stratum/k/bias (mean_k - mean) and, over the trajectories in the loss (not failed),
// stratum/k/adv and stratum/k/adv_std (mean and population std of the advantages).
void add_batch_metrics(const std::vector<env::pb::Trajectory>& batch, const std::vector<double>& advantages,
                       std::map<std::string, double>& m);

// Trains; with resume = true continues from the newest checkpoint in out_dir/checkpoints
// (refused, naming the keys, when the config differs in anything but steps, out_dir, threads,
// device, save_every and keep_checkpoints; `steps` too when the LR schedule depends on it).
//
// Testing hook: with STRATA_TEST_PAUSE_IN_CHECKPOINT=N in the environment, writing the
// checkpoint of step N stops after the weights and the optimiser state are in its temporary
// folder, creates the file <that folder>.paused and waits there (up to 10 minutes), so that a
// test can kill the process mid-checkpoint deterministically.
TrainSummary train_grpo(const TrainerConfig& cfg, bool resume = false);

}  // namespace strata::rl
