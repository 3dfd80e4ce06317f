#include "rl/checkpoint_state.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "agent/checkpoint.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"

namespace strata::rl {

namespace {
namespace fs = std::filesystem;

// Keys whose change does not alter the run itself, so a resume may change them (`device` moves
// it, like `threads`, without changing what it computes beyond rounding).
bool resumable_key(const std::string& k) {
  return k == "steps" || k == "out_dir" || k == "threads" || k == "rollout_threads" || k == "device" ||
         k == "save_every" || k == "keep_checkpoints" || k == "retrieval";
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

std::string optimizer_shard_file(int rank) { return "optimizer.rank" + std::to_string(rank) + ".pt"; }

std::string checkpoint_tmp_dir(const std::string& root, int step) {
  char name[40];
  std::snprintf(name, sizeof name, "/.tmp_step_%06d", step);
  return root + name;
}

void begin_checkpoint(const std::string& root, int step) {
  const std::string tmp = checkpoint_tmp_dir(root, step);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
}

void save_optimizer_shard(const std::string& root, int step, int rank, torch::optim::Optimizer& optim) {
  const std::string tmp = checkpoint_tmp_dir(root, step);
  STRATA_CHECK(fs::is_directory(tmp), "checkpoint: " << tmp << " does not exist (rank 0 creates it first; out_dir "
                                                      "must be on a file system every node shares)");
  torch::save(optim, tmp + "/" + optimizer_shard_file(rank));
}

std::string newest_checkpoint(const std::string& root) {
  std::string best;
  if (!fs::is_directory(root)) return best;
  for (const auto& e : fs::directory_iterator(root)) {
    const auto name = e.path().filename().string();
    if (name.rfind("step_", 0) == 0 && e.is_directory() && fs::exists(e.path() / "state.json") &&
        name > fs::path(best).filename().string())
      best = e.path().string();
  }
  return best;
}

// Removes what a run killed while writing a checkpoint left behind (.tmp_step_N folders).
void remove_unfinished_checkpoints(const std::string& root) {
  if (!fs::is_directory(root)) return;
  std::vector<fs::path> leftovers;
  for (const auto& e : fs::directory_iterator(root))
    if (e.path().filename().string().rfind(".tmp_", 0) == 0) leftovers.push_back(e.path());
  for (const auto& p : leftovers) {
    STRATA_LOG_WARN("removing {}: an unfinished checkpoint (a run stopped while writing it)", p.string());
    fs::remove_all(p);
  }
}

CheckpointState read_checkpoint_state(const std::string& dir, size_t questions) {
  const std::string file = dir + "/state.json";
  std::ifstream in(file, std::ios::binary);
  STRATA_CHECK(in.good(), "--resume: " << dir << " has no state.json");
  std::stringstream text;
  text << in.rdbuf();
  const std::string damaged = "; the checkpoint is damaged: remove " + dir + " to resume from the one before";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    STRATA_FAIL("--resume: " << file << ": not valid JSON (" << e.what() << ")" << damaged);
  }
  STRATA_CHECK(j.is_object(), "--resume: " << file << ": expected a JSON object, got " << config::describe(j) << damaged);
  auto bad = [&](const char* key, const std::string& why) {
    STRATA_FAIL("--resume: " << file << ": " << key << ": " << why << damaged);
  };
  for (const char* key : {"step", "cursor", "order", "rng"})
    if (!j.contains(key)) bad(key, "missing");
  CheckpointState st;
  const auto& step = j["step"];
  if (!step.is_number_integer() || step.get<int64_t>() < 1 || step.get<int64_t>() > 1000000000)
    bad("step", "expected a step number >= 1, got " + config::describe(step));
  st.step = static_cast<int>(step.get<int64_t>());
  const std::string folder = fs::path(dir).filename().string();
  if (folder.rfind("step_", 0) == 0 && std::to_string(st.step) != std::to_string(std::atol(folder.c_str() + 5)))
    bad("step", std::to_string(st.step) + " is not the step of the folder " + folder);
  const auto& order = j["order"];
  if (!order.is_array()) bad("order", "expected a list of question indices, got " + config::describe(order));
  if (order.size() != questions)
    bad("order", "holds " + std::to_string(order.size()) + " question indices, but train_data has " +
                     std::to_string(questions) + " questions");
  std::vector<char> seen(questions, 0);
  st.order.reserve(questions);
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& e = order[i];
    if (!e.is_number_unsigned() || e.get<uint64_t>() >= questions)
      bad("order", "entry " + std::to_string(i) + " is " + config::describe(e) + ", not a question index 0.." +
                       std::to_string(questions - 1));
    const size_t q = static_cast<size_t>(e.get<uint64_t>());
    if (seen[q]) bad("order", "entry " + std::to_string(i) + " repeats question " + std::to_string(q));
    seen[q] = 1;
    st.order.push_back(q);
  }
  const auto& cursor = j["cursor"];
  if (!cursor.is_number_unsigned() || cursor.get<uint64_t>() > questions)
    bad("cursor", "expected a position 0.." + std::to_string(questions) + " in order, got " + config::describe(cursor));
  st.cursor = static_cast<size_t>(cursor.get<uint64_t>());
  const auto& rng = j["rng"];
  if (!rng.is_string()) bad("rng", "expected a generator state (a string), got " + config::describe(rng));
  st.rng = rng.get<std::string>();
  try {
    Rng(0).set_state(st.rng);
  } catch (const Error&) {
    bad("rng", "not a generator state: " + config::describe(rng));
  }
  if (j.contains("world_size")) {
    const auto& w = j["world_size"];
    if (!w.is_number_unsigned() || w.get<uint64_t>() < 1 || w.get<uint64_t>() > (1u << 20))
      bad("world_size", "expected a number of ranks >= 1, got " + config::describe(w));
    st.world_size = static_cast<int>(w.get<uint64_t>());
  }
  if (j.contains("zero_stage")) {
    const auto& z = j["zero_stage"];
    if (!z.is_number_unsigned() || z.get<uint64_t>() > 1) bad("zero_stage", "expected 0 or 1, got " + config::describe(z));
    st.zero_stage = static_cast<int>(z.get<uint64_t>());
  }
  if (j.contains("rank_rng")) {
    const auto& rr = j["rank_rng"];
    if (!rr.is_array() || rr.size() != static_cast<size_t>(st.world_size))
      bad("rank_rng", "expected one generator state per rank (" + std::to_string(st.world_size) + "), got " +
                          config::describe(rr));
    for (size_t r = 0; r < rr.size(); ++r) {
      bool ok = rr[r].is_string();
      if (ok) try {
          Rng(0).set_state(rr[r].get<std::string>());
        } catch (const Error&) {
          ok = false;
        }
      if (!ok) bad("rank_rng", "entry " + std::to_string(r) + " is not a generator state: " + config::describe(rr[r]));
      st.rank_rng.push_back(rr[r].get<std::string>());
    }
  }
  return st;
}

void check_optimizer_file(const std::string& path) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
  } catch (const c10::Error& e) {
    STRATA_FAIL("--resume: " << path << " cannot be read as an optimiser state ("
                             << first_line(e.what_without_backtrace()) << "); the checkpoint is damaged: remove "
                             << fs::path(path).parent_path().string() << " to resume from the one before");
  }
}

