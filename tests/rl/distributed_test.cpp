// Data-parallel training (rl/distributed.h) on two Gloo ranks over loopback: the programs run as
// separate processes with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set by hand (what torchrun
// sets), against one retrieval daemon in this process.
//
// DistributedWorker.* are not tests of their own: they run only inside the two processes that
// DistributedLib.* spawn (this binary again, with STRATA_TEST_WORKER set), and skip otherwise.
#include "rl/distributed.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <regex>
#include <memory>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/checkpoint.h"
#include "agent/model.h"
#include "agent/tokenizer/bpe_trainer.h"
#include "core/config.h"
#include "env/world/world.h"
#include "rl/batch_advantages.h"
#include "rl/trainer.h"
#include "rl/warm_start_run.h"
#include "tests/child_process.h"
#include "tests/loopback_daemon.h"
#include "tests/shared_fixture.h"
#include "tests/test_util.h"
#include "tests/rl/tiny_train_world.h"

namespace strata::rl {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::vector<std::string> rank_env(int rank, int world, int port) {
  return {"RANK=" + std::to_string(rank), "WORLD_SIZE=" + std::to_string(world), "LOCAL_RANK=" + std::to_string(rank),
          "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port), "STRATA_DIST_TIMEOUT_S=60",
          "STRATA_NO_PROGRESS=1"};
}

// A small world served on loopback, a world tokenizer and a tiny random policy, built once per
// binary (tests/shared_fixture.h).
struct DpWorld : testing::TinyTrainWorld {
  DpWorld() : TinyTrainWorld("rl_distributed", 3) {}
  // Stratified GRPO with batch-scope strata (they span the ranks), KL, an entropy bonus (a
  // gradient even when every reward is 0), two mini-batches of 2 micro-batches per step.
  // `edit` changes the config further (ZeRO-1, precision).
  std::string config(const std::string& out, int steps,
                     const std::function<void(TrainerConfig&)>& edit = {}) const {
    TrainerConfig tc = base_config(out, steps);
    tc.prompts_per_step = 4;
    tc.rollout.samples_per_prompt = 3;
    tc.rollout.max_batch = 12;
    tc.rollout.env.max_response_tokens = 300;
    tc.advantage.estimator = Estimator::kStratified;
    tc.advantage.scope = StrataScope::kBatch;
    tc.loss.entropy_coef = 0.05;
    tc.loss.kl_coef = 0.01;
    tc.update.skip_zero_advantage = false;
    tc.update.mini_batch = 6;
    tc.update.micro_batch = 2;
    if (edit) edit(tc);
    const std::string file = dir.file(out + ".json");
    testing::write_file(file, config::to_json(tc).dump(2));
    return file;
  }
  // Runs grpo_train on `world` ranks (1: a plain single process, no variables set) and returns
  // each rank's exit status; logs in OUT.rankN.log.
  std::vector<int> run(const std::string& out, const std::string& cfg, int world, bool resume = false,
                       double timeout_s = 120) const {
    const int port = free_port();
    std::vector<std::unique_ptr<testing::ChildProcess>> ranks;
    for (int r = 0; r < world; ++r) {
      std::vector<std::string> argv = {testing::bin("grpo_train"), "--config", cfg};
      if (resume) argv.push_back("--resume");
      ranks.push_back(std::make_unique<testing::ChildProcess>(
          argv, log(out, r), world > 1 ? rank_env(r, world, port) : std::vector<std::string>{"STRATA_NO_PROGRESS=1"}));
    }
    std::vector<int> rc;
    for (auto& p : ranks) rc.push_back(p->wait(timeout_s));
    return rc;
  }
  std::string log(const std::string& out, int rank) const {
    return dir.file(out + ".rank" + std::to_string(rank) + ".log");
  }
  std::string logs(const std::string& out, int world) const {
    std::string s;
    for (int r = 0; r < world; ++r) s += "---- rank " + std::to_string(r) + "\n" + testing::read_file(log(out, r));
    return s;
  }
  std::map<int, nlohmann::json> metrics(const std::string& out) const {
    std::map<int, nlohmann::json> m;
    std::ifstream in(dir.file(out + "/metrics.jsonl"));
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) {
        const auto j = nlohmann::json::parse(line);
        m[j["step"].get<int>()] = j;
      }
    return m;
  }
};

