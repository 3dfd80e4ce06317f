#include "retrieval/dense/dense_builder.h"

#include <faiss/Index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/corpus.h"
#include "retrieval/bm25_builder.h"
#include "retrieval/dense/dense_index.h"
#include "retrieval/doc_store.h"
#include "retrieval/impl/file_writer.h"

namespace strata::retrieval::dense {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void validate(const DenseBuildOptions& o) {
  STRATA_CHECK(!o.factory.empty(), "faiss factory must not be empty (\"Flat\" is exact search)");
  STRATA_CHECK(o.batch_size >= 1, "batch_size must be >= 1, got " << o.batch_size);
  STRATA_CHECK(o.shard_docs >= 1 && o.shard_docs % o.batch_size == 0,
               "shard_docs must be a positive multiple of batch_size (" << o.batch_size
                                                                        << "), got "
                                                                        << o.shard_docs);
  STRATA_CHECK(o.train_docs >= 1, "train_docs must be >= 1, got " << o.train_docs);
}

namespace {

std::string shard_path(const fs::path& build, size_t i) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%06zu.f32", i);
  return (build / name).string();
}

// Appends the raw rows of a file to `out` (a whole shard).
void read_rows(const std::string& path, std::vector<float>& out) {
  const uint64_t bytes = fs::file_size(path);
  const size_t at = out.size();
  out.resize(at + bytes / sizeof(float));
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(out.data() + at), static_cast<std::streamsize>(bytes));
  STRATA_CHECK(in.good(), "cannot read shard " << path);
}

void write_manifest(const fs::path& dir, nlohmann::json m) {
  m["format"] = kFormatName;
  m["version"] = kVersion;
  const std::string tmp = (dir / (std::string(kManifest) + ".tmp")).string();
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << m.dump(2) << "\n";
    STRATA_CHECK(out.good(), "cannot write " << tmp << " (disk full?)");
  }
  fs::rename(tmp, dir / kManifest);
}

void write_vectors_header(FileWriter& w, int dim, uint64_t count, Metric metric) {
  VectorsHeader h{};
  std::memcpy(h.magic, kVectorsMagic, sizeof(h.magic));
  h.version = kVersion;
  h.dim = static_cast<uint32_t>(dim);
  h.count = count;
  h.metric = static_cast<uint32_t>(metric);
  w.put(h);
}

faiss::MetricType faiss_metric(Metric m) {
  return m == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

}  // namespace

