#include "retrieval/bm25_index.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "retrieval/bm25_format.h"
#include "retrieval/bm25_search.h"
#include "retrieval/doc_store.h"
#include "retrieval/impl/mapped_file.h"

namespace strata::retrieval {

namespace fs = std::filesystem;

namespace {

// Per-thread analyzer and search buffers (an Analyzer is not thread-safe).
struct ThreadState {
  std::unique_ptr<Analyzer> analyzer;
  std::vector<std::string> tokens;
  SearchScratch scratch;

  Analyzer& analyzer_for(const AnalyzerOptions& o) {
    if (!analyzer || analyzer->options().stemmer != o.stemmer ||
        analyzer->options().stop_words != o.stop_words)
      analyzer = std::make_unique<Analyzer>(o);
    return *analyzer;
  }
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

template <class T>
T manifest_field(const nlohmann::json& m, const char* key, const std::string& path) {
  auto it = m.find(key);
  STRATA_CHECK(it != m.end(), "index manifest " << path << " lacks \"" << key << "\"");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    STRATA_FAIL("index manifest " << path << ": \"" << key << "\" has the wrong type");
  }
}

}  // namespace

struct Bm25Index::Impl {
  std::string dir;
  double k1 = 0, b = 0, avg_doc_len = 0;
  uint64_t n = 0, nterms = 0, npostings = 0;
  AnalyzerOptions analyzer;
  MappedFile terms, strings, postings, doclens, docidx, docs, impacts;
  uint32_t format_version = 0;
  // The impact arrays (impacts.bin), by term slot, sorted.
  std::vector<std::pair<uint32_t, const uint8_t*>> impact_arrays;
  const format::TermRecord* records = nullptr;
  const char* term_bytes = nullptr;
  size_t term_bytes_size = 0;
  const uint32_t* lens = nullptr;
  const uint64_t* offsets = nullptr;
  std::vector<float> norms;
  std::vector<uint8_t> length_class;  // min(length, 255), for the bound scan
  float class_norms[256] = {};
  PostingsView view;

  std::string file(const char* name) const { return (fs::path(dir) / name).string(); }

  // Maps `name` and checks its header; returns the payload size.
  size_t map(MappedFile& f, const char* name, format::FileKind kind) {
    f = MappedFile(file(name));
    const std::string& path = f.path();
    STRATA_CHECK(f.size() >= sizeof(format::FileHeader),
                 "index file " << path << " is truncated (" << f.size() << " bytes)");
    format::FileHeader h;
    std::memcpy(&h, f.data(), sizeof(h));
    STRATA_CHECK(std::memcmp(h.magic, format::kMagic, sizeof(h.magic)) == 0,
                 "index file " << path << " is not a strata BM25 file (bad magic)");
    STRATA_CHECK(h.version == format::kFileVersion,
                 "index file " << path << " has file version " << h.version
                               << "; this build reads version " << format::kFileVersion
                               << ": rebuild the index with build_index");
    STRATA_CHECK(h.kind == static_cast<uint32_t>(kind),
                 "index file " << path << " holds the wrong kind of data (" << h.kind << ")");
    check_sum(f, name,
              kind == format::FileKind::kPostings || kind == format::FileKind::kDocs ||
                  kind == format::FileKind::kImpacts);
    return f.size() - sizeof(format::FileHeader);
  }

  // Compares a mapped file with the size and CRC-32 the builder recorded in the manifest, before
  // anything inside it is trusted: the size always, the checksum of the small files (dictionary,
  // document lengths and offsets) always and of the large ones (postings, impacts, documents) with
  // Verify::kFull. An index built before checksums existed opens with a warning (open()).
  const nlohmann::json* sums = nullptr;  // the manifest's "files", when present
  std::string manifest_path;
  Bm25Index::Verify verify = Bm25Index::Verify::kFast;

  void check_sum(const MappedFile& f, const char* name, bool large) const {
    if (sums == nullptr) return;
    check_file(f, *sums, name, !large || verify == Bm25Index::Verify::kFull, manifest_path);
  }

