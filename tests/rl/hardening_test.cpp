// grpo_train under damage, absurd sizes, outages and kill -9 (issue 14 items 2-5 and 7), black box:
// every test runs the programs in build/bin (make_world, build_index, train_tokenizer,
// make_tiny_model, sft_train, retrieval_server, grpo_train) and reads what they write, so nothing
// here depends on the trainer's internal structure.
//
// Fixtures (built once per test binary, tests/shared_fixture.h): a small world, its BM25 index, a
// world tokenizer and a tiny random policy ("base"); and that policy warm-started by sft_train on
// the world's demonstrations ("warm"), which searches and answers often enough that rewards vary
// in every step under the format_em reward. Every test starts its own retrieval_server process,
// so that it can be killed, stopped (SIGSTOP) and restarted. (Over 450 lines on purpose: one test
// per promise of the Trainer table in docs/RELIABILITY.md, sharing the process, daemon and
// fixture helpers above them.)
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/child_process.h"
#include "tests/shared_fixture.h"
#include "tests/test_util.h"


namespace strata::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Runs a program of build/bin; throws (failing the fixture build) unless it exits 0.
void must_run(const std::string& cmdline) {
  const auto r = run_command(cmdline);
  if (r.rc != 0) throw std::runtime_error("`" + cmdline + "` failed (" + std::to_string(r.rc) + "):\n" + r.output);
}

using Process = testing::ChildProcess;

