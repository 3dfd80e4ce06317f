#include "eval/report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"

namespace strata::eval {

namespace {

using Json = nlohmann::ordered_json;

double round4(double x) { return std::round(x * 1e4) / 1e4; }

Json aggregate_json(const Aggregate& a) {
  Json j;
  j["n"] = a.n;
  j["em"] = round4(a.em);
  j["f1"] = round4(a.f1);
  j["cover_em"] = round4(a.cover_em);
  j["searches"] = round4(a.searches);
  j["answer_rate"] = round4(a.answer_rate);
  return j;
}

Json group_json(const GroupSummary& g, bool breakdowns) {
  Json j = aggregate_json(g.all);
  j["missing"] = g.missing;
  if (breakdowns && !g.by_hops.empty()) {
    Json h = Json::object();
    for (const auto& [k, a] : g.by_hops) h[std::to_string(k)] = aggregate_json(a);
    j["by_hops"] = h;
  }
  if (breakdowns && !g.by_type.empty()) {
    Json t = Json::object();
    for (const auto& [k, a] : g.by_type) t[k] = aggregate_json(a);
    j["by_type"] = t;
  }
  return j;
}

std::string row(const std::string& label, const Aggregate& a) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), " | %lld | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
                static_cast<long long>(a.n), a.em, a.f1, a.cover_em, a.searches, a.answer_rate);
  return "| " + label + buf;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  STRATA_CHECK(out.good(), "cannot write " << path);
  out << text;
  out.close();
  STRATA_CHECK(!out.fail(), "failed writing " << path);
}

}  // namespace

PredictionWriter::PredictionWriter(const std::string& path) : path_(path) {
  out_.open(path, std::ios::binary | std::ios::trunc);
  STRATA_CHECK(out_.good(), "cannot write predictions to " << path);
}

void PredictionWriter::write(const Prediction& p) {
  out_ << to_json(p).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  out_.flush();
  STRATA_CHECK(out_.good(), "failed writing " << path_);
  ++written_;
}

Json summary_to_json(const Summary& s) {
  Json j;
  j["overall"] = group_json(s.overall, /*breakdowns=*/false);
  Json d = Json::object();
  for (const auto& [name, g] : s.datasets) d[name] = group_json(g, /*breakdowns=*/true);
  j["datasets"] = d;
  return j;
}

std::string summary_markdown(const Summary& s) {
  std::string md =
      "| dataset | n | EM | F1 | cover-EM | searches | answered |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& [name, g] : s.datasets) {
    md += row(name, g.all);
    for (const auto& [k, a] : g.by_hops) md += row(name + " · hops=" + std::to_string(k), a);
    for (const auto& [k, a] : g.by_type) md += row(name + " · type=" + k, a);
  }
  md += row("**overall**", s.overall.all);
  if (s.overall.missing > 0) {
    md += "\n" + std::to_string(s.overall.missing) +
          " gold question(s) had no prediction and count as wrong (empty answer):";
    for (const auto& [name, g] : s.datasets)
      if (g.missing > 0) md += " " + name + " " + std::to_string(g.missing) + ";";
    md.back() = '\n';
  }
  md +=
      "\nEM, F1, cover-EM and answered are percentages; searches is the mean number of search "
      "calls per question.\n";
  return md;
}

void write_summary(const std::string& out_dir, const Summary& s) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  STRATA_CHECK(!ec, "cannot create " << out_dir << ": " << ec.message());
  write_text(
      out_dir + "/summary.json",
      summary_to_json(s).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  write_text(out_dir + "/summary.md", summary_markdown(s));
}

}  // namespace strata::eval