  void open(const std::string& d, Bm25Index::Verify how) {
    dir = d;
    verify = how;
    STRATA_CHECK(fs::is_directory(dir), "index directory " << dir << " does not exist");
    const std::string mpath = file(format::kManifest);
    std::ifstream in(mpath);
    STRATA_CHECK(in.good(), "index manifest " << mpath
                                              << " is missing (not an index, or its build "
                                                 "did not finish)");
    nlohmann::json m;
    try {
      in >> m;
    } catch (const nlohmann::json::exception& e) {
      STRATA_FAIL("index manifest " << mpath << " is not valid JSON: " << e.what());
    }
    const auto fmt = m.is_object() ? m.find("format") : m.end();
    STRATA_CHECK(m.is_object() && fmt != m.end() && fmt->is_string() &&
                     fmt->get<std::string>() == format::kFormatName,
                 "index manifest " << mpath << " is not a " << format::kFormatName << " manifest");
    const auto version = manifest_field<uint32_t>(m, "version", mpath);
    STRATA_CHECK(version >= format::kMinVersion && version <= format::kVersion,
                 "index " << dir << " has format version " << version << " (" << mpath
                          << "); this build reads versions " << format::kMinVersion << " to "
                          << format::kVersion << ": rebuild the index with build_index");
    format_version = version;
    k1 = manifest_field<double>(m, "k1", mpath);
    b = manifest_field<double>(m, "b", mpath);
    n = manifest_field<uint64_t>(m, "num_docs", mpath);
    nterms = manifest_field<uint64_t>(m, "num_terms", mpath);
    npostings = manifest_field<uint64_t>(m, "num_postings", mpath);
    avg_doc_len = manifest_field<double>(m, "avg_doc_len", mpath);
    STRATA_CHECK(manifest_field<uint32_t>(m, "block_size", mpath) == format::kBlockSize,
                 "index manifest " << mpath << ": unsupported block_size");
    auto an = m.find("analyzer");
    STRATA_CHECK(an != m.end() && an->is_object(),
                 "index manifest " << mpath << " lacks \"analyzer\"");
    analyzer.stemmer = manifest_field<std::string>(*an, "stemmer", mpath);
    analyzer.stop_words = manifest_field<bool>(*an, "stop_words", mpath);
    try {
      Analyzer check(analyzer);  // an unknown stemmer fails here, not at every query
    } catch (const Error& e) {
      STRATA_FAIL("index manifest " << mpath << ": " << e.what());
    }
    STRATA_CHECK(n < 0xFFFFFFFFu, "index manifest " << mpath << ": num_docs too large");
    manifest_path = mpath;
    if (auto files = m.find("files"); files != m.end()) {
      STRATA_CHECK(files->is_object(), "index manifest " << mpath << ": \"files\" must be an object");
      sums = &*files;
    } else {
      STRATA_LOG_WARN("index {} has no checksums (built by an older strata), so damage cannot be "
                      "detected; rebuild it with build_index to have it checked at open",
                      dir);
    }

    const size_t hdr = sizeof(format::FileHeader);
    size_t bytes = map(terms, format::kTerms, format::FileKind::kTerms);
    STRATA_CHECK(bytes == nterms * sizeof(format::TermRecord),
                 "index file " << terms.path() << " has " << bytes << " bytes of records, expected "
                               << nterms << " terms");
    records = reinterpret_cast<const format::TermRecord*>(terms.data() + hdr);
    term_bytes_size = map(strings, format::kTermStrings, format::FileKind::kTermStrings);
    term_bytes = reinterpret_cast<const char*>(strings.data() + hdr);
    bytes = map(doclens, format::kDocLens, format::FileKind::kDocLens);
    STRATA_CHECK(bytes == n * sizeof(uint32_t),
                 "index file " << doclens.path() << " is truncated or corrupt (" << bytes
                               << " bytes for " << n << " documents)");
    lens = reinterpret_cast<const uint32_t*>(doclens.data() + hdr);
    bytes = map(docidx, format::kDocIndex, format::FileKind::kDocIndex);
    STRATA_CHECK(bytes == (n + 1) * sizeof(uint64_t),
                 "index file " << docidx.path() << " is truncated or corrupt (" << bytes
                               << " bytes for " << n << " documents)");
    offsets = reinterpret_cast<const uint64_t*>(docidx.data() + hdr);
    map(docs, format::kDocs, format::FileKind::kDocs);
    STRATA_CHECK(offsets[0] == hdr && offsets[n] == docs.size(),
                 "index file " << docs.path() << " does not match " << docidx.path()
                               << " (truncated or corrupt)");
    for (uint64_t i = 0; i < n; ++i)
      STRATA_CHECK(offsets[i] + sizeof(uint32_t) <= offsets[i + 1],
                   "index file " << docidx.path() << " is corrupt at document " << i);
    const size_t pbytes = map(postings, format::kPostings, format::FileKind::kPostings);
    STRATA_CHECK(pbytes >= format::kPostingsPadding,
                 "index file " << postings.path() << " is truncated");
    for (uint64_t t = 0; t < nterms; ++t) {
      const format::TermRecord& r = records[t];
      STRATA_CHECK(r.df > 0 && r.df <= n && r.postings >= hdr &&
                       r.postings + uint64_t{format::num_blocks(r.df)} * sizeof(format::BlockHeader) <=
                           postings.size() - format::kPostingsPadding &&
                       uint64_t{r.str_offset} + r.str_length <= term_bytes_size,
                   "index file " << terms.path() << " is corrupt at term " << t);
    }

    if (format_version >= 2) map_impacts();

    norms.resize(n);
    for (uint64_t d = 0; d < n; ++d) norms[d] = format::doc_norm(lens[d], k1, b, avg_doc_len);
    view.data = postings.data();
    view.size = postings.size();
    view.norms = norms.data();
    view.num_docs = static_cast<uint32_t>(n);
    view.impact_stride = 0;
    if (!impact_arrays.empty()) {
      view.impact_stride = static_cast<uint32_t>(format::impact_stride(n));
      length_class.resize(n);
      for (uint64_t d = 0; d < n; ++d)
        length_class[d] = static_cast<uint8_t>(std::min<uint32_t>(lens[d], 255));
      for (uint32_t c = 0; c < 256; ++c) class_norms[c] = format::doc_norm(c, k1, b, avg_doc_len);
      view.length_class = length_class.data();
      view.class_norms = class_norms;
    }
    sums = nullptr;  // pointed into the manifest, a local of this function
  }

