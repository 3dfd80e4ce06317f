// grpo_train's loop: rollouts -> advantages (GRPO or Stratified GRPO) -> PPO-clip update, with
// a console line per step, a JSONL metrics file, TensorBoard events and a rollouts file per step.
// Checkpoints (every save_every steps and at the end) hold the policy in the Hugging Face layout,
// the optimiser state, the data order and position, the RNG state and the config; they are
// written to a temporary folder, synced, then renamed, keeping the last keep_checkpoints.
// resume continues from the newest one exactly. Not yet here: LR schedules beyond linear
// warm-up, bf16 on CUDA.
#pragma once

#include <cstdint>
#include <string>

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
  int warmup_steps = 0;         // linear LR warm-up over this many RL steps
  int threads = 0;              // torch intra-op threads (0 = LibTorch's default)
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
    v("warmup_steps", warmup_steps, "linear warm-up steps");
    v("threads", threads, "torch threads (0 = default)");
    v("save_every", save_every, "checkpoint every N steps (0 = only at the end)");
    v("keep_checkpoints", keep_checkpoints, "newest checkpoints kept");
    v("rollout", rollout, "rollout options");
    v("advantage", advantage, "advantage estimator");
    v("loss", loss, "policy loss");
    v("update", update, "PPO update");
  }
};

struct TrainSummary {
  int steps = 0;
  double first_reward = 0;  // mean reward of the first step
  double last_reward = 0;   // mean reward of the last step
};

// Trains; with resume = true continues from the newest checkpoint in out_dir/checkpoints
// (refused, naming the keys, when the config differs in anything but steps, out_dir, threads,
// save_every and keep_checkpoints).
TrainSummary train_grpo(const TrainerConfig& cfg, bool resume = false);

}  // namespace strata::rl
