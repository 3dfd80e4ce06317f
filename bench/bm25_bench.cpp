// bm25_bench: times BM25 queries against an index (scripts/bench/retrieval.sh drives it).
//
//   bm25_bench --index idx --queries queries.txt --k 10 --hits-out hits.txt --verify
//
// Single-thread latency covers what a search call costs the daemon: analysing the query, top-k,
// and copying each hit's id and contents out of the document store. Prints one JSON line; its
// "slowest" lists the slowest 1% of the queries (each one's fastest pass) with their index terms
// and each term's document frequency, to tell what makes the tail.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/cli.h"
#include "core/error.h"
#include "retrieval/bm25_index.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Time BM25 queries (top-k with contents) against an index.", "bm25_bench"};
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  std::string index_dir, queries_file, hits_out;
  int k = 10, threads = 0, rounds = 1;
  double slowest_fraction = 0.01;
  bool verify = false;
  std::string bound_scan = "auto";
  app.add_option("--index", index_dir, "index directory")->required();
  app.add_option("--queries", queries_file, "queries, one per line")->required();
  app.add_option("--k", k, "hits per query")->capture_default_str();
  app.add_option("--rounds", rounds, "timed passes over the queries")->capture_default_str();
  app.add_option("--threads", threads, "threads for the search_batch throughput run (0 = cores)")
      ->capture_default_str();
  app.add_option("--hits-out", hits_out, "write each query's hit ids (corpus ids), one line each");
  app.add_flag("--verify", verify, "check every result against exhaustive scoring");
  app.add_option("--bound-scan", bound_scan,
                 "when top-k runs the bound scan over the impact arrays: auto, off or always")
      ->check(CLI::IsMember({"auto", "off", "always"}))
      ->capture_default_str();
  app.add_option("--slowest", slowest_fraction, "share of queries listed as the slowest (by their fastest pass)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    const auto t_load = Clock::now();
    strata::retrieval::Bm25Index index(index_dir);
    const double load_ms = ms_since(t_load);
    index.set_bound_scan(bound_scan == "off"      ? strata::retrieval::BoundScan::kOff
                         : bound_scan == "always" ? strata::retrieval::BoundScan::kAlways
                                                  : strata::retrieval::BoundScan::kAuto);
    std::vector<std::string> queries;
    {
      std::ifstream in(queries_file);
      STRATA_CHECK(in.good(), "cannot open queries file " << queries_file);
      for (std::string line; std::getline(in, line);)
        if (!line.empty()) queries.push_back(line);
    }
    STRATA_CHECK(!queries.empty(), "no queries in " << queries_file);

    // Warm-up pass (page cache, thread-local buffers), then timed single-thread passes.
    for (const auto& q : queries) index.search(q, k);
    std::vector<double> lat;
    std::vector<std::vector<std::string>> ids(queries.size());
    uint64_t bytes = 0;
    const auto t_all = Clock::now();
    for (int r = 0; r < rounds; ++r) {
      for (size_t i = 0; i < queries.size(); ++i) {
        const auto t0 = Clock::now();
        const auto hits = index.search(queries[i], k);
        std::vector<std::string> out;  // what a response would carry
        out.reserve(hits.size() * 2);
        for (const auto& h : hits) {
          const auto d = index.document(h.doc);
          out.emplace_back(d.id);
          out.emplace_back(d.contents);
          bytes += d.contents.size();
        }
        lat.push_back(ms_since(t0));
        if (r == 0)
          for (size_t j = 0; j < out.size(); j += 2) ids[i].push_back(out[j]);
      }
    }
    const double total_ms = ms_since(t_all);

    // Throughput of search_batch over all cores.
    const auto t_batch = Clock::now();
    for (int r = 0; r < rounds; ++r) index.search_batch(queries, k, threads);
    const double batch_ms = ms_since(t_batch);

    int mismatches = 0;
    if (verify) {
      for (const auto& q : queries) {
        const auto a = index.search(q, k);
        const auto b = index.search_exhaustive(q, k);
        bool same = a.size() == b.size();
        for (size_t j = 0; same && j < a.size(); ++j)
          same = a[j].doc == b[j].doc && a[j].score == b[j].score;
        if (!same) ++mismatches;
      }
    }
    if (!hits_out.empty()) {
      std::ofstream out(hits_out);
      STRATA_CHECK(out.good(), "cannot write " << hits_out);
      for (const auto& row : ids) {
        for (size_t j = 0; j < row.size(); ++j) out << (j ? "\t" : "") << row[j];
        out << "\n";
      }
    }
    nlohmann::json j;
    j["system"] = "strata";
    j["queries"] = queries.size() * rounds;
    j["k"] = k;
    j["qps"] = 1000.0 * static_cast<double>(lat.size()) / total_ms;
    j["p50_ms"] = percentile(lat, 0.50);
    j["p99_ms"] = percentile(lat, 0.99);
    j["mean_ms"] = total_ms / static_cast<double>(lat.size());
    j["batch_qps"] = 1000.0 * static_cast<double>(queries.size() * rounds) / batch_ms;
    j["load_ms"] = load_ms;
    j["index_bytes"] = index.size_bytes();
    j["num_docs"] = index.num_docs();
    j["impact_arrays"] = index.num_impact_arrays();
    j["bound_scan"] = bound_scan;
    j["contents_bytes"] = bytes;
    if (verify) j["verify_mismatches"] = mismatches;
    // The slowest queries, each by its fastest pass (so one preempted pass does not count).
    std::vector<std::pair<double, size_t>> best(queries.size(), {1e300, 0});
    for (size_t r = 0; r < lat.size(); ++r) {
      const size_t i = r % queries.size();
      best[i] = {std::min(best[i].first, lat[r]), i};
    }
    std::sort(best.begin(), best.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    const size_t n_slow = std::min(best.size(), static_cast<size_t>(
                                                    std::ceil(slowest_fraction * static_cast<double>(best.size()))));
    j["slowest"] = nlohmann::json::array();
    for (size_t s = 0; s < n_slow; ++s) {
      nlohmann::json terms = nlohmann::json::array();
      for (const auto& t : index.analyze(queries[best[s].second]))
        terms.push_back({{"term", t}, {"df", index.doc_freq(t)}});
      j["slowest"].push_back({{"query", queries[best[s].second]}, {"ms", best[s].first}, {"terms", terms}});
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  });
}
