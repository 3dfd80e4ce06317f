// c10d from the LibTorch of the torch wheel. The wheel ships c10d's headers but not Gloo's, which
// ProcessGroupGloo.hpp includes: Debian's libgloo-dev provides them (declarations only; Gloo
// itself is linked inside libtorch_cpu, and ProcessGroupGloo holds Gloo's objects only through
// pointers, so its layout does not depend on the Gloo version). CMake defines USE_C10D_GLOO and
// USE_DISTRIBUTED for this file (and USE_C10D_NCCL with CUDA).
#include "rl/distributed.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if STRATA_HAVE_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>

#include "core/error.h"
#include "core/log.h"

namespace strata::rl {

namespace {
using Clock = std::chrono::steady_clock;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

int env_int(const char* name, const std::string& text, int lo, int hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, 10);
  STRATA_CHECK(errno == 0 && end != text.c_str() && *end == '\0' && v >= lo && v <= hi,
               "environment: " << name << "=" << text << ": expected an integer in " << lo << ".." << hi);
  return static_cast<int>(v);
}

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

std::string hostname() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}
}  // namespace

DistEnv read_dist_env() {
  DistEnv e;
  const std::string rank = env_or("RANK", ""), world = env_or("WORLD_SIZE", "");
  if (rank.empty() && world.empty()) return e;
  STRATA_CHECK(!rank.empty() && !world.empty(),
               "environment: " << (rank.empty() ? "WORLD_SIZE is set but RANK is not"
                                                : "RANK is set but WORLD_SIZE is not")
                               << " (set both, or launch with torchrun)");
  e.set = true;
  e.world = env_int("WORLD_SIZE", world, 1, 1 << 20);
  e.rank = env_int("RANK", rank, 0, e.world - 1);
  e.local_rank = env_int("LOCAL_RANK", env_or("LOCAL_RANK", std::to_string(e.rank)), 0, 1 << 20);
  e.master_addr = env_or("MASTER_ADDR", e.world > 1 ? "" : "127.0.0.1");
  STRATA_CHECK(!e.master_addr.empty(), "environment: WORLD_SIZE=" << e.world
                                           << " needs MASTER_ADDR (the host of rank 0) and MASTER_PORT");
  const std::string port = env_or("MASTER_PORT", e.world > 1 ? "" : "29500");
  STRATA_CHECK(!port.empty(), "environment: WORLD_SIZE=" << e.world << " needs MASTER_PORT (a free port on "
                                                         << e.master_addr << ")");
  e.master_port = env_int("MASTER_PORT", port, 1, 65535);
  e.agent_store = env_or("TORCHELASTIC_USE_AGENT_STORE", "") == "True";
  e.attempt = env_or("TORCHELASTIC_RESTART_COUNT", "0");
  const std::string t = env_or("STRATA_DIST_TIMEOUT_S", "600");
  e.timeout = std::chrono::milliseconds(int64_t{1000} * env_int("STRATA_DIST_TIMEOUT_S", t, 1, 86400 * 7));
  return e;
}

std::string device_for_rank(const std::string& cfg_device, const DistEnv& env) {
  if (!env.set || env.world <= 1) return cfg_device;
  if (cfg_device == "cuda" || (cfg_device == "auto" && torch::cuda::is_available()))
    return "cuda:" + std::to_string(env.local_rank);
  return cfg_device;
}

// The store, the process group and the heartbeat. Each rank keeps, under hb/RANK in the store,
// "BEATS COLLECTIVES PID HOST", refreshed every second by a thread with a store connection of its
// own: when a collective fails, the beats that stopped name the dead ranks, and a collective
// count below this rank's names the ranks that hang (alive, but not in the collective).
struct Distributed::Impl {
  DistEnv env;
  torch::Device dev{torch::kCPU};
  std::string backend = "gloo";
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> pg;
  std::atomic<int64_t> collectives{0};
  double seconds = 0;  // in collectives (the calling thread only)
  std::map<std::string, double> seconds_by_kind;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread heartbeat;

  void beat_loop(c10::intrusive_ptr<c10d::Store> s) {
    const std::string key = "hb/" + std::to_string(env.rank);
    const std::string tail = " " + std::to_string(::getpid()) + " " + hostname();
    int64_t beats = 0;
    std::unique_lock<std::mutex> lock(mu);
    do {
      const std::string v = std::to_string(++beats) + " " + std::to_string(collectives.load()) + tail;
      lock.unlock();
      try {
        s->set(key, std::vector<uint8_t>(v.begin(), v.end()));
      } catch (const std::exception&) {
        return;  // the store is gone (rank 0 ended): the next collective reports it
      }
      lock.lock();
    } while (!cv.wait_for(lock, std::chrono::seconds(1), [this] { return stop; }));
  }