DenseBuildStats build_dense_index(const std::string& corpus_path, const std::string& out_dir,
                                  Embedder& embedder, const DenseBuildOptions& opt) {
  validate(opt);
  const auto start = Clock::now();
  STRATA_CHECK(fs::is_regular_file(corpus_path), "corpus " << corpus_path << " does not exist");
  const int dim = embedder.dim();
  STRATA_CHECK(dim >= 1, "the encoder reports dimension " << dim);
  const bool flat = opt.factory == "Flat";
  if (!flat) {  // a bad factory string fails now, before hours of encoding
    try {
      std::unique_ptr<faiss::Index>(
          faiss::index_factory(dim, opt.factory.c_str(), faiss_metric(opt.metric)));
    } catch (const faiss::FaissException& e) {
      STRATA_FAIL("bad --faiss factory '" << opt.factory << "': " << e.what());
    }
  }
  const fs::path dir(out_dir);
  fs::create_directories(dir);
  std::error_code ec;
  fs::remove(dir / kManifest, ec);  // an interrupted build stays invalid
  const uint64_t total = count_corpus_passages(corpus_path);
  STRATA_CHECK(total > 0, "corpus " << corpus_path << " has no passages");

  // Resume only a build of the same corpus with the same encoder and options.
  const nlohmann::json want = {
      {"corpus", fs::absolute(corpus_path).lexically_normal().string()},
      {"corpus_bytes", fs::file_size(corpus_path)},
      {"passages", total},
      {"encoder", embedder.describe()},
      {"dim", dim},
      {"batch_size", opt.batch_size},
      {"shard_docs", opt.shard_docs}};
  const fs::path build = dir / kBuildDir;
  bool resume = false;
  {
    std::ifstream in(build / kProgress);
    if (in.good()) {
      try {
        nlohmann::json have;
        in >> have;
        resume = have == want;
      } catch (const nlohmann::json::exception&) {
      }
      if (!resume)
        STRATA_LOG_WARN("{} belongs to another build (corpus, encoder or options changed); "
                        "starting over",
                        (build / kProgress).string());
    }
  }
  if (!resume) {
    fs::remove_all(build, ec);
    fs::create_directories(build);
    std::ofstream out(build / kProgress, std::ios::trunc);
    out << want.dump(2) << "\n";
    STRATA_CHECK(out.good(), "cannot write " << (build / kProgress).string());
  }
  const uint64_t row_bytes = static_cast<uint64_t>(dim) * sizeof(float);
  const uint64_t shard_bytes = row_bytes * static_cast<uint64_t>(opt.shard_docs);
  size_t shards_done = 0;
  uint64_t resumed = 0;
  while (resume && fs::exists(shard_path(build, shards_done))) {
    const uint64_t b = fs::file_size(shard_path(build, shards_done));
    STRATA_CHECK(b % row_bytes == 0 && b <= shard_bytes && b > 0,
                 "shard " << shard_path(build, shards_done) << " has a bad size (" << b
                          << " bytes); delete " << build.string() << " to start over");
    resumed += b / row_bytes;
    ++shards_done;
    if (b < shard_bytes) break;  // the corpus's last shard
  }
  if (resumed > 0)
    STRATA_LOG_INFO("resuming: {} shards ({} passages) already encoded in {}", shards_done,
                    resumed, build.string());
  STRATA_CHECK(resumed <= total, "the shards in " << build.string() << " hold " << resumed
                                                  << " vectors, more than the corpus's " << total
                                                  << " passages; delete it to start over");

  DenseBuildStats st;
  st.resumed_docs = resumed;
  std::unique_ptr<Progress> bar;
  if (opt.progress) bar = std::make_unique<Progress>("encoding", total - resumed, "passages");
  DocStoreWriter docs(out_dir);
  data::CorpusReader reader(corpus_path);
  data::Passage p;
  std::vector<std::string> batch;
  std::vector<float> shard;
  size_t next_shard = shards_done;
  auto flush_batch = [&] {
    if (batch.empty()) return;
    const auto t0 = Clock::now();
    std::vector<float> v = embedder.embed(batch, /*is_query=*/false);
    st.encode_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    STRATA_CHECK(v.size() == batch.size() * static_cast<size_t>(dim),
                 "the encoder returned " << v.size() << " floats for " << batch.size()
                                         << " passages of dimension " << dim);
    shard.insert(shard.end(), v.begin(), v.end());
    st.encoded += batch.size();
    if (bar) bar->add(batch.size());
    batch.clear();
  };
  auto flush_shard = [&] {
    if (shard.empty()) return;
    const std::string path = shard_path(build, next_shard);
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(shard.data()),
                static_cast<std::streamsize>(shard.size() * sizeof(float)));
      STRATA_CHECK(out.good(), "cannot write " << tmp << " (disk full?)");
    }
    fs::rename(tmp, path);
    ++next_shard;
    shard.clear();
  };
  uint64_t n = 0;
  while (reader.next(p)) {
    docs.add(p.id, p.contents);
    if (n++ < resumed) continue;
    batch.push_back(std::move(p.contents));
    if (batch.size() == static_cast<size_t>(opt.batch_size)) flush_batch();
    if (shard.size() == static_cast<size_t>(opt.shard_docs) * dim) flush_shard();
  }
  flush_batch();
  flush_shard();
  if (bar) bar->finish();
  STRATA_CHECK(n == total, "corpus " << corpus_path << " changed while it was read (" << n
                                     << " passages, " << total << " counted)");

  nlohmann::json files = nlohmann::json::object();
  nlohmann::json m;
  m["num_docs"] = n;
  m["dim"] = dim;
  m["metric"] = metric_name(opt.metric);
  m["factory"] = opt.factory;
  m["encoder"] = embedder.describe();
  if (flat) {
    FileWriter w((dir / kVectors).string());
    write_vectors_header(w, dim, n, opt.metric);
    std::vector<float> rows;
    for (size_t i = 0; i < next_shard; ++i) {
      rows.clear();
      read_rows(shard_path(build, i), rows);
      w.write(rows.data(), rows.size() * sizeof(float));
    }
    w.close();
    STRATA_CHECK(w.size() == sizeof(VectorsHeader) + n * row_bytes,
                 "the shards in " << build.string() << " do not hold " << n << " vectors");
    files[kVectors] = {{"bytes", w.size()}, {"crc32", crc_hex(w.crc())}};
    m["storage"] = "vectors";
  } else {
    std::unique_ptr<faiss::Index> index(
        faiss::index_factory(dim, opt.factory.c_str(), faiss_metric(opt.metric)));
    try {
      if (!index->is_trained) {
        std::vector<float> sample;
        for (size_t i = 0; i < next_shard && sample.size() / dim < opt.train_docs; ++i)
          read_rows(shard_path(build, i), sample);
        const uint64_t nt = std::min<uint64_t>(sample.size() / dim, opt.train_docs);
        STRATA_LOG_INFO("training the {} index on {} vectors", opt.factory, nt);
        index->train(static_cast<faiss::Index::idx_t>(nt), sample.data());
      }
      std::vector<float> rows;
      for (size_t i = 0; i < next_shard; ++i) {
        rows.clear();
        read_rows(shard_path(build, i), rows);
        index->add(static_cast<faiss::Index::idx_t>(rows.size() / dim), rows.data());
      }
      STRATA_CHECK(static_cast<uint64_t>(index->ntotal) == n,
                   "the shards in " << build.string() << " do not hold " << n << " vectors");
      faiss::write_index(index.get(), (dir / kFaiss).string().c_str());
    } catch (const faiss::FaissException& e) {
      STRATA_FAIL("faiss failed to build the " << opt.factory << " index: " << e.what());
    }
    files[kFaiss] = file_sum((dir / kFaiss).string());
    m["storage"] = "faiss";
  }
  docs.finish(files);
  m["files"] = files;
  write_manifest(dir, m);
  fs::remove_all(build, ec);
  st.num_docs = n;
  st.index_bytes = directory_bytes(out_dir);
  st.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return st;
}