double max_weight_diff(const std::string& a, const std::string& b) {
  const auto ma = agent::load_model(a), mb = agent::load_model(b);
  const auto pa = ma.named_parameters(), pb = mb.named_parameters();
  double d = 0;
  for (const auto& [name, t] : pa) d = std::max(d, (t - pb.at(name)).abs().max().item<double>());
  return d;
}

// What finish() logs of the optimiser state each rank holds: "optimiser state: rank R of N holds
// B bytes", by rank.
std::map<int, int64_t> optimizer_bytes(const std::string& logs) {
  std::map<int, int64_t> out;
  const std::regex re(R"(optimiser state: rank (\d+) of \d+ holds (\d+) bytes)");
  for (auto it = std::sregex_iterator(logs.begin(), logs.end(), re); it != std::sregex_iterator(); ++it)
    out[std::stoi((*it)[1])] = std::stoll((*it)[2]);
  return out;
}

TEST(DistributedEnv, ZeroPartitionBalancesWholeTensorsByElements) {
  std::vector<torch::Tensor> t;
  for (int64_t n : {10, 3, 7, 2, 8}) t.push_back(torch::zeros({n}));
  // Largest first to the emptiest rank: 10 -> 0, 8 -> 1, 7 -> 1, 3 -> 0, 2 -> 0 (13 against 15).
  EXPECT_EQ(partition_by_size(t, 2), (std::vector<int>{0, 0, 1, 0, 1}));
  EXPECT_EQ(partition_by_size(t, 1), (std::vector<int>{0, 0, 0, 0, 0}));
  const auto three = partition_by_size(t, 3);
  std::vector<int64_t> load(3, 0);
  for (size_t i = 0; i < t.size(); ++i) load[static_cast<size_t>(three[i])] += t[i].numel();
  EXPECT_EQ(load, (std::vector<int64_t>{10, 10, 10}));
}

