#include "eval/metrics.h"

#include <algorithm>

namespace strata::eval {

namespace {

// Sums of one group; turned into an Aggregate at the end.
struct Sums {
  int64_t n = 0;
  double em = 0, f1 = 0, cover_em = 0, searches = 0, answered = 0;

  void add(const Prediction& p) {
    ++n;
    em += p.em;
    f1 += p.f1;
    cover_em += p.cover_em;
    searches += p.searches;
    answered += p.prediction.find_first_not_of(" \t\r\n") != std::string::npos ? 1 : 0;
  }
  // Percentages as 100 * sum / n (not sum / n * 100), so 2 of 5 is exactly 40.
  Aggregate done() const {
    Aggregate a;
    a.n = n;
    if (n == 0) return a;
    const double d = static_cast<double>(n);
    a.em = 100.0 * em / d;
    a.f1 = 100.0 * f1 / d;
    a.cover_em = 100.0 * cover_em / d;
    a.searches = searches / d;
    a.answer_rate = 100.0 * answered / d;
    return a;
  }
};

struct GroupSums {
  Sums all;
  int64_t missing = 0;
  std::map<int, Sums> by_hops;
  std::map<std::string, Sums> by_type;

  void add(const Prediction& p) {
    all.add(p);
    missing += p.missing ? 1 : 0;
    if (p.hops) by_hops[*p.hops].add(p);
    if (!p.type.empty()) by_type[p.type].add(p);
  }
  GroupSummary done() const {
    GroupSummary g;
    g.all = all.done();
    g.missing = missing;
    for (const auto& [k, s] : by_hops) g.by_hops[k] = s.done();
    for (const auto& [k, s] : by_type) g.by_type[k] = s.done();
    return g;
  }
};

}  // namespace

Summary summarize(const std::vector<Prediction>& preds,
                  const std::vector<std::string>& dataset_order) {
  std::vector<std::string> order = dataset_order;
  std::map<std::string, GroupSums> per;
  GroupSums overall;
  for (const auto& p : preds) {
    if (std::find(order.begin(), order.end(), p.dataset) == order.end()) order.push_back(p.dataset);
    per[p.dataset].add(p);
    overall.all.add(p);
    overall.missing += p.missing ? 1 : 0;
  }
  Summary s;
  s.overall = overall.done();
  for (const auto& name : order) s.datasets.emplace_back(name, per[name].done());
  return s;
}

}  // namespace strata::eval
