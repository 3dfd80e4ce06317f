#include "data/corpus.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace strata::data {

using nlohmann::json;

void split_contents(const std::string& contents, std::string& title, std::string& text) {
  const auto nl = contents.find('\n');
  if (nl == std::string::npos) {
    title.clear();
    text = contents;
    return;
  }
  title = contents.substr(0, nl);
  if (title.size() >= 2 && title.front() == '"' && title.back() == '"')
    title = title.substr(1, title.size() - 2);
  text = contents.substr(nl + 1);
}

CorpusReader::CorpusReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  STRATA_CHECK(in_.good(), "cannot open corpus file " << path);
  in_.seekg(0, std::ios::end);
  size_ = static_cast<uint64_t>(in_.tellg());
  in_.seekg(0);
}

bool CorpusReader::next(Passage& out) {
  while (std::getline(in_, buf_)) {
    ++line_;
    bytes_ += buf_.size() + 1;
    if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
    if (buf_.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path_ + ":" + std::to_string(line_);
    json j;
    try {
      j = json::parse(buf_);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
      STRATA_FAIL(where << ": invalid JSON: " << e.what());
    }
    STRATA_CHECK(j.is_object(), where << ": expected a JSON object");
    auto id = j.find("id");
    STRATA_CHECK(id != j.end(), where << ": missing \"id\"");
    if (id->is_string()) {
      out.id = id->get<std::string>();
    } else if (id->is_number_integer()) {
      out.id = std::to_string(id->get<int64_t>());
    } else {
      STRATA_FAIL(where << ": \"id\" must be a string or an integer, got " << id->dump());
    }
    STRATA_CHECK(!out.id.empty(), where << ": \"id\" is empty");
    if (auto c = j.find("contents"); c != j.end()) {
      STRATA_CHECK(c->is_string(), where << ": \"contents\" must be a string");
      out.contents = c->get<std::string>();
      split_contents(out.contents, out.title, out.text);
    } else {
      auto t = j.find("text");
      STRATA_CHECK(t != j.end(),
                   where << ": a passage needs \"contents\" or \"title\" and \"text\"");
      STRATA_CHECK(t->is_string(), where << ": \"text\" must be a string");
      out.text = t->get<std::string>();
      out.title.clear();
      if (auto ti = j.find("title"); ti != j.end()) {
        STRATA_CHECK(ti->is_string(), where << ": \"title\" must be a string");
        out.title = ti->get<std::string>();
      }
      out.contents = "\"" + out.title + "\"\n" + out.text;
    }
    return true;
  }
  return false;
}

}  // namespace strata::data
