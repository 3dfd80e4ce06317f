// Sharded evaluation: `evaluate --shard I/N` (or one rank of torchrun: RANK/WORLD_SIZE) scores
// question k of each data file (after --limit) when k mod N == I, and writes its outputs to
// OUT/shard-I-of-N/; `evaluate --merge DIR...` joins the N shard folders into the outputs of one
// unsharded run. Manual: docs/EVALUATE.md.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eval/datasets.h"
#include "eval/prediction.h"

namespace strata::eval {

struct Shard {
  int index = 0;  // I, 0-based
  int count = 1;  // N; 1 = the whole dataset
  bool sharded() const { return count > 1; }
  // "shard-I-of-N": the folder a shard writes under --out.
  std::string folder() const;
};

// "I/N" with 0 <= I < N; throws strata::Error naming `flag` otherwise.
Shard parse_shard(const std::string& spec, const std::string& flag = "--shard");

// torchrun's RANK/WORLD_SIZE, when WORLD_SIZE is set (a missing or bad RANK is an error naming
// the variable); nothing otherwise.
std::optional<Shard> shard_from_env();

// Keeps record k of each dataset when k mod count == index; the other shards' ids go to
// ids_other_shards (scoring mode skips their prediction lines).
void take_shard(std::vector<Dataset>& datasets, const Shard& shard);

// One predictions.jsonl / scored.jsonl line back into a Prediction (the inverse of to_json);
// throws strata::Error naming `where` on a malformed line.
Prediction prediction_from_json(const nlohmann::json& j, const std::string& where);

// The outputs of N shards joined: every question once, in data-file order (question k of a file
// from shard k mod N); run.json is shard 0's with the shard entry dropped, the full question
// counts and the folders merged.
struct MergedRun {
  std::vector<Prediction> predictions;
  std::vector<std::string> dataset_order;
  std::string predictions_file;  // predictions.jsonl or scored.jsonl (scoring mode)
  nlohmann::json run_info;
};

// `dirs`: shard folders (with run.json), or folders holding shard-I-of-N folders. Every shard of
// one run must be there once, from the same data files, limit and mode, and complete (as many
// predictions as its run.json names); anything else throws strata::Error naming the folder.
MergedRun merge_shards(const std::vector<std::string>& dirs);

}  // namespace strata::eval