TEST(DistributedEnv, NoVariablesIsOneProcessAndBadOnesAreNamed) {
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(v);
  const auto e = read_dist_env();
  EXPECT_FALSE(e.set);
  EXPECT_EQ(e.world, 1);
  const Distributed single(e, torch::kCPU);
  EXPECT_FALSE(single.active());
  EXPECT_STREQ(single.backend(), "none");
  EXPECT_EQ(single.all_reduce_sum(std::vector<double>{1.5, 2}), (std::vector<double>{1.5, 2}));
  EXPECT_EQ(device_for_rank("cuda", e), "cuda");
  setenv("RANK", "1", 1);
  EXPECT_NE(testing::error_of([] { read_dist_env(); }).find("RANK is set but WORLD_SIZE is not"), std::string::npos);
  setenv("WORLD_SIZE", "2", 1);
  EXPECT_NE(testing::error_of([] { read_dist_env(); }).find("needs MASTER_ADDR"), std::string::npos);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", "70000", 1);
  EXPECT_NE(testing::error_of([] { read_dist_env(); }).find("MASTER_PORT=70000"), std::string::npos);
  setenv("MASTER_PORT", "29500", 1);
  setenv("RANK", "2", 1);
  EXPECT_NE(testing::error_of([] { read_dist_env(); }).find("RANK=2: expected an integer in 0..1"), std::string::npos);
  setenv("RANK", "1", 1);
  const auto two = read_dist_env();
  EXPECT_EQ(two.local_rank, 1) << "LOCAL_RANK defaults to RANK";
  EXPECT_EQ(device_for_rank("cuda", two), "cuda:1");
  EXPECT_EQ(device_for_rank("cpu", two), "cpu");
  for (const char* v : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(v);
}

// ---- the library on two ranks: this binary again, as two worker processes ------------------

// Four prompt groups of three; rank r holds groups 2r and 2r+1. Strata (number of searches) are
// split across the ranks: stratum 1 has members on both, stratum 2 only on rank 1.
std::vector<env::pb::Trajectory> san_batch() {
  std::vector<env::pb::Trajectory> b;
  const double rewards[12] = {1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1};
  const int strata[12] = {0, 1, 1, 0, 1, 1, 1, 2, 2, 0, 2, 1};
  for (int i = 0; i < 12; ++i) {
    env::pb::Trajectory t;
    t.set_group(i / 3);
    t.set_reward(rewards[i]);
    t.set_stratum(strata[i]);
    b.push_back(t);
  }
  return b;
}

TEST(DistributedWorker, GatherReduceAndSan) {
  const char* out = std::getenv("STRATA_TEST_WORKER");
  if (out == nullptr) GTEST_SKIP() << "runs only inside DistributedLib.TwoRanks' worker processes";
  const auto env = read_dist_env();
  Distributed dist(env, torch::kCPU);
  ASSERT_TRUE(dist.active());
  nlohmann::json j;
  j["backend"] = dist.backend();
  // The batch's halves, gathered, then advantages with strata across the whole batch.
  const auto whole = san_batch();
  std::vector<env::pb::Trajectory> mine(whole.begin() + 6 * dist.rank(), whole.begin() + 6 * (dist.rank() + 1));
  const auto gathered = gather_batch(dist, mine);
  AdvantageOptions ao;
  ao.scope = StrataScope::kBatch;
  j["advantages"] = batch_advantages(gathered, ao);
  std::vector<int64_t> groups;
  for (const auto& t : gathered) groups.push_back(t.group());
  j["groups"] = groups;
  // Bucketed sums: tensors of two dtypes and sizes over several 64-byte buckets.
  auto a = torch::arange(40, torch::kFloat32) * (dist.rank() + 1);
  auto b = torch::full({3}, 1.0 + dist.rank(), torch::kFloat64);
  auto c = torch::ones({2, 5}, torch::kFloat32) * (dist.rank() + 1);
  dist.all_reduce_sum({a, b, c}, 64);
  j["a"] = std::vector<float>(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
  j["b"] = std::vector<double>(b.data_ptr<double>(), b.data_ptr<double>() + b.numel());
  j["c"] = c.sum().item<double>();
  auto w = torch::full({4}, static_cast<float>(dist.rank() + 7));
  dist.broadcast({w});
  j["broadcast"] = w.sum().item<double>();
  // Each tensor from its owner (ZeRO-1's all-gather): two dtypes, buckets of at most 32 bytes,
  // one non-contiguous tensor; only the owner's values count.
  std::vector<torch::Tensor> owned = {torch::full({3}, 10.0f * static_cast<float>(dist.rank() + 1)),
                                      torch::full({5}, 20.0 * (dist.rank() + 1), torch::kFloat64),
                                      torch::full({4, 2}, 30.0f * static_cast<float>(dist.rank() + 1)).t(),
                                      torch::full({6}, 40.0f * static_cast<float>(dist.rank() + 1))};
  dist.broadcast_from(owned, {1, 0, 1, 0}, 32);
  std::vector<double> got;
  for (const auto& t : owned) got.push_back(t.sum().item<double>() / static_cast<double>(t.numel()));
  j["broadcast_from"] = got;
  j["same_ok"] = testing::error_of([&] { dist.require_same("x", "1"); });
  j["same_bad"] = testing::error_of([&] { dist.require_same("the config", std::to_string(dist.rank())); });
  testing::write_file(std::string(out) + "/rank" + std::to_string(dist.rank()) + ".json", j.dump());
  dist.barrier();
}

TEST(DistributedLib, TwoRanksGatherReduceAndStratifyAcrossRanks) {
  testing::TempDir dir;
  const int port = free_port();
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::unique_ptr<testing::ChildProcess>> ranks;
  for (int r = 0; r < 2; ++r) {
    auto env = rank_env(r, 2, port);
    env.push_back("STRATA_TEST_WORKER=" + dir.path());
    ranks.push_back(std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{self, "--gtest_filter=DistributedWorker.GatherReduceAndSan"},
        dir.file("rank" + std::to_string(r) + ".log"), env));
  }
  for (int r = 0; r < 2; ++r)
    ASSERT_EQ(ranks[r]->wait(60), 0) << testing::read_file(dir.file("rank" + std::to_string(r) + ".log"));
  AdvantageOptions ao;
  ao.scope = StrataScope::kBatch;
  const auto expected = batch_advantages(san_batch(), ao);
  for (int r = 0; r < 2; ++r) {
    const auto j = nlohmann::json::parse(testing::read_file(dir.file("rank" + std::to_string(r) + ".json")));
    EXPECT_EQ(j["backend"], "gloo");
    EXPECT_EQ(j["groups"], nlohmann::json({0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3})) << "rank order = prompt order";
    const auto adv = j["advantages"].get<std::vector<double>>();
    ASSERT_EQ(adv.size(), expected.size());
    for (size_t i = 0; i < adv.size(); ++i) EXPECT_DOUBLE_EQ(adv[i], expected[i]) << "rank " << r << " trajectory " << i;
    const auto a = j["a"].get<std::vector<float>>();
    for (int i = 0; i < 40; ++i) EXPECT_EQ(a[static_cast<size_t>(i)], 3.0f * static_cast<float>(i));
    EXPECT_EQ(j["b"], nlohmann::json({3.0, 3.0, 3.0}));
    EXPECT_EQ(j["c"].get<double>(), 30.0);
    EXPECT_EQ(j["broadcast"].get<double>(), 28.0) << "rank 0's values";
    EXPECT_EQ(j["broadcast_from"], nlohmann::json({20.0, 20.0, 60.0, 40.0})) << "each owner's values";
    EXPECT_EQ(j["same_ok"], "(no error)");
    EXPECT_NE(j["same_bad"].get<std::string>().find("the config differs between ranks: rank 0 has 0, rank 1 has 1"),
              std::string::npos)
        << j["same_bad"];
  }
  // The strata really span the ranks: stratum 1 has members in groups 0..3 and its SAN term uses
  // all of them (a per-rank estimate would differ).
  const auto whole = san_batch();
  const std::vector<env::pb::Trajectory> half(whole.begin(), whole.begin() + 6);
  EXPECT_NE(batch_advantages(half, ao)[1], expected[1]);
}

// ---- grpo_train on two ranks --------------------------------------------------------------

TEST(DistributedTrain, TwoRanksReproduceOneProcess) {
  DpWorld w;
  ASSERT_EQ(w.run("single", w.config("single", 3), 1), (std::vector<int>{0})) << w.logs("single", 1);
  ASSERT_EQ(w.run("dp", w.config("dp", 3), 2), (std::vector<int>{0, 0})) << w.logs("dp", 2);
  const auto a = w.metrics("single"), b = w.metrics("dp");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u) << "rank 0 alone writes metrics.jsonl, one line per step";
  for (int step = 1; step <= 3; ++step) {
    for (const char* k : {"reward/mean", "rollout/trajectories", "tokens/policy", "rollout/searches_per_traj"})
      EXPECT_EQ(a.at(step)[k], b.at(step)[k]) << k << " at step " << step;
    for (const char* k : {"loss/pg", "loss/kl", "entropy"})
      EXPECT_NEAR(a.at(step)[k].get<double>(), b.at(step)[k].get<double>(), 1e-5) << k << " at step " << step;
  }
  EXPECT_LT(max_weight_diff(w.dir.file("single/final"), w.dir.file("dp/final")), 1e-5);
  EXPECT_GT(max_weight_diff(w.dir.file("tiny"), w.dir.file("dp/final")), 1e-4) << "training changed nothing";
  EXPECT_TRUE(fs::exists(w.dir.file("dp/rollouts/step_000003.pb")));
  EXPECT_NE(testing::read_file(w.log("dp", 1)).find("distributed: rank 1 of 2 (local rank 1), gloo on cpu"),
            std::string::npos)
      << w.logs("dp", 2);

  // ZeRO-1 on the same two ranks: each keeps the AdamW moments of its share of the weights, and
  // the steps are those of unsharded AdamW.
  const auto zero1 = [](TrainerConfig& c) { c.update.zero_stage = 1; };
  ASSERT_EQ(w.run("zero", w.config("zero", 3, zero1), 2), (std::vector<int>{0, 0})) << w.logs("zero", 2);
  const auto z = w.metrics("zero");
  ASSERT_EQ(z.size(), 3u);
  for (int step = 1; step <= 3; ++step) {
    for (const char* k : {"reward/mean", "tokens/policy"}) EXPECT_EQ(b.at(step)[k], z.at(step)[k]) << k << " at step " << step;
    for (const char* k : {"loss/pg", "loss/kl", "entropy", "grad_norm"})
      EXPECT_NEAR(b.at(step)[k].get<double>(), z.at(step)[k].get<double>(), 1e-5) << k << " at step " << step;
  }
  const double zero_vs_dp = max_weight_diff(w.dir.file("dp/final"), w.dir.file("zero/final"));
  const double zero_vs_single = max_weight_diff(w.dir.file("single/final"), w.dir.file("zero/final"));
  EXPECT_LT(zero_vs_dp, 1e-5);
  EXPECT_LT(zero_vs_single, 1e-5);
  const std::string ckpt = w.dir.file("zero/checkpoints/step_000003");
  EXPECT_TRUE(fs::exists(ckpt + "/optimizer.rank0.pt") && fs::exists(ckpt + "/optimizer.rank1.pt"));
  EXPECT_FALSE(fs::exists(ckpt + "/optimizer.pt"));
  // The optimiser state per rank, measured: the two shares add up to the whole state.
  const auto whole = optimizer_bytes(w.logs("dp", 2)), shares = optimizer_bytes(w.logs("zero", 2));
  ASSERT_EQ(whole.size(), 2u) << w.logs("dp", 2);
  ASSERT_EQ(shares.size(), 2u) << w.logs("zero", 2);
  EXPECT_EQ(whole.at(0), whole.at(1));
  EXPECT_EQ(shares.at(0) + shares.at(1), whole.at(0));
  EXPECT_LT(std::max(shares.at(0), shares.at(1)), whole.at(0));
  std::cout << "[ measured ] AdamW state per rank: " << whole.at(0) << " bytes unsharded, " << shares.at(0) << " and "
            << shares.at(1) << " bytes with ZeRO-1 (ranks 0, 1); final weights within " << zero_vs_dp
            << " of unsharded two-rank AdamW, " << zero_vs_single << " of one process\n";
}

