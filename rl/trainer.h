// grpo_train's loop: rollouts -> advantages (GRPO or Stratified GRPO) -> PPO-clip update, with
// a console line per step, a JSONL metrics file, TensorBoard events and a rollouts file per step.
// Not yet here (see the open trainer issue): periodic checkpoints and exact --resume, LR
// schedules beyond linear warm-up, bf16 on CUDA.
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

TrainSummary train_grpo(const TrainerConfig& cfg);

}  // namespace strata::rl
