// The QA files an evaluation runs over, each named by its file stem
// (../data/hotpotqa_500.jsonl -> "hotpotqa_500").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/qa.h"

namespace strata::eval {

struct Dataset {
  std::string name;                           // the file stem; unique among the files of one run
  std::string path;                           // as given
  std::vector<data::QaRecord> records;        // in file order (the first `limit` when limited)
  std::vector<std::string> ids_beyond_limit;  // ids of the records --limit left out
  std::vector<std::string> ids_other_shards;  // ids of the records other shards take (--shard)
};

// "hotpotqa_500" for "dir/hotpotqa_500.jsonl".
std::string dataset_name(const std::string& path);

// Reads every file (data::read_qa_file; a bad file or line throws strata::Error naming it) and
// keeps the first `limit` records of each (0 = all). Two files with the same stem, or a file
// with no question, are errors.
std::vector<Dataset> load_datasets(const std::vector<std::string>& paths, int64_t limit = 0,
                                   data::QaFormat format = data::QaFormat::kAuto);

}  // namespace strata::eval