// ZeRO-1 with bf16_master (each rank keeps the fp32 masters of its share too): the same steps as
// unsharded bf16_master, an exact resume, and a change of update.zero_stage refused on --resume.
TEST(DistributedTrain, ZeroOneWithMastersMatchesUnshardedAndResumesExactly) {
  DpWorld w;
  const auto master = [](TrainerConfig& c) { c.precision = Precision::kBf16Master; };
  const auto zero1 = [](TrainerConfig& c) {
    c.precision = Precision::kBf16Master;
    c.update.zero_stage = 1;
  };
  ASSERT_EQ(w.run("plain", w.config("plain", 3, master), 2), (std::vector<int>{0, 0})) << w.logs("plain", 2);
  ASSERT_EQ(w.run("zero", w.config("zero", 3, zero1), 2), (std::vector<int>{0, 0})) << w.logs("zero", 2);
  const auto a = w.metrics("plain"), b = w.metrics("zero");
  ASSERT_EQ(b.size(), 3u);
  for (int step = 1; step <= 3; ++step) {
    EXPECT_EQ(a.at(step)["reward/mean"], b.at(step)["reward/mean"]) << "step " << step;
    for (const char* k : {"loss/pg", "loss/kl", "entropy", "grad_norm"})
      EXPECT_NEAR(a.at(step)[k].get<double>(), b.at(step)[k].get<double>(), 1e-5) << k << " at step " << step;
  }
  EXPECT_LT(max_weight_diff(w.dir.file("plain/final"), w.dir.file("zero/final")), 1e-5) << "the fp32 masters";
  EXPECT_GT(max_weight_diff(w.dir.file("tiny"), w.dir.file("zero/final")), 1e-4) << "training changed nothing";
  const auto whole = optimizer_bytes(w.logs("plain", 2)), shares = optimizer_bytes(w.logs("zero", 2));
  ASSERT_EQ(shares.size(), 2u) << w.logs("zero", 2);
  EXPECT_EQ(shares.at(0) + shares.at(1), whole.at(0)) << "moments and masters, split";
  std::cout << "[ measured ] AdamW state + fp32 masters per rank: " << whole.at(0) << " bytes unsharded, "
            << shares.at(0) << " and " << shares.at(1) << " bytes with ZeRO-1\n";

  // 2 steps, then --resume to 3: the weights of 3 steps straight.
  ASSERT_EQ(w.run("resumed", w.config("resumed", 2, zero1), 2), (std::vector<int>{0, 0})) << w.logs("resumed", 2);
  const auto state = nlohmann::json::parse(testing::read_file(w.dir.file("resumed/checkpoints/step_000002/state.json")));
  EXPECT_EQ(state["zero_stage"], 1);
  EXPECT_EQ(w.run("resumed_0", w.config("resumed", 3, master), 2, true), (std::vector<int>{2, 2}));
  EXPECT_NE(testing::read_file(w.log("resumed_0", 0))
                .find("was written with update.zero_stage = 1 (each rank saved its own share of the optimiser state, "
                      "optimizer.rankR.pt) and this run has update.zero_stage = 0: resume with 1"),
            std::string::npos)
      << w.logs("resumed_0", 2);
  ASSERT_EQ(w.run("resumed_2", w.config("resumed", 3, zero1), 2, true), (std::vector<int>{0, 0}))
      << w.logs("resumed_2", 2);
  EXPECT_EQ(testing::read_file(w.dir.file("zero/final/model.safetensors")),
            testing::read_file(w.dir.file("resumed/final/model.safetensors")))
      << "3 steps straight and 2 + resume + 1 end with the same fp32 masters";
}

