// Rollouts files: one length-delimited Protobuf `Trajectory` record after another
// (env/trajectory.proto), one file per training step.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "env/search_env.h"
#include "env/trajectory.pb.h"

namespace strata::env {

// Builds the record of a finished episode. `stratum` is the key the trainer will use.
pb::Trajectory make_record(const Episode& ep, const RewardResult& reward,
                           const std::vector<int32_t>& prompt_ids, int64_t group, int sample,
                           int step, int64_t stratum);

// Why a recorded trajectory ended: its end_reason string read back into the enum (kNone for a
// name this build does not know).
EndReason end_reason_of(const pb::Trajectory& t);

class RolloutWriter {
 public:
  // Creates (truncates) the file; throws strata::Error when it cannot.
  explicit RolloutWriter(const std::string& path);
  void write(const pb::Trajectory& t);
  void flush();
  size_t written() const { return written_; }

 private:
  std::string path_;
  std::ofstream out_;
  size_t written_ = 0;
};

class RolloutReader {
 public:
  explicit RolloutReader(const std::string& path);  // throws if it cannot be opened
  ~RolloutReader();
  // Next record; false at a clean end of file. A truncated or corrupt record throws
  // strata::Error naming the file and the record's index.
  bool next(pb::Trajectory& out);

 private:
  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
  size_t index_ = 0;
};

}  // namespace strata::env
