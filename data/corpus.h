// Passage corpora, streamed one record at a time (corpora can be far larger than memory).
//
// Accepted JSONL records:
//   {"id": "0", "contents": "\"Title\"\ntext"}   Search-R1 / FlashRAG (title on the first line,
//                                                 usually in double quotes)
//   {"id": "0", "title": "Title", "text": "text"}  title and text apart
// `id` may be a string or an integer.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace strata::data {

struct Passage {
  std::string id;
  std::string title;     // without the surrounding quotes
  std::string text;      // the body, without the title line
  // Search-R1's `contents` form, "\"Title\"\ntext", which is what retrieval returns: the
  // record's `contents` byte for byte (some first lines lack the quotes), or made from its
  // `title` and `text`.
  std::string contents;
};

// Splits Search-R1 `contents` into title and body: the first line is the title, with one pair of
// surrounding double quotes removed; a single-line contents has an empty title.
void split_contents(const std::string& contents, std::string& title, std::string& text);

class CorpusReader {
 public:
  explicit CorpusReader(const std::string& path);  // throws if the file cannot be opened

  // Reads the next passage; false at end of file. A malformed line throws strata::Error with
  // the file and line. Blank lines are skipped.
  bool next(Passage& out);

  size_t line() const { return line_; }
  // Bytes consumed so far and the file size, for progress bars.
  uint64_t bytes_read() const { return bytes_; }
  uint64_t file_size() const { return size_; }

 private:
  std::string path_;
  std::ifstream in_;
  std::string buf_;
  size_t line_ = 0;
  uint64_t bytes_ = 0;
  uint64_t size_ = 0;
};

}  // namespace strata::data