std::vector<std::string> resume_config_diff(const TrainerConfig& saved_cfg, const TrainerConfig& now_cfg) {
  const auto saved = config::to_json(saved_cfg);
  const auto now = config::to_json(now_cfg);
  std::vector<std::string> diffs;
  for (auto it = now.begin(); it != now.end(); ++it) {
    if (resumable_key(it.key())) continue;
    const auto d = config::diff_paths(saved.contains(it.key()) ? saved[it.key()] : nlohmann::json(), it.value(),
                                      it.key());
    diffs.insert(diffs.end(), d.begin(), d.end());
  }
  diffs.erase(std::remove(diffs.begin(), diffs.end(), std::string("update.zero_stage")), diffs.end());
  // The LR of the steps already taken depends on `steps` with cosine or a warm-up ratio.
  if ((now_cfg.lr_schedule == LrSchedule::kCosine || now_cfg.warmup_ratio > 0) && saved_cfg.steps != now_cfg.steps)
    diffs.push_back("steps (the LR schedule depends on it: " + std::to_string(saved_cfg.steps) + " -> " +
                    std::to_string(now_cfg.steps) + ")");
  return diffs;
}

namespace {
// STRATA_TEST_PAUSE_IN_CHECKPOINT=N: see train_grpo's comment in trainer.h.
void maybe_pause_for_test(const std::string& tmp, int step) {
  const char* env = std::getenv("STRATA_TEST_PAUSE_IN_CHECKPOINT");
  if (env == nullptr || std::atoi(env) != step) return;
  std::ofstream(tmp + ".paused") << "paused\n";
  STRATA_LOG_WARN("STRATA_TEST_PAUSE_IN_CHECKPOINT: paused while writing {}", tmp);
  for (int i = 0; i < 6000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace

namespace {

// The checksummed files of checkpoint `dir`: every regular file under model/, and optimizer.pt;
// paths relative to `dir`, sorted.
std::vector<std::string> checksummed_files(const std::string& dir) {
  std::vector<std::string> out;
  const fs::path model = fs::path(dir) / "model";
  if (fs::is_directory(model))
    for (const auto& e : fs::recursive_directory_iterator(model))
      if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("optimizer.", 0) == 0 && name.size() > 3 &&
        name.compare(name.size() - 3, 3, ".pt") == 0)
      out.push_back(name);  // optimizer.pt, or ZeRO-1's optimizer.rankR.pt
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string file_crc32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "cannot read " << path);
  std::vector<char> buf(1 << 20);
  uLong crc = crc32_z(0L, Z_NULL, 0);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = in.gcount();
    if (n > 0) crc = crc32_z(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<size_t>(n));
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(crc));
  return hex;
}

}  // namespace

