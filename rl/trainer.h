// grpo_train's loop: rollouts -> advantages (GRPO or Stratified GRPO) -> PPO-clip update, with
// a console line per step, a JSONL metrics file, TensorBoard events and a rollouts file per step.
// The config and its keys are in rl/trainer_config.h, checkpoints in rl/checkpoint_state.h, the
// logged metrics in rl/train_metrics.h.
//
// Before any expensive work (loading weights, rollouts) GrpoTrainer checks every part of the
// config it can: the keys (validate()), the device (agent::pick_device), the model directory
// (config.json, weights, tokenizer.json), the QA file, the chat format, the retrieval daemon
// (RetrievalClient::health(): GET /health, or a probe POST /retrieve for servers without /health,
// such as Search-R1's) and, with resume, the checkpoint and the config it was written with. Each
// failure is a strata::Error that names the key and the file or URL; an unreachable daemon is a
// strata::UnreachableError (programs exit with 3).
#pragma once

#include <memory>

#include "rl/train_metrics.h"
#include "rl/trainer_config.h"

namespace strata::rl {

class GrpoTrainer {
 public:
  // Runs the checks above, then loads the policy (and the reference when KL is on), the
  // optimiser and, with resume, the newest checkpoint of out_dir/checkpoints (refused, naming the
  // keys, when the config differs in anything but steps, out_dir, threads, device, save_every and
  // keep_checkpoints; `steps` too when the LR schedule depends on it).
  GrpoTrainer(const TrainerConfig& cfg, bool resume);
  ~GrpoTrainer();
  GrpoTrainer(const GrpoTrainer&) = delete;
  GrpoTrainer& operator=(const GrpoTrainer&) = delete;

  // All cfg.steps steps are done.
  bool done() const;
  // One RL step: draw prompts, roll out, advantages, update, log (console, metrics.jsonl,
  // TensorBoard, rollouts file) and, when due, a checkpoint.
  StepMetrics step();
  // Saves the policy to out_dir/final and summarises the whole run from metrics.jsonl.
  TrainSummary finish();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// GrpoTrainer from set-up to finish().
//
// Testing hook: with STRATA_TEST_PAUSE_IN_CHECKPOINT=N in the environment, writing the
// checkpoint of step N stops after the weights and the optimiser state are in its temporary
// folder, creates the file <that folder>.paused and waits there (up to 10 minutes), so that a
// test can kill the process mid-checkpoint deterministically.
TrainSummary train_grpo(const TrainerConfig& cfg, bool resume = false);

}  // namespace strata::rl
