// Data-parallel runs on PyTorch's own c10d: a TCPStore rendezvous and a process group (Gloo on
// CPU, NCCL on CUDA), launched by `torchrun --no-python` or by hand with the same variables:
//
//   RANK, WORLD_SIZE            this process's rank and the number of processes (required together)
//   LOCAL_RANK                  rank on this node; picks cuda:LOCAL_RANK when the device is CUDA
//   MASTER_ADDR, MASTER_PORT    where the TCPStore listens (rank 0 hosts it, unless torchrun's
//                               agent already does: TORCHELASTIC_USE_AGENT_STORE=True)
//   STRATA_DIST_TIMEOUT_S       how long a collective may wait for the other ranks (default 600)
//
// A process with none of RANK/WORLD_SIZE set (or WORLD_SIZE=1) is a single process: no store, no
// group, every collective is the identity. Otherwise, when a rank dies (its sockets close) or
// hangs (the collective times out), the others stop with a strata::Error that names the rank(s)
// behind, found through a heartbeat each rank keeps in the store (see Distributed::collective).
//
// The header keeps c10d out: only rl/distributed.cpp includes it.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace strata::rl {

// The launch variables, read once. `set` is false when neither RANK nor WORLD_SIZE is set.
struct DistEnv {
  bool set = false;
  int rank = 0;
  int world = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;    // torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE)
  std::string attempt = "0";   // TORCHELASTIC_RESTART_COUNT: a store prefix per restart
  std::chrono::milliseconds timeout{600000};
};

// Reads the variables above; a strata::Error names a variable that is malformed or missing
// (RANK without WORLD_SIZE, RANK >= WORLD_SIZE, MASTER_PORT out of range, ...).
DistEnv read_dist_env();

// cfg_device with LOCAL_RANK applied: "cuda" (or "auto" on a CUDA machine) becomes
// "cuda:LOCAL_RANK" in a multi-process run; anything else is returned unchanged.
std::string device_for_rank(const std::string& cfg_device, const DistEnv& env);

// ZeRO-1's partition: the rank that owns (keeps the optimiser state of, and updates) each of
// `tensors`, whole tensors balanced by element count: largest first, each to the rank with the
// fewest elements so far (ties: the lower rank). Depends on the shapes alone, so every rank
// computes the same one.
std::vector<int> partition_by_size(const std::vector<torch::Tensor>& tensors, int world);

class Distributed {
 public:
  // Single process: rank 0 of 1, no communication.
  Distributed();
  // Joins the group described by `env` (rendezvous at MASTER_ADDR:MASTER_PORT), with NCCL when
  // `device` is CUDA and Gloo otherwise. Collective tensors live on `device`.
  Distributed(const DistEnv& env, const torch::Device& device);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return rank_; }
  int world() const { return world_; }
  bool active() const { return world_ > 1; }
  bool is_root() const { return rank_ == 0; }
  const char* backend() const;  // "none", "gloo" or "nccl"

  // Sums every tensor in place across ranks. Tensors are flattened into buckets of at most
  // `bucket_bytes` per dtype, each bucket all-reduced asynchronously, then copied back.
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes = 32 << 20) const;
  // Sums a few numbers across ranks (in double precision).
  std::vector<double> all_reduce_sum(std::vector<double> values) const;
  // Every rank's `mine`, in rank order.
  std::vector<std::string> all_gather_bytes(const std::string& mine) const;
  // Rank 0's tensors, in place on every rank.
  void broadcast(const std::vector<torch::Tensor>& tensors) const;
  // Each tensor from the rank that owns it (owners[i]), in place on every other rank: what ZeRO-1
  // uses to share the weights each rank updated. The tensors of one owner and dtype go as flat
  // buckets of at most `bucket_bytes`, all in flight at once. Every rank passes tensors of the
  // same shapes and dtypes; only the owner's values matter.
  void broadcast_from(const std::vector<torch::Tensor>& tensors, const std::vector<int>& owners,
                      int64_t bucket_bytes = 32 << 20) const;
  // Fails (on every rank) when the ranks' `value`s differ: "WHAT differs between ranks: ...".
  void require_same(const std::string& what, const std::string& value) const;
  void barrier() const;

  // Collectives run so far and the seconds spent in them (waiting for slower ranks included),
  // in all and by kind ("all-reduce", "all-gather", "broadcast"), kinds in name order.
  int64_t collectives() const;
  double collective_seconds() const;
  std::vector<std::pair<std::string, double>> collective_seconds_by_kind() const;

 private:
  struct Impl;
  template <class F>
  void collective(const char* what, F&& f) const;
  int rank_ = 0;
  int world_ = 1;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::rl