  struct Beat {
    bool present = false;
    int64_t beats = 0, collectives = 0;
    std::string pid, host;
  };
  std::vector<Beat> read_beats(const c10::intrusive_ptr<c10d::Store>& s) const {
    std::vector<Beat> out(static_cast<size_t>(env.world));
    for (int r = 0; r < env.world; ++r) {
      const std::string key = "hb/" + std::to_string(r);
      if (!s->check({key})) continue;
      const auto raw = s->get(key);
      std::istringstream in(std::string(raw.begin(), raw.end()));
      Beat& b = out[static_cast<size_t>(r)];
      b.present = static_cast<bool>(in >> b.beats >> b.collectives >> b.pid >> b.host);
    }
    return out;
  }

  // Which ranks are behind, after a collective failed on this one.
  std::string diagnose() const {
    c10::intrusive_ptr<c10d::Store> s;
    try {
      s = store->clone();
      s->setTimeout(std::chrono::seconds(5));
      const auto before = read_beats(s);
      std::this_thread::sleep_for(std::chrono::milliseconds(2500));
      const auto after = read_beats(s);
      const int64_t mine = collectives.load();
      std::string dead, hung;
      for (int r = 0; r < env.world; ++r) {
        if (r == env.rank) continue;
        const auto& a = before[static_cast<size_t>(r)];
        const auto& b = after[static_cast<size_t>(r)];
        const std::string who = "rank " + std::to_string(r) + (b.present ? " (pid " + b.pid + " on " + b.host + ")" : "");
        if (!b.present || b.beats == a.beats)
          dead += (dead.empty() ? "" : ", ") + who;
        else if (b.collectives < mine)
          hung += (hung.empty() ? "" : ", ") + who + " at collective #" + std::to_string(b.collectives);
      }
      std::string out;
      if (!dead.empty()) out += dead + " stopped (no heartbeat in the store for 2.5 s: the process died or was killed)";
      if (!hung.empty())
        out += (out.empty() ? "" : "; ") + hung + " is alive but did not join collective #" + std::to_string(mine) +
               " (hung or much slower)";
      return out.empty() ? "every other rank still beats; see the first error of each rank" : out;
    } catch (const std::exception&) {
      return "rank 0, which hosts the rendezvous store at " + env.master_addr + ":" + std::to_string(env.master_port) +
             ", is gone (the process died or was killed)";
    }
  }
};

Distributed::Distributed() = default;

Distributed::Distributed(const DistEnv& env, const torch::Device& device) {
  if (!env.set || env.world <= 1) return;
  rank_ = env.rank;
  world_ = env.world;
  impl_ = std::make_unique<Impl>();
  Impl& im = *impl_;
  im.env = env;
  im.dev = device;
  const auto t0 = Clock::now();
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0 && !env.agent_store;
    so.numWorkers = env.world;
    so.waitWorkers = !env.agent_store;
    so.timeout = env.timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    im.store = c10::make_intrusive<c10d::PrefixStore>("strata/attempt_" + env.attempt, tcp);
#if STRATA_HAVE_CUDA
    if (device.is_cuda()) {
      im.backend = "nccl";
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = env.timeout;
      im.pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(im.store, env.rank, env.world, opts);
    }
#endif
    if (!im.pg) {
      STRATA_CHECK(!device.is_cuda(), "distributed: device " << device.str() << " needs NCCL, which this build lacks");
      auto opts = c10d::ProcessGroupGloo::Options::create(env.timeout);
      // As torch.distributed: GLOO_SOCKET_IFNAME picks the interface, else this host's address.
      const std::string ifname = env_or("GLOO_SOCKET_IFNAME", "");
      opts->devices.push_back(ifname.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                             : c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      im.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(im.store, env.rank, env.world, opts);
    }
  } catch (const c10::Error& e) {
    STRATA_FAIL("distributed: rank " << env.rank << " of " << env.world << " could not join the group at "
                                     << env.master_addr << ":" << env.master_port << " within "
                                     << std::chrono::duration<double>(Clock::now() - t0).count()
                                     << " s (STRATA_DIST_TIMEOUT_S=" << env.timeout.count() / 1000
                                     << "): " << first_line(e.what_without_backtrace()));
  }
  im.heartbeat = std::thread([this, s = im.store->clone()] { impl_->beat_loop(s); });
  STRATA_LOG_INFO("distributed: rank {} of {} (local rank {}), {} on {}, store {}:{}", rank_, world_,
                  env.local_rank, im.backend, device.str(), env.master_addr, env.master_port);
}

