#include "eval/shard.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "core/error.h"

namespace strata::eval {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A non-negative decimal integer, or nothing.
std::optional<long long> parse_count(const std::string& s) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(s);
}

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "cannot read " << path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    STRATA_FAIL(path << ": not valid JSON (" << e.what() << ")");
  }
}

template <class T>
T field(const json& j, const char* key, const std::string& where) {
  STRATA_CHECK(j.contains(key), where << ": missing \"" << key << "\"");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    STRATA_FAIL(where << ": \"" << key << "\" has the wrong type: " << j.at(key).dump());
  }
}

// One shard's outputs as read back.
struct ShardRun {
  std::string dir;
  Shard shard;
  json run_info;
  std::vector<Prediction> predictions;
};

ShardRun read_shard(const std::string& dir) {
  ShardRun s;
  s.dir = dir;
  const std::string run_path = dir + "/run.json";
  STRATA_CHECK(fs::is_regular_file(run_path),
               dir << ": no run.json (not the output folder of an evaluate --shard run)");
  s.run_info = read_json_file(run_path);
  STRATA_CHECK(s.run_info.is_object() && s.run_info.contains("shard"),
               run_path << ": no \"shard\" entry (an unsharded run cannot be merged)");
  const json& sh = s.run_info["shard"];
  s.shard.index = field<int>(sh, "index", run_path + ": shard");
  s.shard.count = field<int>(sh, "count", run_path + ": shard");
  STRATA_CHECK(s.shard.count >= 1 && s.shard.index >= 0 && s.shard.index < s.shard.count,
               run_path << ": bad shard " << sh.dump());
  const std::string mode = field<std::string>(s.run_info, "mode", run_path);
  const std::string file = dir + (mode == "predictions" ? "/scored.jsonl" : "/predictions.jsonl");
  std::ifstream in(file, std::ios::binary);
  STRATA_CHECK(in.good(), dir << ": cannot read " << file);
  std::string text;
  size_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    const std::string where = file + ":" + std::to_string(line);
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      STRATA_FAIL(where << ": not valid JSON (" << e.what() << ")");
    }
    s.predictions.push_back(prediction_from_json(j, where));
  }
  return s;
}

// The shard folders in `dir`: itself when it has run.json, else its shard-I-of-N folders.
std::vector<std::string> shard_folders(const std::string& dir) {
  STRATA_CHECK(fs::is_directory(dir), "--merge " << dir << ": no such folder");
  // A shard's folder has a run.json with a shard entry; a merged run's folder has its own run.json
  // beside the shard folders it came from.
  if (fs::is_regular_file(dir + "/run.json") && read_json_file(dir + "/run.json").contains("shard")) return {dir};
  static const std::regex name("shard-[0-9]+-of-[0-9]+");
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && std::regex_match(e.path().filename().string(), name)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  STRATA_CHECK(!out.empty(), "--merge " << dir << ": neither a shard's output folder (run.json with a \"shard\" "
                                        "entry) nor a folder holding shard-I-of-N folders");
  return out;
}

}  // namespace

std::string Shard::folder() const {
  return "shard-" + std::to_string(index) + "-of-" + std::to_string(count);
}

Shard parse_shard(const std::string& spec, const std::string& flag) {
  const size_t slash = spec.find('/');
  const auto i = slash == std::string::npos ? std::nullopt : parse_count(spec.substr(0, slash));
  const auto n = slash == std::string::npos ? std::nullopt : parse_count(spec.substr(slash + 1));
  STRATA_CHECK(i && n, flag << ": expected I/N (shard I of N, counted from 0, e.g. 0/4), got \"" << spec << "\"");
  STRATA_CHECK(*n >= 1 && *i < *n, flag << ": shard " << *i << " of " << *n << " does not exist (I must be 0.."
                                        << (*n >= 1 ? *n - 1 : 0) << ")");
  return Shard{static_cast<int>(*i), static_cast<int>(*n)};
}

std::optional<Shard> shard_from_env() {
  const char* world = std::getenv("WORLD_SIZE");
  if (world == nullptr || *world == 0) return std::nullopt;
  const char* rank = std::getenv("RANK");
  STRATA_CHECK(rank != nullptr && *rank != 0, "WORLD_SIZE is set (" << world << ") but RANK is not: run under "
                                                                        "torchrun, or give --shard I/N");
  return parse_shard(std::string(rank) + "/" + world, "RANK/WORLD_SIZE");
}

void take_shard(std::vector<Dataset>& datasets, const Shard& shard) {
  if (!shard.sharded()) return;
  for (auto& d : datasets) {
    std::vector<data::QaRecord> mine;
    for (size_t k = 0; k < d.records.size(); ++k) {
      if (static_cast<int>(k % static_cast<size_t>(shard.count)) == shard.index)
        mine.push_back(std::move(d.records[k]));
      else
        d.ids_other_shards.push_back(d.records[k].id);
    }
    d.records = std::move(mine);
  }
}