void write_checksums(const std::string& dir) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : checksummed_files(dir)) {
    const std::string path = (fs::path(dir) / f).string();
    j[f] = {{"bytes", fs::file_size(path)}, {"crc32", file_crc32(path)}};
  }
  std::ofstream out(fs::path(dir) / "checksums.json");
  out << j.dump(2) << "\n";
  STRATA_CHECK(out.good(), "cannot write " << dir << "/checksums.json");
}

void verify_checksums(const std::string& dir) {
  const std::string path = (fs::path(dir) / "checksums.json").string();
  if (!fs::exists(path)) {
    STRATA_LOG_WARN("--resume: {} has no checksums.json (written by an older strata): damage to its "
                    "weights or optimiser state cannot be detected", dir);
    return;
  }
  nlohmann::json j;
  try {
    std::ifstream in(path);
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    STRATA_FAIL("--resume: " << path << " is not valid JSON: " << e.what());
  }
  STRATA_CHECK(j.is_object(), "--resume: " << path << " must be a JSON object");
  for (const auto& [name, entry] : j.items()) {
    const std::string file = (fs::path(dir) / name).string();
    uint64_t bytes = 0;
    std::string crc;
    try {
      bytes = entry.at("bytes").get<uint64_t>();
      crc = entry.at("crc32").get<std::string>();
    } catch (const nlohmann::json::exception&) {
      STRATA_FAIL("--resume: " << path << ": " << name << " needs \"bytes\" and \"crc32\"");
    }
    STRATA_CHECK(fs::exists(file), "--resume: " << file << " is missing (listed in " << path << ")");
    const uint64_t have = fs::file_size(file);
    STRATA_CHECK(have == bytes, "--resume: " << file << " has " << have << " bytes where "
                                             << path << " says " << bytes << ": truncated or changed");
    const std::string sum = file_crc32(file);
    STRATA_CHECK(sum == crc, "--resume: " << file << " fails its checksum (CRC-32 " << sum << ", "
                                          << path << " says " << crc << "): the file is damaged");
  }
}

void write_checkpoint(const std::string& root, const TrainerConfig& cfg, const agent::Model& weights,
                      torch::optim::Optimizer& optim, const CheckpointState& st) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%06d", st.step);
  const std::string final_dir = root + "/" + name;
  const std::string tmp = checkpoint_tmp_dir(root, st.step);
  if (st.zero_stage == 0) {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    torch::save(optim, tmp + "/optimizer.pt");
  } else {
    for (int r = 0; r < st.world_size; ++r)
      STRATA_CHECK(fs::exists(tmp + "/" + optimizer_shard_file(r)),
                   "checkpoint: rank " << r << "'s " << optimizer_shard_file(r) << " is missing from " << tmp);
  }
  agent::save_model(weights, tmp + "/model", cfg.model);
  maybe_pause_for_test(tmp, st.step);
  nlohmann::json j;
  j["step"] = st.step;
  j["cursor"] = st.cursor;
  j["order"] = st.order;
  j["rng"] = st.rng;
  j["world_size"] = st.world_size;
  if (!st.rank_rng.empty()) j["rank_rng"] = st.rank_rng;
  if (st.zero_stage != 0) j["zero_stage"] = st.zero_stage;
  {
    std::ofstream out(tmp + "/state.json");
    out << j.dump() << "\n";
    std::ofstream c(tmp + "/config.json");
    c << config::to_json(cfg).dump(2) << "\n";
    STRATA_CHECK(out.good() && c.good(), "error while writing checkpoint " << tmp);
  }
  write_checksums(tmp);
  ::sync();  // the files are on disk before the rename makes the checkpoint visible
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  std::vector<std::string> all;
  for (const auto& e : fs::directory_iterator(root)) {
    const auto n = e.path().filename().string();
    if (n.rfind("step_", 0) == 0) all.push_back(e.path().string());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + cfg.keep_checkpoints < all.size(); ++i) fs::remove_all(all[i]);
  STRATA_LOG_INFO("checkpoint {}", final_dir);
}

void trim_metrics(const std::string& path, int step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("step", 0) > step) continue;
    } catch (const std::exception&) {
      continue;  // a line cut by the kill
    }
    kept += line + "\n";
  }
  in.close();
  std::ofstream(path + ".tmp", std::ios::trunc) << kept;
  fs::rename(path + ".tmp", path);
}

}  // namespace strata::rl
