#include "retrieval/dense/dense_index.h"

#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "retrieval/doc_store.h"
#include "retrieval/impl/mapped_file.h"

// OpenBLAS's own thread count (faiss's sgemm goes to Debian's libblas.so.3, which is OpenBLAS
// once libopenblas0-pthread is installed); weak, so that another BLAS still links and runs.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace strata::retrieval::dense {

namespace fs = std::filesystem;

namespace {

// Each search runs on its caller's thread: faiss's OpenMP team and the BLAS get one thread, and
// every batch goes through the BLAS product (sgemm), not faiss's per-pair loop. Debian builds
// faiss for baseline x86-64, so its loop is not vectorised, and a parallel region inside each of
// the daemon's many search threads oversubscribes the cores (its threads spin at the barrier).
// Measured on 6,136 x 384 flat rows, 2 loaded cores, 13 queries per call: 2.65 ms per query
// (faiss's defaults: loop below 20 queries, 2 OpenMP threads) -> 0.17 ms (this), 15x.
//
// Sets the calling thread's OpenMP team size to one for its lifetime and restores it after (the
// ICV is per thread; LibTorch's intra-op threads may use the same OpenMP runtime, and a search
// thread that also runs the encoder must get its team back).
class SingleThreadedBlasSearch {
 public:
  SingleThreadedBlasSearch() : saved_(omp_get_max_threads()) {
    static std::once_flag once;
    std::call_once(once, [] {
      faiss::distance_compute_blas_threshold = 1;
      if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
    });
    omp_set_num_threads(1);
  }
  ~SingleThreadedBlasSearch() { omp_set_num_threads(saved_); }
  SingleThreadedBlasSearch(const SingleThreadedBlasSearch&) = delete;
  SingleThreadedBlasSearch& operator=(const SingleThreadedBlasSearch&) = delete;

 private:
  int saved_;
};

}  // namespace

const char* metric_name(Metric m) { return m == Metric::kL2 ? "l2" : "inner_product"; }

Metric parse_metric(const std::string& name) {
  if (name == "inner_product" || name == "ip") return Metric::kInnerProduct;
  if (name == "l2") return Metric::kL2;
  STRATA_FAIL("unknown metric '" << name << "' (use inner_product or l2)");
}

FaissFlatHeader read_faiss_flat_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "cannot open faiss index " << path);
  FaissFlatHeader h;
  in.read(h.fourcc, 4);
  STRATA_CHECK(in.gcount() == 4, "faiss index " << path << " is empty or truncated");
  const std::string cc(h.fourcc, 4);
  if (cc != "IxFI" && cc != "IxF2" && cc != "IxFl") return h;
  int32_t d = 0;
  int64_t ntotal = 0, dummy = 0;
  uint8_t trained = 0;
  int32_t metric = 0;
  in.read(reinterpret_cast<char*>(&d), 4);
  in.read(reinterpret_cast<char*>(&ntotal), 8);
  in.read(reinterpret_cast<char*>(&dummy), 8);
  in.read(reinterpret_cast<char*>(&dummy), 8);
  in.read(reinterpret_cast<char*>(&trained), 1);
  in.read(reinterpret_cast<char*>(&metric), 4);
  uint64_t offset = 4 + 4 + 8 + 8 + 8 + 1 + 4;
  if (metric > 1) {  // metrics with an argument store it next
    float arg = 0;
    in.read(reinterpret_cast<char*>(&arg), 4);
    offset += 4;
  }
  uint64_t floats = 0;
  in.read(reinterpret_cast<char*>(&floats), 8);
  offset += 8;
  STRATA_CHECK(in.good(), "faiss index " << path << " is truncated in its header");
  STRATA_CHECK(metric == 0 || metric == 1,
               "faiss index " << path << " uses metric " << metric
                              << "; strata serves inner product (0) and L2 (1)");
  STRATA_CHECK(d >= 1 && ntotal >= 0 && floats == static_cast<uint64_t>(ntotal) * d,
               "faiss index " << path << " has an inconsistent header (d=" << d
                              << ", ntotal=" << ntotal << ", " << floats << " floats)");
  const uint64_t size = fs::file_size(path);
  STRATA_CHECK(size >= offset + floats * 4, "faiss index " << path << " is truncated: "
                                                           << size << " bytes, its header needs "
                                                           << offset + floats * 4);
  h.flat = true;
  h.dim = d;
  h.ntotal = ntotal;
  h.metric = metric == 1 ? Metric::kL2 : Metric::kInnerProduct;
  h.data_offset = offset;
  return h;
}

