#include "retrieval/doc_store.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "core/error.h"
#include "data/corpus.h"
#include "retrieval/bm25_format.h"
#include "retrieval/impl/file_writer.h"

namespace strata::retrieval {

namespace fs = std::filesystem;

struct DocStoreWriter::Impl {
  std::string dir;
  std::unique_ptr<FileWriter> docs;
  std::vector<uint64_t> offsets;
};

DocStoreWriter::DocStoreWriter(const std::string& dir) : impl_(std::make_unique<Impl>()) {
  impl_->dir = dir;
  impl_->docs = std::make_unique<FileWriter>((fs::path(dir) / format::kDocs).string());
  impl_->docs->put(format::make_header(format::FileKind::kDocs));
}

DocStoreWriter::~DocStoreWriter() = default;

void DocStoreWriter::add(std::string_view id, std::string_view contents) {
  STRATA_CHECK(id.size() < 0xFFFFFFFFu, "passage id too long");
  impl_->offsets.push_back(impl_->docs->size());
  impl_->docs->put(static_cast<uint32_t>(id.size()));
  impl_->docs->write(id);
  impl_->docs->write(contents);
}

uint64_t DocStoreWriter::size() const { return impl_->offsets.size(); }

void DocStoreWriter::finish(nlohmann::json& files) {
  auto& d = *impl_;
  d.offsets.push_back(d.docs->size());
  d.docs->close();
  files[format::kDocs] = {{"bytes", d.docs->size()}, {"crc32", crc_hex(d.docs->crc())}};
  FileWriter w((fs::path(d.dir) / format::kDocIndex).string());
  w.put(format::make_header(format::FileKind::kDocIndex));
  w.write(d.offsets.data(), d.offsets.size() * sizeof(uint64_t));
  w.close();
  files[format::kDocIndex] = {{"bytes", w.size()}, {"crc32", crc_hex(w.crc())}};
}

void check_file(const MappedFile& f, const nlohmann::json& files, const std::string& name,
                bool check_crc, const std::string& manifest_path) {
  auto it = files.find(name);
  STRATA_CHECK(it != files.end() && it->is_object(),
               "index manifest " << manifest_path << " lacks files." << name);
  uint64_t bytes = 0;
  std::string crc;
  try {
    bytes = it->at("bytes").get<uint64_t>();
    crc = it->at("crc32").get<std::string>();
  } catch (const nlohmann::json::exception&) {
    STRATA_FAIL("index manifest " << manifest_path << ": files." << name
                                  << " needs \"bytes\" (a number) and \"crc32\" (a string)");
  }
  STRATA_CHECK(f.size() == bytes, "index file " << f.path() << " has " << f.size()
                                                << " bytes where the manifest says " << bytes
                                                << ": truncated or changed after the build; "
                                                   "rebuild the index");
  if (!check_crc) return;
  uLong sum = crc32_z(0L, Z_NULL, 0);
  sum = crc32_z(sum, reinterpret_cast<const Bytef*>(f.data()), f.size());
  const std::string hex = crc_hex(static_cast<uint32_t>(sum));
  STRATA_CHECK(crc == hex, "index file " << f.path() << " fails its checksum (CRC-32 " << hex
                                         << ", the manifest says " << crc
                                         << "): the file is damaged; rebuild the index");
}

nlohmann::json file_sum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "cannot read " << path);
  std::vector<char> buf(1 << 20);
  uLong sum = crc32_z(0L, Z_NULL, 0);
  uint64_t bytes = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    sum = crc32_z(sum, reinterpret_cast<const Bytef*>(buf.data()), got);
    bytes += got;
  }
  return {{"bytes", bytes}, {"crc32", crc_hex(static_cast<uint32_t>(sum))}};
}

