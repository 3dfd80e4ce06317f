#include "data/qa.h"

#include <fstream>
#include <sstream>
#include <unordered_set>

#include "core/error.h"

namespace strata::data {

using nlohmann::json;

QaFormat parse_qa_format(const std::string& name) {
  if (name == "auto") return QaFormat::kAuto;
  if (name == "flashrag" || name == "searchr1") return QaFormat::kFlashRag;
  if (name == "r1searcher") return QaFormat::kR1Searcher;
  if (name == "nq_open") return QaFormat::kNqOpen;
  if (name == "hotpotqa") return QaFormat::kHotpotQa;
  STRATA_FAIL("QA format: expected one of auto, flashrag, r1searcher, nq_open, hotpotqa; got \""
              << name << "\"");
}

std::string qa_format_name(QaFormat f) {
  switch (f) {
    case QaFormat::kAuto: return "auto";
    case QaFormat::kFlashRag: return "flashrag";
    case QaFormat::kR1Searcher: return "r1searcher";
    case QaFormat::kNqOpen: return "nq_open";
    case QaFormat::kHotpotQa: return "hotpotqa";
  }
  return "?";
}

namespace {

std::string id_string(const json& v, const std::string& where, const char* key) {
  if (v.is_string()) {
    STRATA_CHECK(!v.get<std::string>().empty(), where << ": \"" << key << "\" is empty");
    return v.get<std::string>();
  }
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  STRATA_FAIL(where << ": \"" << key << "\" must be a string or an integer, got " << v.dump());
}

std::string required_string(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  STRATA_CHECK(it != j.end(), where << ": missing \"" << key << "\"");
  STRATA_CHECK(it->is_string(), where << ": \"" << key << "\" must be a string, got " << it->dump());
  return it->get<std::string>();
}

std::vector<std::string> answer_list(const json& v, const char* key, const std::string& where) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const auto& a : v) {
      if (a.is_string()) {
        out.push_back(a.get<std::string>());
      } else if (a.is_number()) {
        out.push_back(a.dump());  // numeric answers ("1998") appear in some sets
      } else {
        STRATA_FAIL(where << ": \"" << key << "\" must hold strings, got " << a.dump());
      }
    }
  } else {
    STRATA_FAIL(where << ": \"" << key << "\" must be a string or a list of strings, got "
                      << v.dump());
  }
  STRATA_CHECK(!out.empty(), where << ": \"" << key << "\" is empty: a record needs a gold answer");
  return out;
}

QaFormat detect(const json& j) {
  if (j.contains("golden_answers")) return QaFormat::kFlashRag;
  if (j.contains("_id")) return QaFormat::kHotpotQa;
  if (j.contains("idx") && j.contains("answer")) return QaFormat::kR1Searcher;
  if (j.contains("answer") && j["answer"].is_array()) return QaFormat::kNqOpen;
  if (j.contains("answer") && j["answer"].is_string()) return QaFormat::kR1Searcher;
  return QaFormat::kAuto;
}

}  // namespace

QaRecord parse_qa_record(const json& j, QaFormat format, const std::string& where, size_t ordinal) {
  STRATA_CHECK(j.is_object(), where << ": expected a JSON object, got " << j.dump().substr(0, 80));
  if (format == QaFormat::kAuto) {
    format = detect(j);
    STRATA_CHECK(format != QaFormat::kAuto,
                 where << ": unknown record format: expected \"golden_answers\" (FlashRAG), "
                          "\"idx\"+\"answer\" (R1-Searcher), \"answer\" list (NQ-open) or \"_id\" "
                          "(HotpotQA)");
  }
  QaRecord r;
  r.question = required_string(j, "question", where);
  STRATA_CHECK(!r.question.empty(), where << ": \"question\" is empty");
  const char* id_key = nullptr;
  const char* answer_key = nullptr;
  switch (format) {
    case QaFormat::kFlashRag: id_key = "id"; answer_key = "golden_answers"; break;
    case QaFormat::kR1Searcher: id_key = "idx"; answer_key = "answer"; break;
    case QaFormat::kNqOpen: id_key = "id"; answer_key = "answer"; break;
    case QaFormat::kHotpotQa: id_key = "_id"; answer_key = "answer"; break;
    case QaFormat::kAuto: break;
  }
  auto id_it = j.find(id_key);
  if (id_it != j.end()) {
    r.id = id_string(*id_it, where, id_key);
  } else {
    // NQ-open files carry no id; FlashRAG files should, but tolerate its absence the same way.
    STRATA_CHECK(format == QaFormat::kNqOpen || format == QaFormat::kFlashRag,
                 where << ": missing \"" << id_key << "\"");
    r.id = std::to_string(ordinal);
  }
  auto ans_it = j.find(answer_key);
  STRATA_CHECK(ans_it != j.end(), where << ": missing \"" << answer_key << "\"");
  r.golden_answers = answer_list(*ans_it, answer_key, where);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "question" || it.key() == id_key || it.key() == answer_key) continue;
    r.metadata[it.key()] = it.value();
  }
  r.metadata["source_format"] = qa_format_name(format);
  return r;
}

std::vector<QaRecord> read_qa_file(const std::string& path, QaFormat format) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "cannot open QA file " << path);
  std::vector<QaRecord> out;
  std::unordered_set<std::string> ids;
  auto add = [&](QaRecord r, const std::string& where) {
    STRATA_CHECK(ids.insert(r.id).second, where << ": duplicate id \"" << r.id << "\"");
    out.push_back(std::move(r));
  };

  // Peek at the first non-space byte: '[' means one JSON document (HotpotQA's original files).
  char first = 0;
  while (in.get(first) && std::isspace(static_cast<unsigned char>(first))) {
  }
  in.clear();
  in.seekg(0);
  if (first == '[') {
    json doc;
    try {
      doc = json::parse(in);
    } catch (const json::parse_error& e) {
      STRATA_FAIL(path << ": invalid JSON at byte " << e.byte << ": " << e.what());
    } catch (const json::exception& e) {  // out_of_range: a number like 1e400
      STRATA_FAIL(path << ": invalid JSON: " << e.what());
    }
    for (size_t i = 0; i < doc.size(); ++i) {
      const std::string where = path + ": record " + std::to_string(i);
      add(parse_qa_record(doc[i], format == QaFormat::kAuto ? QaFormat::kAuto : format, where, i),
          where);
    }
    return out;
  }

  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    bool blank = true;
    for (char c : line) blank = blank && std::isspace(static_cast<unsigned char>(c));
    if (blank) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
      STRATA_FAIL(where << ": invalid JSON: " << e.what());
    }
    add(parse_qa_record(j, format, where, out.size()), where);
  }
  return out;
}

std::string qa_record_to_jsonl(const QaRecord& r) {
  json j = json::object();
  j["id"] = r.id;
  j["question"] = r.question;
  j["golden_answers"] = r.golden_answers;
  for (auto it = r.metadata.begin(); it != r.metadata.end(); ++it) {
    if (it.key() == "source_format") continue;
    j[it.key()] = it.value();
  }
  return j.dump();
}

void write_qa_jsonl(const std::string& path, const std::vector<QaRecord>& records) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  STRATA_CHECK(out.good(), "cannot write " << path);
  for (const auto& r : records) out << qa_record_to_jsonl(r) << '\n';
  STRATA_CHECK(out.good(), "error while writing " << path);
}

}  // namespace strata::data