// retrieval_server on a free loopback port, as its own process.
class Daemon {
 public:
  Daemon(const std::string& index, const std::string& work) : index_(index), work_(work) { start(0); }
  // (Re)starts it; port 0 picks a free one, the same port serves a restart.
  void start(int port) {
    const std::string port_file = work_ + "/daemon.port";
    fs::remove(port_file);
    proc_ = std::make_unique<Process>(
        std::vector<std::string>{bin("retrieval_server"), "--index", index_, "--port", std::to_string(port),
                                 "--port-file", port_file, "--log-level", "warn"},
        work_ + "/daemon." + std::to_string(++starts_) + ".log");
    const auto t0 = Clock::now();
    while (!fs::exists(port_file) || fs::file_size(port_file) == 0) {
      if (proc_->poll() != -1 || seconds_since(t0) > 30)
        throw std::runtime_error("retrieval_server did not start: " + read_file(work_ + "/daemon.1.log"));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    port_ = std::stoi(read_file(port_file));
  }
  void kill9() {
    proc_->signal(SIGKILL);
    proc_->wait(10);
  }
  void stop_signal() const { proc_->signal(SIGSTOP); }
  void cont_signal() const { proc_->signal(SIGCONT); }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/retrieve"; }

 private:
  std::string index_, work_;
  std::unique_ptr<Process> proc_;
  int port_ = 0;
  int starts_ = 0;
};

const char* kPromptTemplate =
    "Answer the question. To search, write <search> query </search>; results come back between <information> "
    "and </information>. Give the answer as <answer> name </answer>. Question: {question}\n";

// The world, index, tokenizer and tiny random policy.
std::string base_fixture() {
  return shared_fixture_dir("rl_hardening_base", [](const std::string& dir) {
    const std::string q = " --log-level warn";
    must_run(bin("make_world") + " --out " + dir + "/world --seed 3 --entities 300 --train 60 --dev 10 --test 10" + q);
    must_run(bin("build_index") + " --corpus " + dir + "/world/corpus.jsonl --out " + dir + "/index" + q);
    must_run(bin("train_tokenizer") + " --input " + dir + "/world/corpus.jsonl --input " + dir +
             "/world/train.jsonl --vocab-size 700 --out " + dir + "/tiny/tokenizer.json" + q);
    must_run(bin("make_tiny_model") + " --tokenizer " + dir + "/tiny --out " + dir +
             "/tiny --seed 1 --hidden 64 --layers 2 --heads 4 --kv-heads 2" + q);
  });
}

// The tiny policy warm-started on world demonstrations (sft_train): it searches and answers.
std::string warm_fixture() {
  const std::string base = base_fixture();
  return shared_fixture_dir("rl_hardening_warm", [&](const std::string& dir) {
    Daemon d(base + "/index", dir);
    must_run(bin("sft_train") + " --config " + STRATA_SOURCE_DIR + "/configs/demo_sft.json --set model=" + base +
             "/tiny --set out_dir=" + dir + "/warm --set train_data=" + base + "/world/train.jsonl --set retriever=" +
             d.url() +
             " --set max_examples=60 --set sft.epochs=40 --set sft.lr=3e-3 --set demonstrator.chat=plain"
             " --set sft.precision=fp32 --set threads=1 --log-level warn");
  });
}

// One test's folder, with the base fixture and a daemon of its own.
struct TestRuns {
  TempDir dir;
  std::string base;
  std::unique_ptr<Daemon> daemon;
  TestRuns() {
    setenv("STRATA_NO_PROGRESS", "1", 1);
    base = base_fixture();
    daemon = std::make_unique<Daemon>(base + "/index", dir.path());
  }
  // A fast config on the random tiny policy (every reward 0).
  Json tiny_config(const std::string& out, int steps) const {
    return Json{{"model", base + "/tiny"},
                {"train_data", base + "/world/train.jsonl"},
                {"retriever", daemon->url()},
                {"out_dir", dir.file(out)},
                {"steps", steps},
                {"prompts_per_step", 3},
                {"threads", 1},
                {"lr", 1e-3},
                {"save_every", 1},
                {"rollout",
                 {{"samples_per_prompt", 2},
                  {"max_batch", 6},
                  {"max_seq_len", 1024},
                  {"env", {{"max_turn_tokens", 24}, {"max_obs_tokens", 80}, {"max_response_tokens", 400}}}}},
                {"update", {{"mini_batch", 6}, {"micro_batch", 3}}}};
  }
  // The warm-started policy under format_em (a reward that varies in every step), with fp32
  // rollouts: the sampler is the fp32 policy, whose numbers do not depend on which sequences share
  // a batch (a bf16 sampler's do on CPUs with AVX512-BF16, so two straight runs would differ).
  Json warm_config(const std::string& out, int steps) const {
    const std::string warm = warm_fixture();
    return Json{
        {"model", warm + "/warm/model"},
        {"train_data", base + "/world/train.jsonl"},
        {"retriever", daemon->url()},
        {"out_dir", dir.file(out)},
        {"steps", steps},
        {"prompts_per_step", 4},
        {"threads", 1},
        {"lr", 1e-3},
        {"save_every", 1},
        {"rollout_precision", "fp32"},
        {"rollout",
         {{"samples_per_prompt", 3},
          {"max_batch", 12},
          {"max_seq_len", 1024},
          {"temperature", 1.0},
          {"env",
           {{"max_turns", 4},
            {"max_turn_tokens", 48},
            {"max_obs_tokens", 150},
            {"max_response_tokens", 600},
            {"prompt_template", kPromptTemplate},
            {"reward", {{"name", "format_em"}}}}}}},
        {"update", {{"mini_batch", 12}, {"micro_batch", 6}}}};
  }
  std::string write_config(const std::string& name, const Json& cfg) const {
    const std::string path = dir.file(name + ".json");
    write_file(path, cfg.dump(2));
    return path;
  }
};

std::string grpo(const std::string& cfg_file, const std::string& extra = "") {
  return bin("grpo_train") + " --config " + cfg_file + " " + extra;
}

std::vector<Json> metrics_lines(const std::string& path) {
  std::vector<Json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(Json::parse(line));
  return out;
}

// Every file under `dir` (relative path -> contents) and every folder (-> "<dir>").
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> s;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(e.path(), dir).string();
    s[rel] = e.is_directory() ? std::string("<dir>") : read_file(e.path().string());
  }
  return s;
}

std::string diff_snapshots(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  std::string d;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) {
      d += "  removed " + k + "\n";
    } else if (it->second != v) {
      d += "  changed " + k + "\n";
    }
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) d += "  added " + k + "\n";
  return d;
}

// ---- item 2: a damaged checkpoint is refused before anything in out_dir changes --------------