TEST(DistributedTrain, TwoRankResumeIsExactAndAnotherWorldSizeIsRefused) {
  DpWorld w;
  ASSERT_EQ(w.run("straight", w.config("straight", 3), 2), (std::vector<int>{0, 0})) << w.logs("straight", 2);
  ASSERT_EQ(w.run("resumed", w.config("resumed", 2), 2), (std::vector<int>{0, 0})) << w.logs("resumed", 2);
  const auto state = nlohmann::json::parse(testing::read_file(w.dir.file("resumed/checkpoints/step_000002/state.json")));
  EXPECT_EQ(state["world_size"], 2);
  EXPECT_EQ(state["rank_rng"].size(), 2u);
  // One process cannot take over a two-rank run.
  const std::string cfg = w.config("resumed", 3);
  EXPECT_EQ(w.run("resumed_1", cfg, 1, true), (std::vector<int>{2}));
  EXPECT_NE(testing::read_file(w.log("resumed_1", 0)).find("was written by a run of 2 ranks and this run has 1"),
            std::string::npos)
      << w.logs("resumed_1", 1);
  ASSERT_EQ(w.run("resumed_2", cfg, 2, true), (std::vector<int>{0, 0})) << w.logs("resumed_2", 2);
  EXPECT_EQ(testing::read_file(w.dir.file("straight/final/model.safetensors")),
            testing::read_file(w.dir.file("resumed/final/model.safetensors")))
      << "3 steps straight and 2 + resume + 1 end with the same weights";
}