struct DenseIndex::Impl {
  std::string source;  // folder or faiss file
  std::string encoder, factory = "Flat";
  Metric metric = Metric::kInnerProduct;
  int dim = 0;
  uint32_t n = 0;
  DocStore docs;
  // storage "vectors": mapped rows
  MappedFile vectors;
  const float* rows = nullptr;
  // storage "faiss"
  std::unique_ptr<faiss::Index> index;

  std::unique_ptr<faiss::Index> read_faiss(const std::string& path) {
    try {
      // IO_FLAG_MMAP maps the inverted lists of IVF indexes; other types ignore it.
      return std::unique_ptr<faiss::Index>(
          faiss::read_index(path.c_str(), faiss::IO_FLAG_MMAP | faiss::IO_FLAG_READ_ONLY));
    } catch (const faiss::FaissException& e) {
      STRATA_FAIL("cannot read faiss index " << path << ": " << e.what());
    }
  }
};

DenseIndex::DenseIndex() : impl_(std::make_unique<Impl>()) {}
DenseIndex::~DenseIndex() = default;

namespace {

template <class T>
T field(const nlohmann::json& m, const char* key, const std::string& path) {
  auto it = m.find(key);
  STRATA_CHECK(it != m.end(), "index manifest " << path << " lacks \"" << key << "\"");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    STRATA_FAIL("index manifest " << path << ": \"" << key << "\" has the wrong type");
  }
}

}  // namespace