DocStore DocStore::open(const std::string& dir, const nlohmann::json& files,
                        const std::string& manifest_path, uint64_t expect_docs, bool full) {
  DocStore s;
  auto map = [&](const char* name, format::FileKind kind, bool crc) {
    auto f = std::make_shared<MappedFile>((fs::path(dir) / name).string());
    STRATA_CHECK(f->size() >= sizeof(format::FileHeader),
                 "index file " << f->path() << " is truncated (" << f->size() << " bytes)");
    format::FileHeader h;
    std::memcpy(&h, f->data(), sizeof(h));
    STRATA_CHECK(std::memcmp(h.magic, format::kMagic, sizeof(h.magic)) == 0 &&
                     h.version == format::kFileVersion && h.kind == static_cast<uint32_t>(kind),
                 "index file " << f->path() << " is not a strata document store file");
    check_file(*f, files, name, crc, manifest_path);
    return f;
  };
  s.idx_ = map(format::kDocIndex, format::FileKind::kDocIndex, true);
  s.docs_ = map(format::kDocs, format::FileKind::kDocs, full);
  const size_t hdr = sizeof(format::FileHeader);
  STRATA_CHECK(expect_docs < 0xFFFFFFFFu, "too many documents: " << expect_docs);
  STRATA_CHECK(s.idx_->size() == hdr + (expect_docs + 1) * sizeof(uint64_t),
               "index file " << s.idx_->path() << " does not hold " << expect_docs
                             << " documents");
  s.n_ = static_cast<uint32_t>(expect_docs);
  s.offsets_ = reinterpret_cast<const uint64_t*>(s.idx_->data() + hdr);
  STRATA_CHECK(s.offsets_[0] == hdr && s.offsets_[s.n_] == s.docs_->size(),
               "index file " << s.docs_->path() << " does not match " << s.idx_->path());
  for (uint32_t i = 0; i < s.n_; ++i)
    STRATA_CHECK(s.offsets_[i] + sizeof(uint32_t) <= s.offsets_[i + 1],
                 "index file " << s.idx_->path() << " is corrupt at document " << i);
  return s;
}

DocStore DocStore::from_jsonl(const std::string& path) {
  DocStore s;
  data::CorpusReader reader(path);
  data::Passage p;
  while (reader.next(p)) {
    s.ids_.push_back(std::move(p.id));
    s.contents_.push_back(std::move(p.contents));
  }
  STRATA_CHECK(!s.ids_.empty(), "corpus " << path << " has no passages");
  STRATA_CHECK(s.ids_.size() < 0xFFFFFFFFu, "corpus " << path << " has too many passages");
  s.n_ = static_cast<uint32_t>(s.ids_.size());
  return s;
}

DocumentView DocStore::document(uint32_t doc) const {
  STRATA_CHECK(doc < n_, "document " << doc << " out of range (" << n_ << " documents)");
  if (!ids_.empty()) return {ids_[doc], contents_[doc]};
  const uint8_t* base = docs_->data();
  const uint64_t begin = offsets_[doc], end = offsets_[doc + 1];
  uint32_t id_len = 0;
  std::memcpy(&id_len, base + begin, sizeof(id_len));
  STRATA_CHECK(begin + sizeof(id_len) + id_len <= end,
               "index file " << docs_->path() << " is corrupt at document " << doc);
  const char* p = reinterpret_cast<const char*>(base + begin + sizeof(id_len));
  return {std::string_view(p, id_len),
          std::string_view(p + id_len, end - begin - sizeof(id_len) - id_len)};
}

uint64_t DocStore::bytes() const {
  if (docs_) return docs_->size() + idx_->size();
  uint64_t b = 0;
  for (size_t i = 0; i < ids_.size(); ++i) b += ids_[i].size() + contents_[i].size();
  return b;
}

uint64_t count_corpus_passages(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "cannot open corpus " << path);
  std::vector<char> buf(1 << 20);
  uint64_t lines = 0;
  bool blank = true;  // the current line has only whitespace so far
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<size_t>(in.gcount());
    for (size_t i = 0; i < got; ++i) {
      const char c = buf[i];
      if (c == '\n') {
        if (!blank) ++lines;
        blank = true;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        blank = false;
      }
    }
  }
  if (!blank) ++lines;
  return lines;
}

}  // namespace strata::retrieval
