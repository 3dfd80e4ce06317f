// Over 450 lines on purpose: one pipeline (analysis workers, in-memory runs spilled to disk,
// the k-way merge into block-max postings, the dictionary, the document store and the manifest
// with its checksums) whose stages share the builder's private state; the file reads top to
// bottom in the order an index is built.
#include "retrieval/bm25_builder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include <zlib.h>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/corpus.h"
#include "retrieval/bm25_format.h"
#include "retrieval/impl/codec.h"
#include "retrieval/impl/file_writer.h"

namespace strata::retrieval {

namespace fs = std::filesystem;

namespace {

constexpr size_t kBatchDocs = 2048;

// Sequential reader of a sorted run, from memory or from a file.
class RunReader {
 public:
  explicit RunReader(std::string bytes) : buf_(std::move(bytes)) {}
  explicit RunReader(const std::string& path, bool) {
    f_ = std::fopen(path.c_str(), "rb");
    STRATA_CHECK(f_ != nullptr, "cannot reopen temporary run " << path);
  }
  ~RunReader() {
    if (f_ != nullptr) std::fclose(f_);
  }
  bool at_end() {
    if (pos_ < buf_.size()) return false;
    refill();
    return pos_ >= buf_.size();
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (pos_ >= buf_.size()) {
        refill();
        STRATA_ASSERT(pos_ < buf_.size(), "truncated temporary run");
      }
      const uint8_t byte = static_cast<uint8_t>(buf_[pos_++]);
      v |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return v;
    }
  }

 private:
  void refill() {
    if (f_ == nullptr) return;
    buf_.erase(0, pos_);
    pos_ = 0;
    const size_t keep = buf_.size();
    buf_.resize(keep + kWriteBuffer);
    const size_t got = std::fread(&buf_[keep], 1, kWriteBuffer, f_);
    buf_.resize(keep + got);
  }
  FILE* f_ = nullptr;
  std::string buf_;
  size_t pos_ = 0;
};

// Term string -> dense term id, open addressing over an arena of term bytes.
class TermTable {
 public:
  TermTable() { slots_.assign(1 << 16, 0); }
  uint32_t intern(std::string_view s) {
    const uint64_t h = std::hash<std::string_view>()(s);
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const uint32_t slot = slots_[i];
      if (slot == 0) {
        const uint32_t id = static_cast<uint32_t>(offsets_.size());
        offsets_.push_back(arena_.size());
        lengths_.push_back(static_cast<uint32_t>(s.size()));
        hashes_.push_back(h);
        arena_.append(s);
        slots_[i] = id + 1;
        if (offsets_.size() * 2 > slots_.size()) grow();
        return id;
      }
      const uint32_t id = slot - 1;
      if (hashes_[id] == h && term(id) == s) return id;
    }
  }
  std::string_view term(uint32_t id) const {
    return std::string_view(arena_.data() + offsets_[id], lengths_[id]);
  }
  uint32_t size() const { return static_cast<uint32_t>(offsets_.size()); }

 private:
  void grow() {
    std::vector<uint32_t> slots(slots_.size() * 2, 0);
    const size_t mask = slots.size() - 1;
    for (uint32_t id = 0; id < size(); ++id) {
      size_t i = hashes_[id] & mask;
      while (slots[i] != 0) i = (i + 1) & mask;
      slots[i] = id + 1;
    }
    slots_.swap(slots);
  }
  std::string arena_;
  std::vector<uint64_t> offsets_;
  std::vector<uint32_t> lengths_;
  std::vector<uint64_t> hashes_;
  std::vector<uint32_t> slots_;
};

// What one worker produced for its slice of a batch.
struct Analysed {
  struct Entry {
    uint32_t offset, length, tf;
  };
  std::string bytes;                // term bytes
  std::vector<Entry> entries;       // per document, its distinct terms
  std::vector<uint32_t> doc_end;    // entries end of each document
  std::vector<uint32_t> doc_len;    // terms (with repeats) of each document
  void clear() {
    bytes.clear();
    entries.clear();
    doc_end.clear();
    doc_len.clear();
  }
};

struct Batch {
  std::vector<std::string> texts;
  size_t size = 0;
  std::vector<Analysed> parts;  // one per worker, in document order
  std::exception_ptr error;
};

struct Posting {
  uint32_t term, doc, tf;
};