std::unique_ptr<DenseIndex> DenseIndex::open(const std::string& dir, Verify verify) {
  std::unique_ptr<DenseIndex> out(new DenseIndex());
  auto& s = *out->impl_;
  s.source = dir;
  STRATA_CHECK(fs::is_directory(dir), "index directory " << dir << " does not exist");
  const std::string mpath = (fs::path(dir) / kManifest).string();
  std::ifstream in(mpath);
  STRATA_CHECK(in.good(), "index manifest " << mpath
                                            << " is missing (not an index, or its build did not "
                                               "finish: run build_index --dense again to resume)");
  nlohmann::json m;
  try {
    in >> m;
  } catch (const nlohmann::json::exception& e) {
    STRATA_FAIL("index manifest " << mpath << " is not valid JSON: " << e.what());
  }
  const auto format = field<std::string>(m, "format", mpath);
  STRATA_CHECK(format == kFormatName,
               "index " << dir << " is a '" << format << "' index, not a dense one ("
                        << kFormatName << ")");
  const auto version = field<uint32_t>(m, "version", mpath);
  STRATA_CHECK(version == kVersion, "index " << dir << " has dense format version " << version
                                             << "; this build reads " << kVersion);
  const uint64_t n = field<uint64_t>(m, "num_docs", mpath);
  STRATA_CHECK(n >= 1 && n < 0xFFFFFFFFu, "index manifest " << mpath << ": bad num_docs " << n);
  s.n = static_cast<uint32_t>(n);
  s.dim = field<int>(m, "dim", mpath);
  STRATA_CHECK(s.dim >= 1, "index manifest " << mpath << ": bad dim " << s.dim);
  s.metric = parse_metric(field<std::string>(m, "metric", mpath));
  s.factory = field<std::string>(m, "factory", mpath);
  s.encoder = field<std::string>(m, "encoder", mpath);
  const auto storage = field<std::string>(m, "storage", mpath);
  const auto files = m.find("files");
  STRATA_CHECK(files != m.end() && files->is_object(),
               "index manifest " << mpath << " lacks \"files\"");
  const bool full = verify == Verify::kFull;
  if (storage == "vectors") {
    s.vectors = MappedFile((fs::path(dir) / kVectors).string());
    check_file(s.vectors, *files, kVectors, full, mpath);
    STRATA_CHECK(s.vectors.size() == sizeof(VectorsHeader) + n * s.dim * sizeof(float),
                 "index file " << s.vectors.path() << " does not hold " << n << " vectors of "
                               << s.dim << " floats");
    VectorsHeader h;
    std::memcpy(&h, s.vectors.data(), sizeof(h));
    STRATA_CHECK(std::memcmp(h.magic, kVectorsMagic, sizeof(h.magic)) == 0 &&
                     h.version == kVersion && h.dim == static_cast<uint32_t>(s.dim) &&
                     h.count == n && h.metric == static_cast<uint32_t>(s.metric),
                 "index file " << s.vectors.path() << " disagrees with " << mpath);
    s.rows = reinterpret_cast<const float*>(s.vectors.data() + sizeof(VectorsHeader));
  } else if (storage == "faiss") {
    const std::string path = (fs::path(dir) / kFaiss).string();
    {
      MappedFile f(path);
      check_file(f, *files, kFaiss, full, mpath);
    }
    s.index = s.read_faiss(path);
    STRATA_CHECK(s.index->ntotal == static_cast<faiss::Index::idx_t>(n) && s.index->d == s.dim,
                 "faiss index " << path << " holds " << s.index->ntotal << " vectors of "
                                << s.index->d << " floats; the manifest says " << n << " of "
                                << s.dim);
  } else {
    STRATA_FAIL("index manifest " << mpath << ": unknown storage '" << storage
                                  << "' (vectors or faiss)");
  }
  s.docs = DocStore::open(dir, *files, mpath, n, full);
  return out;
}

std::unique_ptr<DenseIndex> DenseIndex::open_faiss(const std::string& faiss_file,
                                                   const std::string& corpus_jsonl) {
  std::unique_ptr<DenseIndex> out(new DenseIndex());
  auto& s = *out->impl_;
  s.source = faiss_file;
  STRATA_CHECK(fs::is_regular_file(faiss_file), "faiss index " << faiss_file << " does not exist");
  STRATA_CHECK(fs::is_regular_file(corpus_jsonl), "corpus " << corpus_jsonl << " does not exist");
  const uint64_t passages = count_corpus_passages(corpus_jsonl);
  const FaissFlatHeader h = read_faiss_flat_header(faiss_file);
  if (h.flat) {
    STRATA_CHECK(static_cast<uint64_t>(h.ntotal) == passages,
                 "faiss index " << faiss_file << " holds " << h.ntotal << " vectors but corpus "
                                << corpus_jsonl << " has " << passages
                                << " passages; row i of the index must be line i of the corpus");
  }
  s.index = s.read_faiss(faiss_file);
  STRATA_CHECK(static_cast<uint64_t>(s.index->ntotal) == passages,
               "faiss index " << faiss_file << " holds " << s.index->ntotal
                              << " vectors but corpus " << corpus_jsonl << " has " << passages
                              << " passages; row i of the index must be line i of the corpus");
  STRATA_CHECK(s.index->metric_type == faiss::METRIC_INNER_PRODUCT ||
                   s.index->metric_type == faiss::METRIC_L2,
               "faiss index " << faiss_file << " uses metric " << s.index->metric_type
                              << "; strata serves inner product and L2");
  s.metric = s.index->metric_type == faiss::METRIC_L2 ? Metric::kL2 : Metric::kInnerProduct;
  s.dim = s.index->d;
  s.n = static_cast<uint32_t>(passages);
  s.factory = h.flat ? "Flat" : std::string(h.fourcc);
  s.docs = DocStore::from_jsonl(corpus_jsonl);
  STRATA_CHECK(s.docs.size() == s.n, "corpus " << corpus_jsonl << " read " << s.docs.size()
                                               << " passages where " << s.n << " were counted");
  return out;
}