Distributed::~Distributed() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
  try {
    impl_->pg->shutdown();
  } catch (const std::exception&) {
  }
}

int64_t Distributed::collectives() const { return impl_ ? impl_->collectives.load() : 0; }
double Distributed::collective_seconds() const { return impl_ ? impl_->seconds : 0.0; }
std::vector<std::pair<std::string, double>> Distributed::collective_seconds_by_kind() const {
  if (!impl_) return {};
  return {impl_->seconds_by_kind.begin(), impl_->seconds_by_kind.end()};
}

const char* Distributed::backend() const { return impl_ ? impl_->backend.c_str() : "none"; }

template <class F>
void Distributed::collective(const char* what, F&& f) const {
  const int64_t n = ++impl_->collectives;
  const auto t0 = Clock::now();
  try {
    f();
    const double took = std::chrono::duration<double>(Clock::now() - t0).count();
    impl_->seconds += took;
    impl_->seconds_by_kind[what] += took;
  } catch (const std::exception& e) {
    const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
    std::string msg = e.what();
    if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) msg = ce->what_without_backtrace();
    STRATA_FAIL("distributed: rank " << rank_ << " of " << world_ << ": " << what << " (collective #" << n
                                     << ") failed after " << waited << " s (" << first_line(msg)
                                     << "): " << impl_->diagnose());
  }
}

void Distributed::all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) const {
  if (!active() || tensors.empty()) return;
  collective("all-reduce", [&] {
    torch::NoGradGuard ng;
    struct Bucket {
      std::vector<size_t> members;
      torch::Tensor flat;
      c10::intrusive_ptr<c10d::Work> work;
    };
    std::vector<Bucket> buckets;
    int64_t bytes = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
      if (buckets.empty() || bytes + b > bucket_bytes ||
          tensors[buckets.back().members.front()].scalar_type() != t.scalar_type()) {
        buckets.emplace_back();
        bytes = 0;
      }
      buckets.back().members.push_back(i);
      bytes += b;
    }
    // All buckets in flight at once; Gloo and NCCL run them in order.
    for (auto& bk : buckets) {
      std::vector<torch::Tensor> parts;
      for (size_t i : bk.members) parts.push_back(tensors[i].reshape({-1}).to(impl_->dev));
      bk.flat = parts.size() == 1 ? parts[0].clone() : torch::cat(parts);
      std::vector<at::Tensor> v{bk.flat};
      bk.work = impl_->pg->allreduce(v);
    }
    for (auto& bk : buckets) {
      bk.work->wait(impl_->env.timeout);
      int64_t off = 0;
      for (size_t i : bk.members) {
        auto& t = const_cast<torch::Tensor&>(tensors[i]);
        t.copy_(bk.flat.narrow(0, off, t.numel()).view(t.sizes()));
        off += t.numel();
      }
    }
  });
}

std::vector<double> Distributed::all_reduce_sum(std::vector<double> values) const {
  if (!active() || values.empty()) return values;
  auto t = torch::tensor(values, torch::kFloat64);
  all_reduce_sum({t});
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[static_cast<int64_t>(i)].item<double>();
  return values;
}

std::vector<std::string> Distributed::all_gather_bytes(const std::string& mine) const {
  if (!active()) return {mine};
  std::vector<std::string> out(static_cast<size_t>(world_));
  collective("all-gather", [&] {
    const auto opts = torch::TensorOptions().device(impl_->dev);
    std::vector<std::vector<at::Tensor>> sizes_out(1);
    for (int r = 0; r < world_; ++r) sizes_out[0].push_back(torch::zeros({1}, opts.dtype(torch::kInt64)));
    std::vector<at::Tensor> size_in{torch::full({1}, static_cast<int64_t>(mine.size()), opts.dtype(torch::kInt64))};
    impl_->pg->allgather(sizes_out, size_in)->wait(impl_->env.timeout);
    int64_t longest = 1;
    std::vector<int64_t> sizes;
    for (const auto& s : sizes_out[0]) {
      sizes.push_back(s.cpu().item<int64_t>());
      longest = std::max(longest, sizes.back());
    }
    auto buf = torch::zeros({longest}, torch::kUInt8);
    std::memcpy(buf.data_ptr(), mine.data(), mine.size());
    std::vector<std::vector<at::Tensor>> data_out(1);
    for (int r = 0; r < world_; ++r) data_out[0].push_back(torch::zeros({longest}, opts.dtype(torch::kUInt8)));
    std::vector<at::Tensor> data_in{buf.to(impl_->dev)};
    impl_->pg->allgather(data_out, data_in)->wait(impl_->env.timeout);
    for (int r = 0; r < world_; ++r) {
      const auto cpu = data_out[0][static_cast<size_t>(r)].cpu();
      out[static_cast<size_t>(r)].assign(static_cast<const char*>(cpu.data_ptr()), static_cast<size_t>(sizes[r]));
    }
  });
  return out;
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors) const {
  if (!active()) return;
  collective("broadcast", [&] {
    torch::NoGradGuard ng;
    for (const auto& t : tensors) {
      std::vector<at::Tensor> v{t.device() == impl_->dev && t.is_contiguous() ? t : t.contiguous().to(impl_->dev)};
      impl_->pg->broadcast(v)->wait(impl_->env.timeout);
      if (!v[0].is_same(t)) const_cast<torch::Tensor&>(t).copy_(v[0]);
    }
  });
}

