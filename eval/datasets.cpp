#include "eval/datasets.h"

#include <filesystem>

#include "core/error.h"

namespace strata::eval {

std::string dataset_name(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

std::vector<Dataset> load_datasets(const std::vector<std::string>& paths, int64_t limit,
                                   data::QaFormat format) {
  STRATA_CHECK(!paths.empty(), "no data file given (--data FILE)");
  STRATA_CHECK(limit >= 0, "--limit: expected >= 0, got " << limit);
  std::vector<Dataset> out;
  for (const auto& path : paths) {
    Dataset d;
    d.path = path;
    d.name = dataset_name(path);
    for (const auto& prev : out)
      STRATA_CHECK(prev.name != d.name, "data files " << prev.path << " and " << path
                                                      << " have the same name \"" << d.name
                                                      << "\" (the file stem names a dataset)");
    STRATA_CHECK(std::filesystem::is_regular_file(path), "data file " << path << ": no such file");
    d.records = data::read_qa_file(path, format);
    STRATA_CHECK(!d.records.empty(), path << ": no questions");
    if (limit > 0 && static_cast<int64_t>(d.records.size()) > limit) {
      for (size_t i = static_cast<size_t>(limit); i < d.records.size(); ++i)
        d.ids_beyond_limit.push_back(d.records[i].id);
      d.records.resize(static_cast<size_t>(limit));
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace strata::eval