  // impacts.bin (a version-2 index): the table of arrays, each checked to lie inside the file.
  void map_impacts() {
    const size_t hdr = sizeof(format::FileHeader);
    const size_t bytes = map(impacts, format::kImpacts, format::FileKind::kImpacts);
    const std::string& path = impacts.path();
    STRATA_CHECK(bytes >= 8, "index file " << path << " is truncated");
    uint32_t count = 0;
    std::memcpy(&count, impacts.data() + hdr, sizeof(count));
    const uint64_t table_end = hdr + 8 + uint64_t{count} * sizeof(format::ImpactEntry);
    const uint64_t stride = format::impact_stride(n);
    STRATA_CHECK(count <= nterms && table_end <= impacts.size(),
                 "index file " << path << " is corrupt (" << count << " arrays)");
    impact_arrays.clear();
    impact_arrays.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
      format::ImpactEntry e;
      std::memcpy(&e, impacts.data() + hdr + 8 + uint64_t{i} * sizeof(e), sizeof(e));
      STRATA_CHECK(e.term < nterms && (i == 0 || e.term > impact_arrays.back().first) &&
                       e.offset % 64 == 0 && e.offset >= table_end && e.offset <= impacts.size() &&
                       stride <= impacts.size() - e.offset,
                   "index file " << path << " is corrupt at array " << i);
      impact_arrays.push_back({e.term, impacts.data() + e.offset});
    }
  }

  const uint8_t* impacts_of(const format::TermRecord* r) const {
    const uint32_t slot = static_cast<uint32_t>(r - records);
    auto it = std::lower_bound(impact_arrays.begin(), impact_arrays.end(), slot,
                               [](const auto& e, uint32_t v) { return e.first < v; });
    return it != impact_arrays.end() && it->first == slot ? it->second : nullptr;
  }

  std::string_view term(uint64_t t) const {
    return std::string_view(term_bytes + records[t].str_offset, records[t].str_length);
  }

