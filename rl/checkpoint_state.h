// grpo_train's checkpoints on disk: writing one (kill-safe), finding the newest, removing what an
// interrupted write left, the loop state saved beside the weights, the metrics file trimmed back
// to a checkpoint, and the config check of --resume.
//
// A checkpoint OUT/checkpoints/step_NNNNNN/ holds model/ (the policy in the Hugging Face layout,
// fp32), optimizer.pt, state.json (CheckpointState) and config.json. A ZeRO-1 run
// (update.zero_stage 1) has one optimizer.rankR.pt per rank instead of optimizer.pt, each written
// by its rank (every rank holds its own share of the optimiser state). It is written to
// .tmp_step_NNNNNN, synced, then renamed, keeping the newest keep_checkpoints. A run killed while
// writing one leaves the previous checkpoint intact; the leftover temporary folder is removed
// when the next run starts.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <string>
#include <vector>

#include "agent/model.h"
#include "rl/trainer_config.h"

namespace strata::rl {

// Where the loop stands: what a checkpoint needs besides weights and optimiser to continue
// exactly.
struct CheckpointState {
  int step = 0;               // steps completed
  size_t cursor = 0;          // position in `order`
  std::vector<size_t> order;  // question order of the current pass
  std::string rng;            // data RNG state
  int world_size = 1;         // ranks of the run that wrote it (state.json: absent in older ones = 1)
  std::vector<std::string> rank_rng;  // every rank's data RNG state, by rank (empty: `rng` for all)
  int zero_stage = 0;         // update.zero_stage of the run (state.json: absent in older ones = 0)
};

// A ZeRO-1 checkpoint's share of the optimiser state of rank `rank`: "optimizer.rankR.pt".
std::string optimizer_shard_file(int rank);

// The folder step `step`'s checkpoint is written into before it is renamed to step_N.
std::string checkpoint_tmp_dir(const std::string& root, int step);

// ZeRO-1: rank 0 creates the (empty) temporary folder of step `step`; then every rank saves its
// optimiser state into it with save_optimizer_shard; then rank 0 calls write_checkpoint, which
// finds the shards there (the ranks must meet in between: a barrier).
void begin_checkpoint(const std::string& root, int step);
void save_optimizer_shard(const std::string& root, int step, int rank, torch::optim::Optimizer& optim);

// Writes OUT/checkpoints/step_N (N = st.step) under `root` as described above and removes all but
// the newest cfg.keep_checkpoints. With st.zero_stage 1, `optim` is not written: the temporary
// folder already holds every rank's optimizer.rankR.pt (begin_checkpoint), checked here. Testing
// hook: see train_grpo (STRATA_TEST_PAUSE_IN_CHECKPOINT).
void write_checkpoint(const std::string& root, const TrainerConfig& cfg, const agent::Model& weights,
                      torch::optim::Optimizer& optim, const CheckpointState& st);

// The newest complete checkpoint folder under `root` ("" when there is none).
std::string newest_checkpoint(const std::string& root);

// Removes the .tmp_step_N folders a run killed while writing a checkpoint left behind.
void remove_unfinished_checkpoints(const std::string& root);

// state.json of checkpoint folder `dir` (step_N), validated whole before anything uses it: a JSON
// object with step (= N), cursor (0..questions), order (a permutation of 0..questions-1, the
// training questions) and rng (a generator state), and, from data-parallel runs, world_size,
// rank_rng (one generator state per rank) and zero_stage (0 or 1). Anything else is a strata::Error naming the
// file and the key ("--resume: DIR/state.json: cursor: ...").
CheckpointState read_checkpoint_state(const std::string& dir, size_t questions);

// Checks that `path` (a checkpoint's optimizer.pt or optimizer.rankR.pt) is a readable LibTorch archive, before any
// weights load; a strata::Error naming the file otherwise.
void check_optimizer_file(const std::string& path);

// Size and CRC-32 (zlib's) of a checkpoint's binary files, the weights (model/...) and
// optimizer.pt (or every optimizer.rankR.pt), whose damage no other check can see (state.json and config.json are validated
// field by field instead): write_checksums records them in DIR/checksums.json when the checkpoint
// is written; verify_checksums compares them on --resume, before anything loads, and throws a
// strata::Error naming the damaged file. A checkpoint written before checksums existed is
// accepted with a warning.
void write_checksums(const std::string& dir);
void verify_checksums(const std::string& dir);

// The keys (dotted paths) in which `now` differs from the config a checkpoint was written with,
// leaving out those a resume may change (steps, out_dir, threads, rollout_threads, device,
// save_every, keep_checkpoints, retrieval) and naming `steps` too when the LR schedule depends on it
// (cosine, or a warm-up ratio). update.zero_stage is left out too: the trainer refuses its change
// with a message of its own (against state.json's zero_stage). Empty: the run can resume.
std::vector<std::string> resume_config_diff(const TrainerConfig& saved, const TrainerConfig& now);

// Drops metrics lines of steps after `step` (a run killed after logging a step whose checkpoint
// never finished logs that step again after the resume).
void trim_metrics(const std::string& path, int step);

}  // namespace strata::rl