TEST(DistributedTrain, AKilledRankStopsTheOtherWithItsName) {
  DpWorld w;
  const std::string cfg = w.config("killed", 200);
  const int port = free_port();
  testing::ChildProcess r0({testing::bin("grpo_train"), "--config", cfg}, w.log("killed", 0), rank_env(0, 2, port));
  testing::ChildProcess r1({testing::bin("grpo_train"), "--config", cfg}, w.log("killed", 1), rank_env(1, 2, port));
  const auto t0 = Clock::now();
  while (w.metrics("killed").empty()) {
    ASSERT_EQ(r0.poll(), -1) << w.logs("killed", 2);
    ASSERT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 60.0) << w.logs("killed", 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const pid_t pid1 = r1.pid();
  r1.signal(SIGKILL);
  EXPECT_EQ(r1.wait(10), 128 + SIGKILL);
  const auto t1 = Clock::now();
  const int rc = r0.wait(60);
  EXPECT_NE(rc, -1) << "rank 0 still runs 60 s after rank 1 was killed";
  EXPECT_NE(rc, 0);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t1).count(), 30.0);
  const std::string log = testing::read_file(w.log("killed", 0));
  EXPECT_NE(log.find("rank 1 (pid " + std::to_string(pid1)), std::string::npos) << log;
}