  const format::TermRecord* find(std::string_view s) const {
    uint64_t lo = 0, hi = nterms;
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo) / 2;
      if (term(mid) < s) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo < nterms && term(lo) == s ? &records[lo] : nullptr;
  }

  // Distinct query terms in order of first appearance, weight = qtf * idf; unknown terms go.
  std::vector<QueryTerm> prepare(std::string_view query, ThreadState& ts) const {
    ts.analyzer_for(analyzer).analyze(query, ts.tokens);
    std::vector<QueryTerm> out;
    std::vector<uint32_t> counts;
    for (const std::string& tok : ts.tokens) {
      const format::TermRecord* r = find(tok);
      if (r == nullptr) continue;
      size_t j = 0;
      while (j < out.size() && out[j].record != r) ++j;
      if (j == out.size()) {
        out.push_back({r, 0.0f, impact_arrays.empty() ? nullptr : impacts_of(r)});
        counts.push_back(0);
      }
      ++counts[j];
    }
    for (size_t j = 0; j < out.size(); ++j)
      out[j].weight = static_cast<float>(counts[j]) * format::idf(n, out[j].record->df);
    return out;
  }
};

Bm25Index::Bm25Index(const std::string& dir, Verify verify) : impl_(std::make_unique<Impl>()) {
  impl_->open(dir, verify);
}

Bm25Index::~Bm25Index() = default;

std::vector<Hit> Bm25Index::search(std::string_view query, int k) const {
  STRATA_CHECK(k >= 0, "top-k must be >= 0, got " << k);
  ThreadState& ts = thread_state();
  const std::vector<QueryTerm> terms = impl_->prepare(query, ts);
  return top_k(impl_->view, terms, k, ts.scratch);
}

std::vector<Hit> Bm25Index::search_exhaustive(std::string_view query, int k) const {
  STRATA_CHECK(k >= 0, "top-k must be >= 0, got " << k);
  ThreadState& ts = thread_state();
  const std::vector<QueryTerm> terms = impl_->prepare(query, ts);
  return top_k_exhaustive(impl_->view, terms, k, ts.scratch);
}

DocumentView Bm25Index::document(uint32_t doc) const {
  STRATA_CHECK(doc < impl_->n, "document " << doc << " out of range (index has " << impl_->n
                                            << " documents)");
  const uint8_t* base = impl_->docs.data();
  const uint64_t begin = impl_->offsets[doc], end = impl_->offsets[doc + 1];
  uint32_t id_len;
  std::memcpy(&id_len, base + begin, sizeof(id_len));
  STRATA_CHECK(id_len <= end - begin - sizeof(id_len),
               "index file " << impl_->docs.path() << " is corrupt at document " << doc);
  const char* p = reinterpret_cast<const char*>(base + begin + sizeof(id_len));
  DocumentView v;
  v.id = std::string_view(p, id_len);
  v.contents = std::string_view(p + id_len, end - begin - sizeof(id_len) - id_len);
  return v;
}

uint32_t Bm25Index::num_docs() const { return static_cast<uint32_t>(impl_->n); }

std::vector<std::string> Bm25Index::analyze(std::string_view text) const {
  return thread_state().analyzer_for(impl_->analyzer).analyze(text);
}

uint32_t Bm25Index::doc_freq(std::string_view term) const {
  const format::TermRecord* r = impl_->find(term);
  return r == nullptr ? 0 : r->df;
}

uint32_t Bm25Index::doc_length(uint32_t doc) const {
  STRATA_CHECK(doc < impl_->n, "document " << doc << " out of range");
  return impl_->lens[doc];
}

const std::string& Bm25Index::dir() const { return impl_->dir; }
double Bm25Index::k1() const { return impl_->k1; }
double Bm25Index::b() const { return impl_->b; }
double Bm25Index::avg_doc_len() const { return impl_->avg_doc_len; }
uint64_t Bm25Index::num_terms() const { return impl_->nterms; }
uint64_t Bm25Index::num_postings() const { return impl_->npostings; }
const AnalyzerOptions& Bm25Index::analyzer_options() const { return impl_->analyzer; }
uint32_t Bm25Index::num_impact_arrays() const {
  return static_cast<uint32_t>(impl_->impact_arrays.size());
}
void Bm25Index::set_bound_scan(BoundScan mode) { impl_->view.bound_scan = mode; }

uint64_t Bm25Index::size_bytes() const {
  const Impl& i = *impl_;
  uint64_t total = i.terms.size() + i.strings.size() + i.postings.size() + i.doclens.size() +
                   i.docidx.size() + i.docs.size() + i.impacts.size();
  std::error_code ec;
  const auto m = fs::file_size(i.file(format::kManifest), ec);
  if (!ec) total += m;
  return total;
}

}  // namespace strata::retrieval
