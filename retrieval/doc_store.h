// The document store of an index folder, in the BM25 index's layout (retrieval/bm25_format.h):
// docs.bin (header + per document: uint32 id length, id bytes, contents bytes) and docs.idx
// (header + uint64 offset per document into docs.bin, plus one past the end). The dense index
// keeps its passages this way; the BM25 builder writes the same files itself.
//
// Also the manifests' per-file checks (size and CRC-32) shared by the index readers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "retrieval/impl/mapped_file.h"
#include "retrieval/searcher.h"

namespace strata::retrieval {

// Writes docs.bin and docs.idx into `dir` as documents arrive.
class DocStoreWriter {
 public:
  explicit DocStoreWriter(const std::string& dir);
  ~DocStoreWriter();
  DocStoreWriter(const DocStoreWriter&) = delete;
  DocStoreWriter& operator=(const DocStoreWriter&) = delete;

  void add(std::string_view id, std::string_view contents);
  uint64_t size() const;
  // Closes both files and adds their {"bytes", "crc32"} to `files` (a manifest's "files").
  void finish(nlohmann::json& files);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Size and CRC-32 of `f` against a manifest's files.<name>; the CRC only when `check_crc`.
// Throws strata::Error naming the file and what to do.
void check_file(const MappedFile& f, const nlohmann::json& files, const std::string& name,
                bool check_crc, const std::string& manifest_path);

// Size and CRC-32 of a file on disk, as {"bytes", "crc32"} (streams it; for files written by
// other code, such as faiss's write_index).
nlohmann::json file_sum(const std::string& path);

// Read-only passages: a mapped docs.bin/docs.idx pair, or a JSONL corpus held in memory (to
// serve a FlashRAG / Search-R1 faiss file with its corpus as they are).
class DocStore {
 public:
  // Maps dir/docs.bin and dir/docs.idx and checks them against `files` (the manifest's); the
  // CRC of docs.bin only when `full`. `expect_docs` must match the count.
  static DocStore open(const std::string& dir, const nlohmann::json& files,
                       const std::string& manifest_path, uint64_t expect_docs, bool full);
  // Reads every passage of a corpus JSONL into memory.
  static DocStore from_jsonl(const std::string& path);

  DocumentView document(uint32_t doc) const;
  uint32_t size() const { return n_; }
  uint64_t bytes() const;

 private:
  uint32_t n_ = 0;
  std::shared_ptr<MappedFile> docs_, idx_;
  const uint64_t* offsets_ = nullptr;
  std::vector<std::string> ids_, contents_;  // the in-memory form
};

// Lines of a corpus JSONL that hold a passage (blank lines skipped), by a byte scan: the count
// the ntotal of a faiss file is checked against before anything is loaded.
uint64_t count_corpus_passages(const std::string& path);

}  // namespace strata::retrieval