void Distributed::broadcast_from(const std::vector<torch::Tensor>& tensors, const std::vector<int>& owners,
                                 int64_t bucket_bytes) const {
  STRATA_ASSERT(owners.size() == tensors.size(), owners.size() << " owners for " << tensors.size() << " tensors");
  if (!active() || tensors.empty()) return;
  collective("broadcast", [&] {
    torch::NoGradGuard ng;
    struct Bucket {
      int owner = 0;
      std::vector<size_t> members;
      torch::Tensor flat;
      bool in_place = false;  // one tensor, contiguous on the device: broadcast as it is
      c10::intrusive_ptr<c10d::Work> work;
    };
    // Buckets in tensor order per (owner, dtype), so that every rank builds the same ones.
    std::vector<Bucket> buckets;
    std::map<std::pair<int, int>, std::pair<size_t, int64_t>> open;  // (owner, dtype) -> (bucket, bytes)
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      STRATA_ASSERT(owners[i] >= 0 && owners[i] < world_, "owner " << owners[i] << " of " << world_ << " ranks");
      const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
      const auto key = std::make_pair(owners[i], static_cast<int>(t.scalar_type()));
      auto it = open.find(key);
      if (it == open.end() || it->second.second + b > bucket_bytes) {
        buckets.emplace_back();
        buckets.back().owner = owners[i];
        it = open.insert_or_assign(key, std::make_pair(buckets.size() - 1, int64_t{0})).first;
      }
      buckets[it->second.first].members.push_back(i);
      it->second.second += b;
    }
    for (auto& bk : buckets) {
      const auto& first = tensors[bk.members.front()];
      if (bk.members.size() == 1 && first.device() == impl_->dev && first.is_contiguous()) {
        bk.flat = first.view({-1});
        bk.in_place = true;
      } else if (bk.owner == rank_) {
        std::vector<torch::Tensor> parts;
        for (size_t i : bk.members) parts.push_back(tensors[i].reshape({-1}).to(impl_->dev));
        bk.flat = parts.size() == 1 ? parts[0].clone() : torch::cat(parts);
      } else {
        int64_t n = 0;
        for (size_t i : bk.members) n += tensors[i].numel();
        bk.flat = torch::empty({n}, first.options().device(impl_->dev));
      }
      std::vector<at::Tensor> v{bk.flat};
      c10d::BroadcastOptions opts;
      opts.rootRank = bk.owner;
      bk.work = impl_->pg->broadcast(v, opts);
    }
    for (auto& bk : buckets) {
      bk.work->wait(impl_->env.timeout);
      if (bk.in_place || bk.owner == rank_) continue;
      int64_t off = 0;
      for (size_t i : bk.members) {
        auto& t = const_cast<torch::Tensor&>(tensors[i]);
        t.copy_(bk.flat.narrow(0, off, t.numel()).view(t.sizes()));
        off += t.numel();
      }
    }
  });
}

std::vector<int> partition_by_size(const std::vector<torch::Tensor>& tensors, int world) {
  STRATA_ASSERT(world >= 1, "world " << world);
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return tensors[a].numel() > tensors[b].numel(); });
  std::vector<int64_t> load(static_cast<size_t>(world), 0);
  std::vector<int> owner(tensors.size(), 0);
  for (size_t i : order) {
    const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = r;
    load[static_cast<size_t>(r)] += tensors[i].numel();
  }
  return owner;
}

void Distributed::require_same(const std::string& what, const std::string& value) const {
  if (!active()) return;
  const auto all = all_gather_bytes(value);
  for (int r = 1; r < world_; ++r)
    STRATA_CHECK(all[static_cast<size_t>(r)] == all[0],
                 "distributed: " << what << " differs between ranks: rank 0 has " << all[0] << ", rank " << r
                                 << " has " << all[static_cast<size_t>(r)]);
}

void Distributed::barrier() const {
  if (!active()) return;
  std::vector<double> one{1.0};
  all_reduce_sum(one);
}

}  // namespace strata::rl
