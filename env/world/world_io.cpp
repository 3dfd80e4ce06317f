// Writing a world to disk: corpus.jsonl (Search-R1), {train,dev,test}.jsonl (FlashRAG) and the
// world.json manifest. Lines are assembled by hand into a large buffer and written with fwrite:
// a million passages take seconds, not minutes.
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "env/world/world.h"

namespace strata::env {

namespace {

constexpr size_t kFlushBytes = 8u << 20;

// Appends `s` as the inside of a JSON string literal (no quotes).
void append_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
}

void append_string(std::string& out, std::string_view s) {
  out += '"';
  append_escaped(out, s);
  out += '"';
}

template <class Items, class Fn>
void append_list(std::string& out, const Items& items, Fn&& item_text) {
  out += '[';
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += ", ";
    first = false;
    append_string(out, item_text(item));
  }
  out += ']';
}

// A file filled through a large in-memory buffer. Errors name the file and --out.
class OutFile {
 public:
  explicit OutFile(std::string path) : path_(std::move(path)) {
    file_ = std::fopen(path_.c_str(), "wb");
    STRATA_CHECK(file_ != nullptr,
                 "option --out: cannot write " << path_ << ": " << std::strerror(errno));
    buf_.reserve(kFlushBytes + (1u << 16));
  }
  ~OutFile() {
    if (file_ != nullptr) std::fclose(file_);
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;

  // Append to buffer(), then call maybe_flush().
  std::string& buffer() { return buf_; }
  void maybe_flush() {
    if (buf_.size() >= kFlushBytes) flush();
  }
  void close() {
    flush();
    const int rc = std::fclose(file_);
    file_ = nullptr;
    STRATA_CHECK(rc == 0,
                 "option --out: error while closing " << path_ << ": " << std::strerror(errno));
  }

 private:
  void flush() {
    if (buf_.empty()) return;
    const size_t n = std::fwrite(buf_.data(), 1, buf_.size(), file_);
    STRATA_CHECK(n == buf_.size(),
                 "option --out: error while writing " << path_ << ": " << std::strerror(errno));
    buf_.clear();
  }

  std::string path_;
  std::FILE* file_ = nullptr;
  std::string buf_;
};

void make_out_dir(const std::string& dir) {
  STRATA_CHECK(!dir.empty(), "option --out must name a directory");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  STRATA_CHECK(!ec, "option --out: cannot create directory " << dir << ": " << ec.message());
  STRATA_CHECK(std::filesystem::is_directory(dir, ec),
               "option --out: " << dir << " is not a directory");
}

void write_corpus(const World& world, const std::string& path) {
  OutFile file(path);
  std::string& out = file.buffer();
  Progress bar("writing corpus", static_cast<uint64_t>(world.num_passages), "passages");
  uint64_t pending = 0;
  char id[24];
  for_each_passage(world, [&](int64_t pid, const std::string& title, const std::string& text) {
    const int n = std::snprintf(id, sizeof id, "%lld", static_cast<long long>(pid));
    out += "{\"id\": \"";
    out.append(id, static_cast<size_t>(n));
    out += "\", \"contents\": \"\\\"";  // contents = "\"Title\"\ntext"
    append_escaped(out, title);
    out += "\\\"\\n";
    append_escaped(out, text);
    out += "\"}\n";
    file.maybe_flush();
    if (++pending == 4096) {
      bar.add(pending);
      pending = 0;
    }
  });
  bar.add(pending);
  file.close();
  bar.finish();
}

void write_questions(const World& world, Split split, const std::string& path) {
  OutFile file(path);
  for (const Question& q : world.split_questions(split)) {
    file.buffer() += question_to_jsonl(world, q);
    file.buffer() += '\n';
    file.maybe_flush();
  }
  file.close();
}

void write_text(const std::string& path, const std::string& text) {
  OutFile file(path);
  file.buffer() = text;
  file.close();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::string question_to_jsonl(const World& world, const Question& q) {
  std::string out;
  out += "{\"id\": ";
  append_string(out, q.id);
  out += ", \"question\": ";
  append_string(out, q.text);
  out += ", \"golden_answers\": ";
  append_list(out, q.answers, [](const std::string& a) -> std::string_view { return a; });
  out += ", \"hops\": " + std::to_string(q.hops);
  out += ", \"type\": ";
  append_string(out, q.type);
  out += ", \"relation\": ";
  append_string(out, q.relation);
  out += ", \"entities\": ";
  append_list(out, q.entities,
              [&](int32_t id) -> std::string_view { return world.entity(id).name; });
  out += ", \"support\": ";
  std::vector<std::string> support;
  for (const Lookup& l : q.lookups) support.push_back(std::to_string(l.passage));
  append_list(out, support, [](const std::string& s) -> std::string_view { return s; });
  out += '}';
  return out;
}

std::string manifest_json(const World& world) {
  using nlohmann::ordered_json;
  const WorldOptions& o = world.options;
  ordered_json j;
  j["generator"] = "strata make_world";
  j["format_version"] = 1;
  j["seed"] = o.seed;
  j["options"] = {{"entities", o.entities},
                  {"distractors", o.distractors},
                  {"train", o.train},
                  {"dev", o.dev},
                  {"test", o.test},
                  {"hop_mix", o.hop_mix},
                  {"comparison_share", o.comparison_share},
                  {"two_passage_share", o.two_passage_share}};
  j["passages"] = world.num_passages;

  std::map<std::string, int64_t> by_kind, by_split;
  int64_t distractors = 0;
  ordered_json common = ordered_json::array();
  for (const Entity& e : world.entities) {
    ++by_kind[kind_name(e.kind)];
    ++by_split[split_name(e.split)];
    distractors += e.distractor ? 1 : 0;
    if (e.split == Split::kCommon) common.push_back(e.name);
  }
  j["entities"] = {{"total", world.entities.size()},
                   {"distractors", distractors},
                   {"by_kind", by_kind},
                   {"by_split", by_split}};
  j["common_knowledge"] = common;

  ordered_json splits = ordered_json::object();
  for (int s = 0; s < kNumSplits; ++s) {
    std::array<int64_t, 4> hops{};
    std::map<std::string, int64_t> types;
    for (const Question& q : world.questions[s]) {
      ++hops[static_cast<size_t>(q.hops)];
      ++types[q.type];
    }
    const std::string name = split_name(static_cast<Split>(s));
    splits[name] = {{"file", name + ".jsonl"},
                    {"questions", world.questions[s].size()},
                    {"by_hops", {{"0", hops[0]}, {"1", hops[1]}, {"2", hops[2]}, {"3", hops[3]}}},
                    {"by_type", types}};
  }
  j["splits"] = splits;
  j["corpus"] = "corpus.jsonl";
  return j.dump(2) + "\n";
}

void write_world(const WorldOptions& opts, const std::string& out_dir) {
  validate_options(opts);
  make_out_dir(out_dir);
  const auto t0 = std::chrono::steady_clock::now();
  const World world = generate_world(opts);
  STRATA_LOG_INFO("world: {} entities, {} passages, {}/{}/{} train/dev/test questions ({:.1f}s)",
                  world.entities.size(), world.num_passages, world.questions[0].size(),
                  world.questions[1].size(), world.questions[2].size(), seconds_since(t0));
  const std::string dir = out_dir + "/";
  for (int s = 0; s < kNumSplits; ++s) {
    const Split split = static_cast<Split>(s);
    write_questions(world, split, dir + split_name(split) + ".jsonl");
  }
  const auto t1 = std::chrono::steady_clock::now();
  write_corpus(world, dir + "corpus.jsonl");
  STRATA_LOG_INFO("wrote {} passages to {}corpus.jsonl ({:.1f}s)", world.num_passages, dir,
                  seconds_since(t1));
  write_text(dir + "world.json", manifest_json(world));
}

}  // namespace strata::env