DenseBuildStats adopt_faiss_index(const std::string& faiss_file, const std::string& corpus_path,
                                  const std::string& out_dir, const std::string& encoder) {
  const auto start = Clock::now();
  STRATA_CHECK(fs::is_regular_file(faiss_file), "faiss index " << faiss_file << " does not exist");
  STRATA_CHECK(fs::is_regular_file(corpus_path), "corpus " << corpus_path << " does not exist");
  const uint64_t passages = count_corpus_passages(corpus_path);
  const FaissFlatHeader h = read_faiss_flat_header(faiss_file);
  int dim = h.dim;
  Metric metric = h.metric;
  if (!h.flat) {
    std::unique_ptr<faiss::Index> index;
    try {
      index.reset(faiss::read_index(faiss_file.c_str(),
                                    faiss::IO_FLAG_MMAP | faiss::IO_FLAG_READ_ONLY));
    } catch (const faiss::FaissException& e) {
      STRATA_FAIL("cannot read faiss index " << faiss_file << ": " << e.what());
    }
    STRATA_CHECK(index->metric_type == faiss::METRIC_INNER_PRODUCT ||
                     index->metric_type == faiss::METRIC_L2,
                 "faiss index " << faiss_file << " uses metric " << index->metric_type
                                << "; strata serves inner product and L2");
    dim = index->d;
    metric = index->metric_type == faiss::METRIC_L2 ? Metric::kL2 : Metric::kInnerProduct;
    STRATA_CHECK(static_cast<uint64_t>(index->ntotal) == passages,
                 "faiss index " << faiss_file << " holds " << index->ntotal
                                << " vectors but corpus " << corpus_path << " has " << passages
                                << " passages; row i of the index must be line i of the corpus");
  } else {
    STRATA_CHECK(static_cast<uint64_t>(h.ntotal) == passages,
                 "faiss index " << faiss_file << " holds " << h.ntotal << " vectors but corpus "
                                << corpus_path << " has " << passages
                                << " passages; row i of the index must be line i of the corpus");
  }
  const fs::path dir(out_dir);
  fs::create_directories(dir);
  std::error_code ec;
  fs::remove(dir / kManifest, ec);
  nlohmann::json files = nlohmann::json::object();
  nlohmann::json m;
  m["num_docs"] = passages;
  m["dim"] = dim;
  m["metric"] = metric_name(metric);
  m["encoder"] = encoder;
  m["adopted_from"] = fs::absolute(faiss_file).lexically_normal().string();
  if (h.flat) {
    std::ifstream in(faiss_file, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(h.data_offset));
    FileWriter w((dir / kVectors).string());
    write_vectors_header(w, dim, passages, metric);
    uint64_t left = passages * static_cast<uint64_t>(dim) * sizeof(float);
    std::vector<char> buf(1 << 20);
    while (left > 0) {
      const size_t step = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      in.read(buf.data(), static_cast<std::streamsize>(step));
      STRATA_CHECK(in.good(), "cannot read the vectors of " << faiss_file);
      w.write(buf.data(), step);
      left -= step;
    }
    w.close();
    files[kVectors] = {{"bytes", w.size()}, {"crc32", crc_hex(w.crc())}};
    m["factory"] = "Flat";
    m["storage"] = "vectors";
  } else {
    fs::copy_file(faiss_file, dir / kFaiss, fs::copy_options::overwrite_existing);
    files[kFaiss] = file_sum((dir / kFaiss).string());
    m["factory"] = std::string(h.fourcc);
    m["storage"] = "faiss";
  }
  DocStoreWriter docs(out_dir);
  data::CorpusReader reader(corpus_path);
  data::Passage p;
  while (reader.next(p)) docs.add(p.id, p.contents);
  STRATA_CHECK(docs.size() == passages, "corpus " << corpus_path << " read " << docs.size()
                                                  << " passages where " << passages
                                                  << " were counted");
  docs.finish(files);
  m["files"] = files;
  write_manifest(dir, m);
  DenseBuildStats st;
  st.num_docs = passages;
  st.index_bytes = directory_bytes(out_dir);
  st.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return st;
}

}  // namespace strata::retrieval::dense