// sft_train on two ranks (corpus source: no daemon) takes the steps one process takes.
TEST(DistributedTrain, TwoRankSftReproducesOneProcess) {
  DpWorld w;
  auto config = [&](const std::string& out) {
    WarmStartConfig c;
    c.model = w.dir.file("tiny");
    c.out_dir = w.dir.file(out);
    c.source = SftSource::kCorpus;
    c.corpus = w.dir.file("world/corpus.jsonl");
    c.chunk_tokens = 24;
    c.max_examples = 30;
    c.threads = 1;
    c.sft.epochs = 1;
    c.sft.batch_size = 7;  // uneven shares: 3 + 4
    c.sft.max_steps = 4;
    const std::string file = w.dir.file(out + ".json");
    testing::write_file(file, config::to_json(c).dump(2));
    return file;
  };
  auto run = [&](const std::string& out, int world) {
    const std::string cfg = config(out);
    const int port = free_port();
    std::vector<std::unique_ptr<testing::ChildProcess>> ranks;
    for (int r = 0; r < world; ++r)
      ranks.push_back(std::make_unique<testing::ChildProcess>(
          std::vector<std::string>{testing::bin("sft_train"), "--config", cfg}, w.log(out, r),
          world > 1 ? rank_env(r, world, port) : std::vector<std::string>{"STRATA_NO_PROGRESS=1"}));
    std::vector<int> rc;
    for (auto& p : ranks) rc.push_back(p->wait(120));
    return rc;
  };
  ASSERT_EQ(run("sft1", 1), (std::vector<int>{0})) << w.logs("sft1", 1);
  ASSERT_EQ(run("sft2", 2), (std::vector<int>{0, 0})) << w.logs("sft2", 2);
  const std::string a = testing::read_file(w.dir.file("sft1/sft_log.jsonl"));
  const std::string b = testing::read_file(w.dir.file("sft2/sft_log.jsonl"));
  std::istringstream ia(a), ib(b);
  std::string la, lb;
  int lines = 0;
  while (std::getline(ia, la) && std::getline(ib, lb)) {
    const auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
    EXPECT_EQ(ja["tokens"], jb["tokens"]) << la << " | " << lb;
    EXPECT_NEAR(ja["loss"].get<double>(), jb["loss"].get<double>(), 1e-5) << la << " | " << lb;
    ++lines;
  }
  EXPECT_EQ(lines, 4);
  EXPECT_LT(max_weight_diff(w.dir.file("sft1/model"), w.dir.file("sft2/model")), 1e-5);
  EXPECT_GT(max_weight_diff(w.dir.file("tiny"), w.dir.file("sft2/model")), 1e-4) << "training changed nothing";
}

}  // namespace
}  // namespace strata::rl