Prediction prediction_from_json(const json& j, const std::string& where) {
  STRATA_CHECK(j.is_object(), where << ": expected a JSON object, got " << j.type_name());
  Prediction p;
  p.id = field<std::string>(j, "id", where);
  p.dataset = field<std::string>(j, "dataset", where);
  p.question = field<std::string>(j, "question", where);
  p.golden_answers = field<std::vector<std::string>>(j, "golden_answers", where);
  p.prediction = field<std::string>(j, "prediction", where);
  p.em = field<double>(j, "em", where);
  p.f1 = field<double>(j, "f1", where);
  p.cover_em = field<double>(j, "cover_em", where);
  p.searches = field<int>(j, "searches", where);
  p.queries = field<std::vector<std::string>>(j, "queries", where);
  if (j.contains("hops")) p.hops = field<int>(j, "hops", where);
  if (j.contains("type")) p.type = field<std::string>(j, "type", where);
  p.end_reason = field<std::string>(j, "end_reason", where);
  if (j.contains("error")) p.error = field<std::string>(j, "error", where);
  if (j.contains("trajectory")) p.trajectory = field<std::string>(j, "trajectory", where);
  p.missing = p.end_reason == "missing";
  return p;
}

MergedRun merge_shards(const std::vector<std::string>& dirs) {
  STRATA_CHECK(!dirs.empty(), "--merge: give the shard folders (or the --out folder the shards wrote into)");
  std::vector<std::string> folders;
  for (const auto& d : dirs)
    for (auto& f : shard_folders(d)) folders.push_back(std::move(f));
  std::vector<ShardRun> shards;
  for (const auto& f : folders) shards.push_back(read_shard(f));

  const int n = shards.front().shard.count;
  std::vector<const ShardRun*> by_index(static_cast<size_t>(n), nullptr);
  for (const auto& s : shards) {
    STRATA_CHECK(s.shard.count == n, s.dir << " is shard " << s.shard.index << " of " << s.shard.count << ", but "
                                           << shards.front().dir << " is one of " << n);
    const ShardRun*& slot = by_index[static_cast<size_t>(s.shard.index)];
    STRATA_CHECK(slot == nullptr, "shard " << s.shard.index << " of " << n << " is given twice: " << slot->dir
                                           << " and " << s.dir);
    slot = &s;
  }
  std::string absent;
  for (int i = 0; i < n; ++i)
    if (by_index[static_cast<size_t>(i)] == nullptr) absent += (absent.empty() ? "" : ", ") + std::to_string(i);
  STRATA_CHECK(absent.empty(), "--merge: shard(s) " << absent << " of " << n << " are missing (found "
                                                     << shards.size() << " of " << n << ")");

  // The same run: mode, data files and limit; each shard complete.
  const json& first = by_index[0]->run_info;
  const auto same = [&](const ShardRun& s, const char* key) {
    STRATA_CHECK(s.run_info.value(key, json()) == first.value(key, json()),
                 s.dir << "/run.json: \"" << key << "\" is " << s.run_info.value(key, json()).dump() << ", but "
                       << by_index[0]->dir << " has " << first.value(key, json()).dump()
                       << " (shards of different runs)");
  };
  MergedRun out;
  out.predictions_file = first.value("mode", "") == "predictions" ? "scored.jsonl" : "predictions.jsonl";
  const json& data = first["data"];
  STRATA_CHECK(data.is_array(), by_index[0]->dir << "/run.json: \"data\" is not a list");
  std::map<std::string, std::vector<std::vector<const Prediction*>>> per;  // dataset -> shard -> its predictions
  for (const auto* s : by_index) {
    same(*s, "mode");
    same(*s, "limit");
    STRATA_CHECK(s->run_info["data"].is_array() && s->run_info["data"].size() == data.size(),
                 s->dir << "/run.json: other data files than " << by_index[0]->dir);
    for (size_t d = 0; d < data.size(); ++d) {
      const json& mine = s->run_info["data"][d];
      STRATA_CHECK(mine.value("name", "") == data[d].value("name", "") &&
                       mine.value("total_questions", -1) == data[d].value("total_questions", -1),
                   s->dir << "/run.json: data file " << d + 1 << " is " << mine.dump() << ", but "
                          << by_index[0]->dir << " has " << data[d].dump() << " (shards of different runs)");
    }
    for (const auto& p : s->predictions) {
      auto& lists = per[p.dataset];
      lists.resize(static_cast<size_t>(n));
      lists[static_cast<size_t>(s->shard.index)].push_back(&p);
    }
  }
  for (size_t d = 0; d < data.size(); ++d) {
    const std::string name = data[d].value("name", "");
    const int64_t total = data[d].value("total_questions", int64_t{-1});
    STRATA_CHECK(total >= 0, by_index[0]->dir << "/run.json: data file " << name << " has no \"total_questions\"");
    auto& lists = per[name];
    lists.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const int64_t expect = total > i ? (total - i + n - 1) / n : 0;
      const int64_t got = static_cast<int64_t>(lists[static_cast<size_t>(i)].size());
      STRATA_CHECK(got == expect, by_index[static_cast<size_t>(i)]->dir
                                      << ": " << got << " predictions of " << name << ", expected " << expect
                                      << " (shard " << i << " of " << n << " of " << total
                                      << " questions): an unfinished or damaged shard");
    }
    // Question k of the file came from shard k mod n, as its (k / n)-th.
    for (int64_t k = 0; k < total; ++k)
      out.predictions.push_back(*lists[static_cast<size_t>(k % n)][static_cast<size_t>(k / n)]);
    out.dataset_order.push_back(name);
  }
  STRATA_CHECK(per.size() == data.size(), "--merge: the shards hold predictions of a dataset their run.json does "
                                          "not list");

  out.run_info = first;
  out.run_info.erase("shard");
  for (auto& d : out.run_info["data"]) {
    d["questions"] = d["total_questions"];
    d.erase("total_questions");
  }
  out.run_info["merged_from"] = json::array();
  for (const auto* s : by_index) out.run_info["merged_from"].push_back(s->dir);
  return out;
}

}  // namespace strata::eval