void write_header(FileWriter& w, format::FileKind kind) { w.put(format::make_header(kind)); }

}  // namespace

void validate(const BuildOptions& o) {
  STRATA_CHECK(std::isfinite(o.k1) && o.k1 >= 0, "k1 must be a finite number >= 0, got " << o.k1);
  STRATA_CHECK(std::isfinite(o.b) && o.b >= 0 && o.b <= 1, "b must be in [0, 1], got " << o.b);
  STRATA_CHECK(o.threads >= 0, "threads must be >= 0 (0 = all cores), got " << o.threads);
  STRATA_CHECK(o.run_postings >= 1024, "run_postings must be >= 1024, got " << o.run_postings);
  STRATA_CHECK(std::isfinite(o.impact_share) && o.impact_share >= 0 && o.impact_share <= 1,
               "impact_share must be in [0, 1], got " << o.impact_share);
  Analyzer check(o.analyzer);  // throws on an unknown stemmer
}

uint64_t directory_bytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

struct IndexBuilder::Impl {
  BuildOptions opt;
  std::string dir;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  // Document store, written as documents arrive.
  std::unique_ptr<FileWriter> docs;
  std::vector<uint64_t> doc_offsets;
  // A 64-bit hash of each passage id, to refuse duplicate ids at finish() (8 bytes a passage
  // rather than the ids themselves; equal hashes are confirmed against the stored ids).
  std::vector<uint64_t> id_hashes;
  // Size and CRC-32 of each finished file, for the manifest (checked when the index is opened).
  nlohmann::json files = nlohmann::json::object();

  void checksum(const FileWriter& w, const char* name) {
    char hex[9];
    std::snprintf(hex, sizeof(hex), "%08x", w.crc());
    files[name] = {{"bytes", w.size()}, {"crc32", hex}};
  }

