#include "eval/predictions_file.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "core/error.h"
#include "env/answer_match.h"

namespace strata::eval {

namespace {

using nlohmann::json;

std::string id_of(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  STRATA_FAIL(where << ": \"id\" must be a string or an integer, got " << v.dump());
}

}  // namespace

ScoredPredictions score_predictions_file(const std::string& path,
                                         const std::vector<Dataset>& datasets,
                                         const PredictionsFileOptions& opts) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "cannot read predictions file " << path);

  // id -> the datasets that hold it (index into `datasets`, index of the record).
  std::unordered_map<std::string, std::vector<std::pair<size_t, size_t>>> where_is;
  std::map<std::string, size_t> dataset_index;
  std::unordered_map<std::string, std::vector<size_t>> beyond;  // id -> datasets that cut it
  std::unordered_map<std::string, std::vector<size_t>> other;   // id -> datasets another shard has
  std::string names;
  for (size_t d = 0; d < datasets.size(); ++d) {
    dataset_index[datasets[d].name] = d;
    names += (names.empty() ? "" : ", ") + datasets[d].name;
    for (size_t r = 0; r < datasets[d].records.size(); ++r)
      where_is[datasets[d].records[r].id].push_back({d, r});
    for (const auto& id : datasets[d].ids_beyond_limit) beyond[id].push_back(d);
    for (const auto& id : datasets[d].ids_other_shards) other[id].push_back(d);
  }

  // (dataset, record) -> the prediction read for it and its line.
  std::vector<std::vector<std::optional<Prediction>>> got(datasets.size());
  std::vector<std::vector<size_t>> line_of(datasets.size());
  for (size_t d = 0; d < datasets.size(); ++d) {
    got[d].resize(datasets[d].records.size());
    line_of[d].resize(datasets[d].records.size(), 0);
  }

  ScoredPredictions out;
  auto listed = [&](const auto& cut, const std::string& id, std::optional<size_t> d) {
    auto it = cut.find(id);
    if (it == cut.end()) return false;
    return !d || std::find(it->second.begin(), it->second.end(), *d) != it->second.end();
  };
  // A line for a question this run leaves out: counted and skipped.
  auto left_out = [&](const std::string& id, std::optional<size_t> d) {
    size_t* count = listed(beyond, id, d) ? &out.beyond_limit : listed(other, id, d) ? &out.other_shards : nullptr;
    if (count != nullptr) ++*count;
    return count != nullptr;
  };
  std::string text;
  size_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line);
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
      STRATA_FAIL(where << ": not valid JSON (" << e.what() << ")");
    }
    STRATA_CHECK(j.is_object(), where << ": expected a JSON object, got " << j.type_name());
    STRATA_CHECK(j.contains("id"), where << ": missing \"id\"");
    STRATA_CHECK(j.contains("prediction"),
                 where << ": missing \"prediction\" (use null or \"\" for no answer)");
    const std::string id = id_of(j["id"], where);
    const json& pj = j["prediction"];
    STRATA_CHECK(pj.is_string() || pj.is_null(),
                 where << ": \"prediction\" must be a string or null, got " << pj.dump());

    size_t d = 0, r = 0;
    auto hits = where_is.find(id);
    if (j.contains("dataset") && !j["dataset"].is_null()) {
      STRATA_CHECK(j["dataset"].is_string(),
                   where << ": \"dataset\" must be a string, got " << j["dataset"].dump());
      const std::string name = j["dataset"].get<std::string>();
      auto di = dataset_index.find(name);
      STRATA_CHECK(di != dataset_index.end(), where << ": dataset \"" << name
                                                    << "\" is not one of the --data files ("
                                                    << names << ")");
      d = di->second;
      bool found = false;
      if (hits != where_is.end())
        for (const auto& [hd, hr] : hits->second)
          if (hd == d) {
            r = hr;
            found = true;
          }
      if (!found && left_out(id, d)) continue;
      STRATA_CHECK(found, where << ": id \"" << id << "\" is not in " << datasets[d].path);
    } else {
      if (hits == where_is.end() && left_out(id, std::nullopt)) continue;
      STRATA_CHECK(hits != where_is.end(),
                   where << ": id \"" << id << "\" is not in any --data file (" << names << ")");
      if (hits->second.size() > 1) {
        std::string in_files;
        for (const auto& [hd, hr] : hits->second)
          in_files += (in_files.empty() ? "" : ", ") + datasets[hd].name;
        STRATA_FAIL(where << ": id \"" << id << "\" is in several --data files (" << in_files
                          << "): add a \"dataset\" field to say which");
      }
      d = hits->second[0].first;
      r = hits->second[0].second;
    }
    STRATA_CHECK(!got[d][r].has_value(),
                 where << ": a second prediction for id \"" << id << "\" of " << datasets[d].name
                       << " (the first is on line " << line_of[d][r] << ")");

    std::string answer = pj.is_string() ? pj.get<std::string>() : "";
    if (opts.extract_answer)
      if (auto a = env::extract_answer(answer)) answer = *a;
    Prediction p = make_prediction(datasets[d].records[r], datasets[d].name, answer);
    p.end_reason = "scored";
    if (j.contains("searches")) {
      STRATA_CHECK(
          j["searches"].is_number_integer() && j["searches"].get<int64_t>() >= 0,
          where << ": \"searches\" must be a non-negative integer, got " << j["searches"].dump());
      p.searches = j["searches"].get<int>();
    }
    if (j.contains("queries")) {
      STRATA_CHECK(j["queries"].is_array(),
                   where << ": \"queries\" must be a list of strings, got " << j["queries"].dump());
      for (const auto& q : j["queries"]) {
        STRATA_CHECK(q.is_string(), where << ": \"queries\" must hold strings, got " << q.dump());
        p.queries.push_back(q.get<std::string>());
      }
    }
    got[d][r] = std::move(p);
    line_of[d][r] = line;
    ++out.lines;
  }
  STRATA_CHECK(!in.bad(), "failed reading " << path);

  for (size_t d = 0; d < datasets.size(); ++d) {
    for (size_t r = 0; r < datasets[d].records.size(); ++r) {
      if (got[d][r]) {
        out.predictions.push_back(std::move(*got[d][r]));
      } else {
        Prediction p = make_prediction(datasets[d].records[r], datasets[d].name, "");
        p.missing = true;
        p.end_reason = "missing";
        out.missing.push_back(datasets[d].name + "/" + p.id);
        out.predictions.push_back(std::move(p));
      }
    }
  }
  return out;
}

}  // namespace strata::eval
