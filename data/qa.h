// Question-answering datasets: one record type for every supported format.
//
// Formats (detected per file, see read_qa_file):
//   flashrag   - FlashRAG / Search-R1 JSONL: {"id", "question", "golden_answers": [..], ...}
//   r1searcher - R1-Searcher JSONL: {"idx": 1, "question", "answer": "..."}
//   nq_open    - NQ-open JSONL: {"question", "answer": [..]} (id = line number when absent)
//   hotpotqa   - HotpotQA's original JSON: a list of {"_id", "question", "answer", "type",
//                "level", ...}
// Search-R1 ships parquet files; Debian 12 has no Arrow/Parquet C++ package, so those are
// converted once with the script in docs/DATA.md.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace strata::data {

struct QaRecord {
  std::string id;                           // unique within its file
  std::string question;                     // the question text
  std::vector<std::string> golden_answers;  // any of these counts as correct
  nlohmann::json metadata = nlohmann::json::object();  // every other field of the source record
};

enum class QaFormat { kAuto, kFlashRag, kR1Searcher, kNqOpen, kHotpotQa };

// "auto", "flashrag", "r1searcher", "nq_open", "hotpotqa".
QaFormat parse_qa_format(const std::string& name);
std::string qa_format_name(QaFormat f);

// Reads a whole QA file. With kAuto the format is chosen per record by its keys (JSONL) or by
// the leading '[' (HotpotQA JSON). A malformed line or record throws strata::Error naming the
// file and the 1-based line (or list index for JSON). Nothing is skipped silently; blank lines
// are allowed. Duplicate ids are an error.
std::vector<QaRecord> read_qa_file(const std::string& path, QaFormat format = QaFormat::kAuto);

// Parses one JSON object in the given format (kAuto: by its keys); `where` prefixes errors.
QaRecord parse_qa_record(const nlohmann::json& j, QaFormat format, const std::string& where,
                         size_t ordinal);

// Writes records as FlashRAG JSONL (metadata fields are merged back in at top level).
void write_qa_jsonl(const std::string& path, const std::vector<QaRecord>& records);
std::string qa_record_to_jsonl(const QaRecord& r);

}  // namespace strata::data