TEST(TrainerResumeDamage, DamagedStateOrOptimizerIsRefusedNamingTheFileAndNothingIsRewritten) {
  TestRuns s;
  const std::string cfg = s.write_config("run", s.tiny_config("run", 2));
  auto r = run_command(grpo(cfg, "--log-level warn"));
  ASSERT_EQ(r.rc, 0) << r.output;
  const std::string out = s.dir.file("run");
  const std::string ckpt = out + "/checkpoints/step_000002";
  const std::string state_file = ckpt + "/state.json";
  ASSERT_TRUE(fs::exists(state_file));
  const std::string good_state = read_file(state_file);
  const std::string good_optim = read_file(ckpt + "/optimizer.pt");
  // What a resume rewrites (config.json, metrics.jsonl trimmed back to the checkpoint) is made to
  // differ from what it would write, so that a rewrite shows.
  write_file(out + "/config.json", " " + read_file(out + "/config.json"));
  write_file(out + "/metrics.jsonl", read_file(out + "/metrics.jsonl") + "{\"step\": 3}\n");

  struct Case {
    std::string name;
    std::function<void(Json&)> damage;  // null: `text` replaces the file
    std::string text;
    std::string key;  // named in the message ("" = the file alone)
  };
  const std::vector<Case> cases = {
      {"missing rng", [](Json& j) { j.erase("rng"); }, "", "rng"},
      {"missing order", [](Json& j) { j.erase("order"); }, "", "order"},
      {"cursor 1e9", [](Json& j) { j["cursor"] = 1000000000; }, "", "cursor"},
      {"cursor -1", [](Json& j) { j["cursor"] = -1; }, "", "cursor"},
      {"order entry 1e12", [](Json& j) { j["order"][0] = 1000000000000LL; }, "", "order"},
      {"order with a repeat", [](Json& j) { j["order"][1] = j["order"][0]; }, "", "order"},
      {"order too short", [](Json& j) { j["order"].erase(j["order"].size() - 1); }, "", "order"},
      {"order not a list", [](Json& j) { j["order"] = "abc"; }, "", "order"},
      {"step -5", [](Json& j) { j["step"] = -5; }, "", "step"},
      {"step not the folder's", [](Json& j) { j["step"] = 7; }, "", "step"},
      {"rng not a string", [](Json& j) { j["rng"] = 12; }, "", "rng"},
      {"rng garbage", [](Json& j) { j["rng"] = "not a generator state"; }, "", "rng"},
      {"parse error", nullptr, "{\"step\": 2, \"cur", ""},
      {"not an object", nullptr, "[1, 2, 3]\n", ""},
      {"empty file", nullptr, "", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    if (c.damage) {
      Json j = Json::parse(good_state);
      c.damage(j);
      write_file(state_file, j.dump());
    } else {
      write_file(state_file, c.text);
    }
    const auto before = snapshot(out);
    const auto t0 = Clock::now();
    r = run_command(grpo(cfg, "--resume --set steps=3"));
    EXPECT_EQ(r.rc, 2) << r.output;
    EXPECT_NE(r.output.find(state_file), std::string::npos) << "names the file: " << r.output;
    if (!c.key.empty()) {
      EXPECT_NE(r.output.find(c.key), std::string::npos) << "names the key " << c.key << ": " << r.output;
    }
    EXPECT_EQ(r.output.find("Backtrace"), std::string::npos) << r.output;
    EXPECT_LT(seconds_since(t0), 30.0);
    EXPECT_EQ(diff_snapshots(before, snapshot(out)), "") << "out_dir changed before the resume was validated";
  }
  write_file(state_file, good_state);

  // optimizer.pt cut in half, or emptied.
  for (const size_t keep : {good_optim.size() / 2, size_t{0}}) {
    SCOPED_TRACE("optimizer.pt cut to " + std::to_string(keep) + " bytes");
    write_file(ckpt + "/optimizer.pt", good_optim.substr(0, keep));
    const auto before = snapshot(out);
    r = run_command(grpo(cfg, "--resume --set steps=3"));
    EXPECT_EQ(r.rc, 2) << r.output;
    EXPECT_NE(r.output.find(ckpt + "/optimizer.pt"), std::string::npos) << "names the file: " << r.output;
    EXPECT_EQ(diff_snapshots(before, snapshot(out)), "") << "out_dir changed before the resume was validated";
  }
  write_file(ckpt + "/optimizer.pt", good_optim);

  // One flipped bit inside the weights: structurally valid, so only checksums.json can see it.
  {
    const std::string weights = ckpt + "/model/model.safetensors";
    const std::string good_weights = read_file(weights);
    std::string bad = good_weights;
    bad[bad.size() - 3] = static_cast<char>(bad[bad.size() - 3] ^ 0x10);
    write_file(weights, bad);
    const auto before = snapshot(out);
    r = run_command(grpo(cfg, "--resume --set steps=3"));
    EXPECT_EQ(r.rc, 2) << r.output;
    EXPECT_NE(r.output.find(weights + " fails its checksum"), std::string::npos) << r.output;
    EXPECT_EQ(diff_snapshots(before, snapshot(out)), "") << "out_dir changed before the resume was validated";
    write_file(weights, good_weights);
  }

  // The undamaged checkpoint resumes.
  r = run_command(grpo(cfg, "--resume --set steps=3 --log-level warn"));
  EXPECT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(metrics_lines(out + "/metrics.jsonl").size(), 3u);
}

// ---- item 3: sizes are checked before any work, naming the key --------------------------------

TEST(TrainerConfigBounds, AbsurdSizesAreRefusedBeforeWorkNamingTheKey) {
  TestRuns s;
  const std::string cfg = s.write_config("run", s.tiny_config("run", 1));
  const std::string out = s.dir.file("run");
  struct Case {
    std::string set;
    std::string key;
  };
  const std::vector<Case> cases = {
      {"prompts_per_step=1e9", "prompts_per_step"},
      {"rollout.samples_per_prompt=1e6", "rollout.samples_per_prompt"},
      {"rollout.max_batch=1e9", "rollout.max_batch"},
      {"rollout.max_seq_len=1e9", "rollout.max_seq_len"},
      {"lr=1e400", "lr"},
      {"lr=1e300", "lr"},
      {"threads=-2", "threads"},
      {"threads=100000", "threads"},
      {"rollout_threads=100000", "rollout_threads"},
      {"update.mini_batch=1e9", "update.mini_batch"},
      {"update.micro_batch=1e9", "update.micro_batch"},
      // Beyond the tiny model's context (max_position_embeddings 4096).
      {"rollout.max_seq_len=8192", "max_position_embeddings"},
      // Within every hard cap, but the KV cache (65536 slots x 4096 positions) needs ~128 GiB.
      {"prompts_per_step=4096 --set rollout.samples_per_prompt=16 --set rollout.max_batch=65536 "
       "--set rollout.max_seq_len=4096",
       "rollout.max_batch"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.set);
    const auto t0 = Clock::now();
    const auto r = run_command(grpo(cfg, "--set " + c.set));
    EXPECT_EQ(r.rc, 2) << r.output;
    EXPECT_NE(r.output.find(c.key), std::string::npos) << "names " << c.key << ": " << r.output;
    EXPECT_EQ(r.output.find("Backtrace"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("frame #"), std::string::npos) << r.output;
    EXPECT_LT(seconds_since(t0), 20.0) << "checked before work";
    EXPECT_FALSE(fs::exists(out)) << "nothing was started";
  }
  // An overflowing number in a config file names the file and line.
  auto j = s.tiny_config("run", 1);
  std::string text = j.dump(2);
  text.replace(text.find("\"lr\": 0.001"), 11, "\"lr\": 1e400");
  write_file(s.dir.file("overflow.json"), text);
  const auto r = run_command(grpo(s.dir.file("overflow.json")));
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find(s.dir.file("overflow.json") + ":"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lr"), std::string::npos) << r.output;
  // The bounds are documented.
  const auto keys = run_command(bin("grpo_train") + " --list-keys");
  EXPECT_EQ(keys.rc, 0);
  for (const char* k : {"prompts_per_step", "samples_per_prompt", "max_batch", "max_seq_len", "mini_batch"}) {
    const size_t at = keys.output.find(std::string(k) + " = ");
    ASSERT_NE(at, std::string::npos) << k;
    const std::string doc = keys.output.substr(at, keys.output.find('\n', keys.output.find('\n', at) + 1) - at);
    EXPECT_NE(doc.find("at most"), std::string::npos) << k << " documents its bound: " << doc;
  }
}

// ---- item 4: no documented key is silently ignored --------------------------------------------

TEST(TrainerConfigKeys, UpdateTemperatureIsRemovedAndRolloutSeedIsHonoured) {
  TestRuns s;
  const std::string cfg = s.write_config("run", s.tiny_config("run", 1));
  // update.temperature: the update must divide the logits by the temperature the rollouts were
  // sampled at, so the key is gone, with an error that says what to use.
  auto r = run_command(grpo(cfg, "--set update.temperature=0.5"));
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("update.temperature: removed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rollout.temperature"), std::string::npos) << r.output;
  r = run_command(bin("grpo_train") + " --list-keys");
  EXPECT_EQ(r.output.find("update.temperature"), std::string::npos) << "no longer listed";
  EXPECT_NE(r.output.find("rollout.seed"), std::string::npos);
  r = run_command(grpo(cfg, "--print-config"));
  EXPECT_EQ(r.rc, 0) << r.output;
  EXPECT_FALSE(Json::parse(r.output)["update"].contains("temperature"));

  // rollout.seed changes the samples (and only them); the same value gives the same samples.
  auto one = [&](const std::string& name, int rollout_seed) {
    auto c = s.tiny_config(name, 1);
    c["rollout_precision"] = "fp32";
    c["rollout"]["seed"] = rollout_seed;
    const auto rr = run_command(grpo(s.write_config(name, c), "--log-level warn"));
    EXPECT_EQ(rr.rc, 0) << rr.output;
    return read_file(s.dir.file(name + "/rollouts/step_000001.pb"));
  };
  const auto a = one("seed1", 1), b = one("seed2", 2), b2 = one("seed2b", 2);
  EXPECT_FALSE(a.empty());
  EXPECT_TRUE(a != b) << "rollout.seed is honoured";
  EXPECT_TRUE(b == b2) << "and deterministic";
}

// ---- item 5: retrieval outages are bounded and reported ----------------------------------------

// The daemon dies for good mid-run: steps whose share of failed trajectories is above
// retrieval.max_failed_fraction are not used for the update, and after
// retrieval.max_failed_steps of them in a row the run stops (exit 3) saying so.
TEST(TrainerOutage, DaemonKilledMidRunStopsTheRunWithAClearMessage) {
  TestRuns s;
  auto c = s.warm_config("run", 40);
  c["retrieval"] = {{"max_attempts", 2}, {"backoff_initial_ms", 10}, {"timeout_ms", 2000},
                    {"max_failed_fraction", 0.05}, {"max_failed_steps", 2}};
  const std::string cfg = s.write_config("run", c);
  const std::string out = s.dir.file("run");
  Process run({bin("grpo_train"), "--config", cfg}, s.dir.file("run.log"));
  ASSERT_TRUE(run.running());
  const auto t0 = Clock::now();
  while (metrics_lines(out + "/metrics.jsonl").size() < 1) {
    ASSERT_EQ(run.poll(), -1) << read_file(s.dir.file("run.log"));
    ASSERT_LT(seconds_since(t0), 60.0) << read_file(s.dir.file("run.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  s.daemon->kill9();
  const int rc = run.wait(120);
  const std::string log = read_file(s.dir.file("run.log"));
  ASSERT_EQ(rc, 3) << log;
  EXPECT_NE(log.find("retrieval.max_failed_steps"), std::string::npos) << log;
  EXPECT_NE(log.find("--resume"), std::string::npos) << "says how to continue: " << log;
  const auto lines = metrics_lines(out + "/metrics.jsonl");
  ASSERT_GE(lines.size(), 3u);
  int unused = 0;
  for (const auto& j : lines) {
    ASSERT_TRUE(j.contains("rollout/failed")) << j.dump();
    ASSERT_TRUE(j.contains("update/skipped_failed")) << j.dump();
    if (j["update/skipped_failed"] == 1.0) {
      ++unused;
      EXPECT_GT(j["rollout/failed"].get<double>(), 0.0);
      EXPECT_FALSE(j.contains("grad_norm")) << "no update ran: " << j.dump();
    }
  }
  EXPECT_GE(unused, 2) << "two unusable steps in a row stop the run";
  EXPECT_NE(log.find(" failed "), std::string::npos) << "failures are in the step line: " << log;
  EXPECT_FALSE(fs::exists(out + "/final")) << "a stopped run writes no final model";
}

// A hung daemon (SIGSTOP: connections are accepted, nothing answers) costs at most the retry
// budget per search, with a warning while the trainer waits, and then stops the run the same way.
TEST(TrainerOutage, HungDaemonIsBoundedAndWarnedAbout) {
  TestRuns s;
  auto c = s.warm_config("run", 40);
  c["save_every"] = 0;
  c["retrieval"] = {{"max_attempts", 2},      {"backoff_initial_ms", 10}, {"timeout_ms", 1500},
                    {"warn_after_s", 1},      {"max_failed_fraction", 0.05}, {"max_failed_steps", 2}};
  const std::string cfg = s.write_config("run", c);
  const std::string out = s.dir.file("run");
  Process run({bin("grpo_train"), "--config", cfg}, s.dir.file("run.log"));
  const auto t0 = Clock::now();
  while (metrics_lines(out + "/metrics.jsonl").size() < 1) {
    ASSERT_EQ(run.poll(), -1) << read_file(s.dir.file("run.log"));
    ASSERT_LT(seconds_since(t0), 60.0) << read_file(s.dir.file("run.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  s.daemon->stop_signal();
  const auto t1 = Clock::now();
  const int rc = run.wait(90);
  const double stalled = seconds_since(t1);
  s.daemon->cont_signal();
  const std::string log = read_file(s.dir.file("run.log"));
  ASSERT_EQ(rc, 3) << "stopped (" << stalled << " s): " << log;
  EXPECT_LT(stalled, 60.0);
  EXPECT_NE(log.find("waiting for the retrieval daemon"), std::string::npos) << log;
}

// A short outage (the daemon restarted on the same port) is absorbed by a retry budget that is
// longer than the outage: no trajectory fails.
TEST(TrainerOutage, ShortOutageWithinTheRetryBudgetLosesNothing) {
  TestRuns s;
  auto c = s.warm_config("run", 6);
  c["save_every"] = 0;
  c["retrieval"] = {{"max_attempts", 12}, {"backoff_initial_ms", 200}, {"backoff_max_ms", 1000}};
  const std::string cfg = s.write_config("run", c);
  const std::string out = s.dir.file("run");
  Process run({bin("grpo_train"), "--config", cfg}, s.dir.file("run.log"));
  const auto t0 = Clock::now();
  while (metrics_lines(out + "/metrics.jsonl").size() < 1) {
    ASSERT_EQ(run.poll(), -1) << read_file(s.dir.file("run.log"));
    ASSERT_LT(seconds_since(t0), 60.0) << read_file(s.dir.file("run.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int port = s.daemon->port();
  s.daemon->kill9();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  s.daemon->start(port);
  ASSERT_EQ(run.wait(120), 0) << read_file(s.dir.file("run.log"));
  for (const auto& j : metrics_lines(out + "/metrics.jsonl")) EXPECT_EQ(j["rollout/failed"], 0.0) << j.dump();
  EXPECT_NE(read_file(s.dir.file("run.log")).find("0 of 72 trajectories failed"), std::string::npos)
      << read_file(s.dir.file("run.log"));
}

// ---- item 7: kill -9 mid-step with real updates, resume, byte-for-byte equal ------------------

// Metrics that measure time (or depend on it) are left out of the comparison, and so is
// rollout/logp_mismatch (the sampler's log-probs against the policy's, ~1e-7): with continuous
// batching, which sequences share a decoding batch depends on when each search comes back, and
// an fp32 matrix product over a different batch rounds differently in the last bits. The sampled
// tokens, rewards, advantages and the update do not depend on it.
Json without_timing(Json j) {
  for (auto it = j.begin(); it != j.end();) {
    const std::string k = it.key();
    if (k.rfind("time/", 0) == 0 || k == "rollout/tokens_per_s" || k.rfind("rollout/retrieval_", 0) == 0 ||
        k == "rollout/occupancy" || k == "rollout/logp_mismatch")
      it = j.erase(it);
    else
      ++it;
  }
  return j;
}

// The optimiser state's tensors, byte for byte, as a sorted list of SHA-256 sums of the tensor
// records of optimizer.pt (a zip). LibTorch names each parameter's state by the address of its
// tensor (torch/optim/serialize.h) and writes them in hash-map order, so the file itself differs
// between two identical runs (even two straight ones); the tensors in it do not.
// A rollouts file as inspect_rollouts prints it (prompt, every token's text and mask, rewards,
// strata, end reasons), its own path left out: everything but the sampler's log-probs (see
// without_timing).
std::string rollouts_text(const std::string& path) {
  auto r = run_command(bin("inspect_rollouts") + " --no-color --prompt " + path);
  EXPECT_EQ(r.rc, 0) << r.output;
  for (size_t at; (at = r.output.find(path)) != std::string::npos;) r.output.replace(at, path.size(), "FILE");
  return r.output;
}

RunResult optimizer_tensors(const std::string& path) {
  return run_command("python3 -c 'import sys, zipfile, hashlib; z = zipfile.ZipFile(sys.argv[1]); "
                     "print(sorted(hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist() "
                     "if \"/data/\" in i.filename))' " + path);
}

TEST(TrainerResumeExact, KilledMidStepWithRealUpdatesResumesByteForByte) {
  TestRuns s;
  const int steps = 5;
  // A straight run: every step trains (rewards vary, the zero-advantage guard never fires).
  const std::string straight_cfg = s.write_config("straight", s.warm_config("straight", steps));
  auto r = run_command(grpo(straight_cfg, "--log-level warn"));
  ASSERT_EQ(r.rc, 0) << r.output;
  const auto straight = metrics_lines(s.dir.file("straight/metrics.jsonl"));
  ASSERT_EQ(straight.size(), static_cast<size_t>(steps));
  for (const auto& j : straight) {
    EXPECT_EQ(j["update/skipped_zero_adv"], 0.0) << "every step must train: " << j.dump();
    EXPECT_TRUE(j.contains("grad_norm")) << j.dump();
  }

  // The same run killed (SIGKILL) in the middle of step 3, after its rollouts, before its update.
  const std::string killed_cfg = s.write_config("killed", s.warm_config("killed", steps));
  const std::string out = s.dir.file("killed");
  {
    Process run({bin("grpo_train"), "--config", killed_cfg}, s.dir.file("killed.log"),
                {"STRATA_TEST_PAUSE_IN_STEP=3"});
    const std::string marker = out + "/.test_paused_in_step_3";
    const auto t0 = Clock::now();
    while (!fs::exists(marker)) {
      ASSERT_EQ(run.poll(), -1) << "ended before the pause: " << read_file(s.dir.file("killed.log"));
      ASSERT_LT(seconds_since(t0), 90.0) << read_file(s.dir.file("killed.log"));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    run.signal(SIGKILL);
    EXPECT_EQ(run.wait(30), 128 + SIGKILL);
  }
  EXPECT_TRUE(fs::exists(out + "/checkpoints/step_000002/state.json"));
  EXPECT_FALSE(fs::exists(out + "/checkpoints/step_000003"));
  EXPECT_TRUE(fs::exists(out + "/rollouts/step_000003.pb")) << "killed after step 3's rollouts";
  fs::remove(out + "/.test_paused_in_step_3");
  r = run_command(grpo(killed_cfg, "--resume --log-level warn"));
  ASSERT_EQ(r.rc, 0) << r.output;

  // Weights, optimiser tensors, loop state, rollouts and metrics: byte for byte (see
  // optimizer_tensors, rollouts_text and without_timing for what is left out and why).
  const std::string a = s.dir.file("straight"), b = out;
  EXPECT_TRUE(read_file(a + "/final/model.safetensors") == read_file(b + "/final/model.safetensors")) << "weights";
  for (int step : {steps - 1, steps}) {
    char name[32];
    std::snprintf(name, sizeof name, "/checkpoints/step_%06d", step);
    for (const char* f : {"/state.json", "/model/model.safetensors"})
      EXPECT_TRUE(read_file(a + name + f) == read_file(b + name + f)) << name << f;
    const auto oa = optimizer_tensors(a + name + "/optimizer.pt"), ob = optimizer_tensors(b + name + "/optimizer.pt");
    EXPECT_EQ(oa.rc, 0) << oa.output;
    EXPECT_GT(oa.output.size(), 100u) << oa.output;
    EXPECT_EQ(oa.output, ob.output) << name << "/optimizer.pt: the optimiser's tensors";
  }
  for (int step = 1; step <= steps; ++step) {
    char name[32];
    std::snprintf(name, sizeof name, "/rollouts/step_%06d.pb", step);
    const std::string ta = rollouts_text(a + name);
    EXPECT_GT(ta.size(), 1000u) << ta;
    EXPECT_TRUE(ta == rollouts_text(b + name)) << name;
  }
  const auto resumed = metrics_lines(b + "/metrics.jsonl");
  ASSERT_EQ(resumed.size(), straight.size());
  for (size_t i = 0; i < resumed.size(); ++i)
    EXPECT_EQ(without_timing(resumed[i]).dump(), without_timing(straight[i]).dump()) << "step " << i + 1;
}

}  // namespace
}  // namespace strata::testing