std::vector<std::vector<Hit>> DenseIndex::search(const float* queries, size_t n, int k) const {
  const auto& s = *impl_;
  STRATA_CHECK(k >= 0, "top-k must be >= 0, got " << k);
  std::vector<std::vector<Hit>> out(n);
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), s.n);
  if (n == 0 || kk == 0) return out;
  std::vector<float> dist(n * kk);
  std::vector<int64_t> labels(n * kk, -1);
  const SingleThreadedBlasSearch one_thread;
  try {
    if (s.rows != nullptr) {
      if (s.metric == Metric::kInnerProduct) {
        faiss::knn_inner_product(queries, s.rows, s.dim, n, s.n, kk, dist.data(), labels.data());
      } else {
        faiss::knn_L2sqr(queries, s.rows, s.dim, n, s.n, kk, dist.data(), labels.data());
      }
    } else {
      s.index->search(static_cast<faiss::Index::idx_t>(n), queries, static_cast<faiss::Index::idx_t>(kk),
                      dist.data(), labels.data());
    }
  } catch (const faiss::FaissException& e) {
    STRATA_FAIL("faiss search failed: " << e.what());
  }
  const bool l2 = s.metric == Metric::kL2;
  for (size_t q = 0; q < n; ++q) {
    auto& hits = out[q];
    hits.reserve(kk);
    for (size_t j = 0; j < kk; ++j) {
      const int64_t id = labels[q * kk + j];
      if (id < 0 || id >= static_cast<int64_t>(s.n)) continue;
      const float d = dist[q * kk + j];
      hits.push_back({static_cast<uint32_t>(id), l2 ? -d : d});
    }
    std::stable_sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
      return a.score != b.score ? a.score > b.score : a.doc < b.doc;
    });
  }
  return out;
}

std::vector<float> DenseIndex::vector(uint32_t doc) const {
  const auto& s = *impl_;
  STRATA_CHECK(doc < s.n, "document " << doc << " out of range (" << s.n << " documents)");
  std::vector<float> v(s.dim);
  if (s.rows != nullptr) {
    std::memcpy(v.data(), s.rows + static_cast<size_t>(doc) * s.dim, s.dim * sizeof(float));
  } else {
    try {
      s.index->reconstruct(doc, v.data());
    } catch (const faiss::FaissException& e) {
      STRATA_FAIL("this faiss index cannot reconstruct vectors: " << e.what());
    }
  }
  return v;
}

DocumentView DenseIndex::document(uint32_t doc) const { return impl_->docs.document(doc); }
uint32_t DenseIndex::num_docs() const { return impl_->n; }
int DenseIndex::dim() const { return impl_->dim; }
Metric DenseIndex::metric() const { return impl_->metric; }
const std::string& DenseIndex::encoder() const { return impl_->encoder; }
const std::string& DenseIndex::factory() const { return impl_->factory; }

std::string DenseIndex::describe() const {
  const auto& s = *impl_;
  return s.source + " (" + s.factory + ", " + metric_name(s.metric) + ", " + std::to_string(s.n) +
         " x " + std::to_string(s.dim) + (s.rows != nullptr ? ", memory-mapped" : "") +
         (s.encoder.empty() ? "" : ", encoder " + s.encoder) + ")";
}

void DenseIndex::set_search_parameters(const std::string& params) {
  if (params.empty()) return;
  STRATA_CHECK(impl_->index != nullptr,
               "search parameters '" << params << "' need a faiss index; a flat index is exact "
                                        "and takes none");
  try {
    faiss::ParameterSpace().set_index_parameters(impl_->index.get(), params.c_str());
  } catch (const faiss::FaissException& e) {
    STRATA_FAIL("bad faiss search parameters '" << params << "': " << e.what());
  }
}

}  // namespace strata::retrieval::dense