  // The id of stored document `d`, read back from the closed docs.bin.
  std::string stored_id(uint64_t d) const {
    const std::string path = (fs::path(dir) / format::kDocs).string();
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(doc_offsets[d]));
    uint32_t len = 0;
    in.read(reinterpret_cast<char*>(&len), sizeof(len));
    std::string id(len, '\0');
    in.read(id.data(), len);
    STRATA_CHECK(in.good(), "cannot read back document " << d << " from " << path);
    return id;
  }

  // Throws naming the id when two passages share one.
  void check_unique_ids() const {
    std::vector<std::pair<uint64_t, uint32_t>> order(id_hashes.size());
    for (size_t d = 0; d < id_hashes.size(); ++d) order[d] = {id_hashes[d], static_cast<uint32_t>(d)};
    std::sort(order.begin(), order.end());
    for (size_t i = 1; i < order.size(); ++i) {
      if (order[i].first != order[i - 1].first) continue;
      // Equal hashes: compare every pair in the run of equal hashes.
      size_t j = i;
      while (j + 1 < order.size() && order[j + 1].first == order[i].first) ++j;
      for (size_t x = i - 1; x <= j; ++x) {
        const std::string a = stored_id(order[x].second);
        for (size_t y = x + 1; y <= j; ++y)
          STRATA_CHECK(a != stored_id(order[y].second),
                       "passage id \"" << a << "\" appears more than once (passages "
                                       << order[x].second + 1 << " and " << order[y].second + 1
                                       << " of the corpus): ids must be unique, since the index "
                                          "returns documents by id");
      }
      i = j;
    }
  }

  // Inversion state.
  TermTable terms;
  std::vector<uint32_t> doc_lens;
  std::vector<uint32_t> term_df;  // documents per term id
  uint64_t total_len = 0;
  uint64_t num_postings = 0;
  std::vector<Posting> postings;
  std::vector<std::string> run_paths;
  std::string last_run;  // the final run stays in memory

  // Analysis workers.
  int num_workers = 1;
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  uint64_t generation = 0;
  int pending = 0;
  bool stop = false;
  Batch* job = nullptr;
  Batch batches[2];
  int filling = 0;        // the batch add() fills
  bool in_flight = false; // the other batch is being analysed
  bool finished = false;
  std::unique_ptr<Progress> progress;

  Impl(const std::string& out_dir, const BuildOptions& o) : opt(o), dir(out_dir) {
    validate(opt);
    std::error_code ec;
    fs::create_directories(dir, ec);
    STRATA_CHECK(fs::is_directory(dir), "cannot create index directory " << dir);
    fs::remove(fs::path(dir) / format::kManifest, ec);  // an interrupted build stays invalid
    docs = std::make_unique<FileWriter>((fs::path(dir) / format::kDocs).string());
    write_header(*docs, format::FileKind::kDocs);
    num_workers = opt.threads > 0 ? opt.threads
                                  : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    for (auto& b : batches) {
      b.texts.resize(kBatchDocs);
      b.parts.resize(num_workers);
    }
    for (int t = 0; t < num_workers; ++t) workers.emplace_back([this, t] { worker(t); });
    if (opt.progress) progress = std::make_unique<Progress>("indexing", 0, "passages");
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv_work.notify_all();
    for (auto& t : workers) t.join();
    std::error_code ec;
    for (const auto& p : run_paths) fs::remove(p, ec);
  }

  void worker(int t) {
    Analyzer analyzer(opt.analyzer);
    std::vector<std::string> tokens;
    uint64_t seen = 0;
    for (;;) {
      Batch* batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv_work.wait(lock, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
        batch = job;
      }
      Analysed& out = batch->parts[t];
      out.clear();
      const size_t begin = batch->size * t / num_workers;
      const size_t end = batch->size * (t + 1) / num_workers;
      try {
        for (size_t d = begin; d < end; ++d) {
          analyzer.analyze(batch->texts[d], tokens);
          std::sort(tokens.begin(), tokens.end());
          for (size_t i = 0; i < tokens.size();) {
            size_t j = i + 1;
            while (j < tokens.size() && tokens[j] == tokens[i]) ++j;
            out.entries.push_back({static_cast<uint32_t>(out.bytes.size()),
                                   static_cast<uint32_t>(tokens[i].size()),
                                   static_cast<uint32_t>(j - i)});
            out.bytes += tokens[i];
            i = j;
          }
          out.doc_end.push_back(static_cast<uint32_t>(out.entries.size()));
          out.doc_len.push_back(static_cast<uint32_t>(tokens.size()));
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!batch->error) batch->error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        if (--pending == 0) cv_done.notify_all();
      }
    }
  }

  void submit(Batch& b) {
    {
      std::lock_guard<std::mutex> lock(mu);
      job = &b;
      b.error = nullptr;
      pending = num_workers;
      ++generation;
    }
    cv_work.notify_all();
  }

  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv_done.wait(lock, [&] { return pending == 0; });
  }

  void invert(Batch& b) {
    if (b.error) std::rethrow_exception(b.error);
    for (const Analysed& part : b.parts) {
      size_t e = 0;
      for (size_t d = 0; d < part.doc_end.size(); ++d) {
        const uint32_t doc = static_cast<uint32_t>(doc_lens.size());
        doc_lens.push_back(part.doc_len[d]);
        total_len += part.doc_len[d];
        for (; e < part.doc_end[d]; ++e) {
          const auto& en = part.entries[e];
          const uint32_t term = terms.intern(std::string_view(part.bytes.data() + en.offset, en.length));
          if (term >= term_df.size()) term_df.resize(term + 1, 0);
          ++term_df[term];
          postings.push_back({term, doc, en.tf});
        }
        if (postings.size() >= opt.run_postings) spill(false);
      }
    }
    if (progress) progress->add(b.size);
    b.size = 0;
  }

  // Sorts the buffered postings by term (stable: documents stay ascending) and encodes them as
  // a run: per term present, varint(term - previous term), varint(count), then count pairs of
  // varint(doc - previous doc of the run), varint(tf).
  void spill(bool final_run) {
    if (postings.empty()) return;
    num_postings += postings.size();
    const uint32_t nterms = terms.size();
    std::vector<uint32_t> start(nterms + 1, 0);
    for (const auto& p : postings) ++start[p.term + 1];
    for (uint32_t t = 0; t < nterms; ++t) start[t + 1] += start[t];
    std::vector<std::pair<uint32_t, uint32_t>> sorted(postings.size());
    {
      std::vector<uint32_t> fill(start.begin(), start.end() - 1);
      for (const auto& p : postings) sorted[fill[p.term]++] = {p.doc, p.tf};
    }
    postings.clear();
    std::string out;
    out.reserve(sorted.size() * 3);
    uint32_t prev_term = 0;
    for (uint32_t t = 0; t < nterms; ++t) {
      if (start[t + 1] == start[t]) continue;
      codec::put_varint(out, t - prev_term);
      prev_term = t;
      codec::put_varint(out, start[t + 1] - start[t]);
      uint32_t prev_doc = 0;
      for (uint32_t i = start[t]; i < start[t + 1]; ++i) {
        codec::put_varint(out, sorted[i].first - prev_doc);
        prev_doc = sorted[i].first;
        codec::put_varint(out, sorted[i].second);
      }
    }
    if (final_run) {
      last_run = std::move(out);
      return;
    }
    const std::string path =
        (fs::path(dir) / ("run-" + std::to_string(run_paths.size()) + ".tmp")).string();
    run_paths.push_back(path);
    FileWriter w(path);
    w.write(out);
    w.close();
    STRATA_LOG_DEBUG("spilled run {} ({} bytes)", path, out.size());
  }

  void add(std::string_view id, std::string_view contents) {
    STRATA_CHECK(!finished, "IndexBuilder::add after finish()");
    STRATA_CHECK(doc_offsets.size() < 0xFFFFFFF0u, "too many documents for one index");
    doc_offsets.push_back(docs->size());
    id_hashes.push_back(std::hash<std::string_view>{}(id));
    const uint32_t id_len = static_cast<uint32_t>(id.size());
    docs->put(id_len);
    docs->write(id);
    docs->write(contents);
    Batch& b = batches[filling];
    b.texts[b.size++].assign(contents.data(), contents.size());
    if (b.size == kBatchDocs) {
      if (in_flight) {
        wait();
        invert(batches[1 - filling]);
      }
      submit(b);
      in_flight = true;
      filling = 1 - filling;
    }
  }

  void drain() {
    if (in_flight) {
      wait();
      invert(batches[1 - filling]);
      in_flight = false;
    }
    Batch& b = batches[filling];
    if (b.size > 0) {
      submit(b);
      wait();
      invert(b);
    }
  }

  // Writes one term's postings (documents ascending) as blocks; returns its max tf_part.
  float write_term(FileWriter& w, const std::vector<uint32_t>& ds, const std::vector<uint32_t>& tfs,
                   const std::vector<float>& norms, std::string& data,
                   std::vector<format::BlockHeader>& headers) {
    const size_t df = ds.size();
    data.clear();
    headers.clear();
    float term_max = 0;
    uint32_t gaps[format::kBlockSize], tfm1[format::kBlockSize];
    int64_t prev = -1;
    for (size_t b0 = 0; b0 < df; b0 += format::kBlockSize) {
      const size_t n = std::min<size_t>(format::kBlockSize, df - b0);
      float block_max = 0;
      for (size_t i = 0; i < n; ++i) {
        const uint32_t d = ds[b0 + i];
        gaps[i] = static_cast<uint32_t>(static_cast<int64_t>(d) - prev - 1);
        prev = d;
        tfm1[i] = tfs[b0 + i] - 1;
        block_max = std::max(block_max, format::tf_part(tfs[b0 + i], norms[d]));
      }
      term_max = std::max(term_max, block_max);
      headers.push_back({ds[b0 + n - 1], static_cast<uint32_t>(data.size()), block_max});
      const uint32_t gap_bits = codec::bit_width(gaps, n), tf_bits = codec::bit_width(tfm1, n);
      data.push_back(static_cast<char>(gap_bits));
      data.push_back(static_cast<char>(tf_bits));
      codec::pack(data, gaps, n, gap_bits);
      codec::pack(data, tfm1, n, tf_bits);
    }
    w.write(headers.data(), headers.size() * sizeof(format::BlockHeader));
    w.write(data);
    return term_max;
  }

  BuildStats finish() {
    STRATA_CHECK(!finished, "IndexBuilder::finish called twice");
    drain();
    finished = true;
    if (progress) progress->finish();
    spill(true);
    const uint64_t n = doc_lens.size();
    STRATA_CHECK(n > 0, "the corpus has no passages: an index needs at least one");
    const double avgdl = n > 0 ? static_cast<double>(total_len) / static_cast<double>(n) : 0.0;

    // Document store: finish docs.bin, write docs.idx and doclens.bin.
    doc_offsets.push_back(docs->size());
    docs->close();
    checksum(*docs, format::kDocs);
    check_unique_ids();
    {
      FileWriter w((fs::path(dir) / format::kDocIndex).string());
      write_header(w, format::FileKind::kDocIndex);
      w.write(doc_offsets.data(), doc_offsets.size() * sizeof(uint64_t));
      w.close();
      checksum(w, format::kDocIndex);
    }
    {
      FileWriter w((fs::path(dir) / format::kDocLens).string());
      write_header(w, format::FileKind::kDocLens);
      w.write(doc_lens.data(), doc_lens.size() * sizeof(uint32_t));
      w.close();
      checksum(w, format::kDocLens);
    }

    // Merge the runs term by term into postings.bin.
    std::vector<float> norms(n);
    for (uint64_t d = 0; d < n; ++d) norms[d] = format::doc_norm(doc_lens[d], opt.k1, opt.b, avgdl);
    std::vector<std::unique_ptr<RunReader>> runs;
    for (const auto& p : run_paths) runs.push_back(std::make_unique<RunReader>(p, true));
    runs.push_back(std::make_unique<RunReader>(std::move(last_run)));
    const uint32_t nterms = terms.size();
    const uint32_t nruns = static_cast<uint32_t>(runs.size());
    std::vector<int64_t> next_term(runs.size(), -1);
    for (size_t r = 0; r < runs.size(); ++r)
      next_term[r] = runs[r]->at_end() ? -1 : static_cast<int64_t>(runs[r]->varint());
    std::vector<format::TermRecord> records(nterms);

    // Dictionary order (sorted by term bytes), needed now for impacts.bin's table.
    std::vector<uint32_t> order(nterms), slot(nterms);
    for (uint32_t t = 0; t < nterms; ++t) order[t] = t;
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return terms.term(a) < terms.term(b); });
    for (uint32_t i = 0; i < nterms; ++i) slot[order[i]] = i;

    // impacts.bin: the table first (the arrays' offsets follow from the terms' order of
    // merging), then each array as its term is merged.
    const uint64_t stride = format::impact_stride(n);
    uint64_t impact_min_df = ~uint64_t{0};
    if (opt.impact_share > 0)
      impact_min_df = std::max<uint64_t>(
          1, static_cast<uint64_t>(std::ceil(opt.impact_share * static_cast<double>(n))));
    std::vector<uint32_t> impact_terms;  // term ids, merge order
    for (uint32_t t = 0; t < nterms; ++t)
      if (t < term_df.size() && term_df[t] >= impact_min_df) impact_terms.push_back(t);
    FileWriter imp((fs::path(dir) / format::kImpacts).string());
    write_header(imp, format::FileKind::kImpacts);
    {
      const uint64_t table_end =
          sizeof(format::FileHeader) + 8 + impact_terms.size() * sizeof(format::ImpactEntry);
      const uint64_t first = (table_end + 63) / 64 * 64;
      std::vector<format::ImpactEntry> table;
      for (size_t i = 0; i < impact_terms.size(); ++i)
        table.push_back({slot[impact_terms[i]], 0, first + i * stride});
      std::sort(table.begin(), table.end(),
                [](const auto& a, const auto& b) { return a.term < b.term; });
      imp.put(static_cast<uint32_t>(table.size()));
      imp.put(uint32_t{0});
      for (const auto& e : table) imp.put(e);
      imp.pad_to(64);
    }
    std::vector<uint8_t> impact_array;
    size_t next_impact = 0;
    FileWriter post((fs::path(dir) / format::kPostings).string());
    write_header(post, format::FileKind::kPostings);
    std::vector<uint32_t> ds, tfs;
    std::string data;
    std::vector<format::BlockHeader> headers;
    std::unique_ptr<Progress> merging;
    if (opt.progress && runs.size() > 1) merging = std::make_unique<Progress>("merging", nterms, "terms");
    for (uint32_t t = 0; t < nterms; ++t) {
      ds.clear();
      tfs.clear();
      for (size_t r = 0; r < runs.size(); ++r) {
        if (next_term[r] != t) continue;
        RunReader& rr = *runs[r];
        const uint64_t count = rr.varint();
        uint32_t doc = 0;
        for (uint64_t i = 0; i < count; ++i) {
          doc += static_cast<uint32_t>(rr.varint());
          ds.push_back(doc);
          tfs.push_back(static_cast<uint32_t>(rr.varint()));
        }
        next_term[r] = rr.at_end() ? -1 : t + static_cast<int64_t>(rr.varint());
      }
      STRATA_ASSERT(!ds.empty(), "term " << t << " has no postings");
      post.pad_to(4);
      records[t].postings = post.size();
      records[t].df = static_cast<uint32_t>(ds.size());
      records[t].max_tf_part = write_term(post, ds, tfs, norms, data, headers);
      if (next_impact < impact_terms.size() && impact_terms[next_impact] == t) {
        impact_array.assign(stride, 0);
        for (size_t i = 0; i < ds.size(); ++i)
          impact_array[ds[i]] =
              format::impact_byte(format::tf_part(tfs[i], norms[ds[i]]), records[t].max_tf_part);
        imp.write(impact_array.data(), impact_array.size());
        ++next_impact;
      }
      if (merging && (t & 0xFFFF) == 0) merging->add(std::min<uint32_t>(0x10000, nterms - t));
    }
    if (merging) merging->finish();
    const char zeros[format::kPostingsPadding] = {};
    post.write(zeros, sizeof(zeros));
    post.close();
    checksum(post, format::kPostings);
    imp.close();
    checksum(imp, format::kImpacts);
    runs.clear();
    std::error_code ec;
    for (const auto& p : run_paths) fs::remove(p, ec);
    run_paths.clear();

    // Dictionary, sorted by term bytes.
    {
      FileWriter strs((fs::path(dir) / format::kTermStrings).string());
      FileWriter recs((fs::path(dir) / format::kTerms).string());
      write_header(strs, format::FileKind::kTermStrings);
      write_header(recs, format::FileKind::kTerms);
      for (uint32_t t : order) {
        const std::string_view s = terms.term(t);
        STRATA_CHECK(strs.size() + s.size() < 0xFFFFFFFFu, "term dictionary exceeds 4 GiB");
        records[t].str_offset = static_cast<uint32_t>(strs.size() - sizeof(format::FileHeader));
        records[t].str_length = static_cast<uint32_t>(s.size());
        strs.write(s);
        recs.put(records[t]);
      }
      strs.close();
      recs.close();
      checksum(strs, format::kTermStrings);
      checksum(recs, format::kTerms);
    }

    nlohmann::json m;
    m["format"] = format::kFormatName;
    m["version"] = format::kVersion;
    m["k1"] = opt.k1;
    m["b"] = opt.b;
    m["num_docs"] = n;
    m["num_terms"] = nterms;
    m["num_postings"] = num_postings;
    m["total_doc_len"] = total_len;
    m["avg_doc_len"] = avgdl;
    m["block_size"] = format::kBlockSize;
    m["analyzer"] = {{"stemmer", opt.analyzer.stemmer}, {"stop_words", opt.analyzer.stop_words}};
    m["files"] = files;
    {
      FileWriter w((fs::path(dir) / format::kManifest).string());
      w.write(m.dump(2) + "\n");
      w.close();
    }

    BuildStats s;
    s.num_docs = n;
    s.num_terms = nterms;
    s.num_postings = num_postings;
    s.index_bytes = directory_bytes(dir);
    s.doc_store_bytes = fs::file_size(fs::path(dir) / format::kDocs) +
                        fs::file_size(fs::path(dir) / format::kDocIndex);
    s.runs = nruns;
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return s;
  }
};

IndexBuilder::IndexBuilder(const std::string& out_dir, const BuildOptions& options)
    : impl_(std::make_unique<Impl>(out_dir, options)) {}
IndexBuilder::~IndexBuilder() = default;
void IndexBuilder::add(std::string_view id, std::string_view contents) { impl_->add(id, contents); }
uint64_t IndexBuilder::num_added() const { return impl_->doc_offsets.size(); }
BuildStats IndexBuilder::finish() { return impl_->finish(); }

BuildStats build_index(const std::string& corpus_path, const std::string& out_dir,
                       const BuildOptions& options) {
  validate(options);
  data::CorpusReader reader(corpus_path);
  IndexBuilder builder(out_dir, options);
  data::Passage p;
  while (reader.next(p)) builder.add(p.id, p.contents);
  STRATA_CHECK(builder.num_added() > 0, "corpus " << corpus_path << " has no passages");
  return builder.finish();
}

}  // namespace strata::retrieval
