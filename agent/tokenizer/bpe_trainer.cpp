#include "agent/tokenizer/bpe_trainer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <unordered_set>

#include "agent/tokenizer/impl/tokenizer_added.h"
#include "agent/tokenizer/impl/tokenizer_byte_level.h"
#include "agent/tokenizer/impl/tokenizer_pipeline.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"

namespace strata::agent {

namespace {

constexpr int kByteTokens = 256;

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t pair_left(uint64_t k) { return static_cast<int32_t>(k >> 32); }
int32_t pair_right(uint64_t k) { return static_cast<int32_t>(k & 0xffffffffu); }

std::string effective_pattern(const BpeTrainerOptions& o) {
  return o.pattern.empty() ? std::string(impl::kQwen2Pattern) : o.pattern;
}

}  // namespace

TrainTextFormat parse_train_text_format(std::string_view name) {
  if (name == "auto") return TrainTextFormat::kAuto;
  if (name == "text") return TrainTextFormat::kText;
  if (name == "jsonl") return TrainTextFormat::kJsonl;
  STRATA_FAIL("unknown input format \"" << name << "\" (expected auto, text or jsonl)");
}

// Word counting: the same added-token split, normalizer and pre-tokenizer the encoder uses.
struct BpeTrainer::Counter {
  impl::AddedTokenMatcher specials;
  impl::Normalizer normalizer;
  impl::PreTokenizer pre_tokenizer;
  std::unordered_map<std::string, uint64_t> words;
  uint64_t total = 0;
  std::vector<impl::TextSpan> spans;
  std::vector<std::string> pieces;

  void add(std::string_view text) {
    specials.split(text, true, spans);
    for (const impl::TextSpan& s : spans) {
      if (s.id >= 0) continue;
      const std::string norm = normalizer.apply(text.substr(s.begin, s.end - s.begin));
      pieces.clear();
      pre_tokenizer.run(norm, pieces);
      for (std::string& w : pieces) {
        ++words[std::move(w)];
        ++total;
      }
    }
  }
};

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : options_(std::move(options)) {
  const int specials = static_cast<int>(options_.special_tokens.size());
  STRATA_CHECK(options_.vocab_size >= kByteTokens + specials,
               "vocab_size " << options_.vocab_size << " is too small: it must hold the "
                             << kByteTokens << " byte tokens and " << specials
                             << " special tokens");
  STRATA_CHECK(options_.min_frequency >= 1,
               "min_frequency must be at least 1, got " << options_.min_frequency);
  STRATA_CHECK(options_.model_max_length > 0,
               "model_max_length must be positive, got " << options_.model_max_length);
  std::unordered_set<std::string> seen;
  std::vector<impl::AddedToken> added;
  for (const std::string& s : options_.special_tokens) {
    STRATA_CHECK(!s.empty(), "special tokens must not be empty");
    STRATA_CHECK(seen.insert(s).second, "special token \"" << s << "\" is listed twice");
    impl::AddedToken a;
    a.id = kByteTokens + static_cast<int32_t>(added.size());  // placeholder, unused here
    a.content = s;
    a.special = true;
    added.push_back(a);
  }
  counter_ = std::make_unique<Counter>();
  counter_->specials = impl::AddedTokenMatcher(std::move(added));
  if (options_.nfc) counter_->normalizer = impl::Normalizer({impl::NormalForm::kNFC});
  std::vector<impl::PreTokenizerStage> stages(2);
  stages[0].kind = impl::PreTokenizerStage::Kind::kSplit;
  stages[0].regex = std::make_shared<impl::Regex>(effective_pattern(options_));
  stages[1].kind = impl::PreTokenizerStage::Kind::kByteLevel;
  counter_->pre_tokenizer = impl::PreTokenizer(std::move(stages));
}

BpeTrainer::~BpeTrainer() = default;

void BpeTrainer::add_text(std::string_view text) { counter_->add(text); }

void BpeTrainer::add_file(const std::string& path, TrainTextFormat format) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "cannot open training file " << path);
  if (format == TrainTextFormat::kAuto) {
    const std::string ext = std::filesystem::path(path).extension().string();
    format = (ext == ".jsonl" || ext == ".json") ? TrainTextFormat::kJsonl : TrainTextFormat::kText;
  }
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (format == TrainTextFormat::kText) {
      line.push_back('\n');
      counter_->add(line);
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      STRATA_FAIL(path << ":" << lineno << ": not valid JSON: " << e.what());
    }
    STRATA_CHECK(j.is_object(), path << ":" << lineno << ": expected a JSON object");
    auto str = [&](const char* key) -> const std::string* {
      auto it = j.find(key);
      return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
    };
    if (const std::string* c = str("contents")) {
      counter_->add(*c);
    } else if (str("title") != nullptr || str("text") != nullptr) {
      if (const std::string* t = str("title")) counter_->add(*t + "\n");
      if (const std::string* t = str("text")) counter_->add(*t);
    } else if (const std::string* q = str("question")) {
      counter_->add(*q);
      auto answers = j.find("golden_answers");
      if (answers != j.end() && answers->is_array()) {
        for (const auto& a : *answers) {
          if (a.is_string()) counter_->add("\n" + a.get<std::string>());
        }
      }
    } else {
      STRATA_FAIL(path << ":" << lineno
                       << ": no text field (expected \"contents\", \"title\"/\"text\" or "
                          "\"question\")");
    }
  }
}

TrainedBpe BpeTrainer::train() {
  const impl::ByteLevelAlphabet& alphabet = impl::ByteLevelAlphabet::get();
  TrainedBpe out;
  out.special_tokens = options_.special_tokens;
  out.words_seen = counter_->total;
  out.distinct_words = counter_->words.size();

  // Base vocabulary: the 256 byte characters.
  std::unordered_map<std::string, int32_t> token_id;
  for (uint8_t b : alphabet.gpt2_order()) {
    token_id.emplace(std::string(alphabet.utf8(b)), static_cast<int32_t>(out.vocab.size()));
    out.vocab.emplace_back(alphabet.utf8(b));
  }

  // Words as symbol ids, sorted so that the work below does not depend on hash order.
  struct Word {
    std::vector<int32_t> sym;
    int64_t count;
  };
  std::vector<std::pair<std::string, uint64_t>> sorted(counter_->words.begin(),
                                                       counter_->words.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [text, count] : sorted) {
    Word w{{}, static_cast<int64_t>(count)};
    size_t pos = 0;
    while (pos < text.size()) {
      uint32_t cp = 0;
      const int len = impl::decode_utf8(text, pos, cp);
      STRATA_ASSERT(len > 0, "pre-tokenizer produced invalid UTF-8");
      w.sym.push_back(token_id.at(text.substr(pos, static_cast<size_t>(len))));
      pos += static_cast<size_t>(len);
    }
    if (w.sym.size() > 1) words.push_back(std::move(w));
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;  // may repeat a word
  for (size_t wi = 0; wi < words.size(); ++wi) {
    const Word& w = words[wi];
    for (size_t i = 0; i + 1 < w.sym.size(); ++i) {
      const uint64_t k = pair_key(w.sym[i], w.sym[i + 1]);
      pair_count[k] += w.count;
      pair_words[k].push_back(static_cast<int32_t>(wi));
    }
  }

  // Max-heap by count; ties: smaller (left, right) token strings first.
  struct Entry {
    int64_t count;
    uint64_t pair;
  };
  auto less = [&](const Entry& a, const Entry& b) {
    if (a.count != b.count) return a.count < b.count;
    const std::string& al = out.vocab[pair_left(a.pair)];
    const std::string& bl = out.vocab[pair_left(b.pair)];
    if (al != bl) return al > bl;
    return out.vocab[pair_right(a.pair)] > out.vocab[pair_right(b.pair)];
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(less)> heap(less);
  for (const auto& [k, c] : pair_count) heap.push(Entry{c, k});

  const int specials = static_cast<int>(options_.special_tokens.size());
  const size_t target = static_cast<size_t>(options_.vocab_size - specials);
  std::optional<Progress> bar;
  if (options_.show_progress) {
    bar.emplace("bpe merges", target > out.vocab.size() ? target - out.vocab.size() : 0, "merges");
  }
  std::vector<int32_t> stamp(words.size(), -1);
  std::vector<int32_t> merged;
  std::unordered_set<uint64_t> touched;
  while (out.vocab.size() < target && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    auto pc = pair_count.find(top.pair);
    const int64_t actual = pc == pair_count.end() ? 0 : pc->second;
    if (actual != top.count) {  // stale: counts only ever drop for existing pairs
      if (actual > 0) heap.push(Entry{actual, top.pair});
      continue;
    }
    if (actual < options_.min_frequency) break;
    const int32_t a = pair_left(top.pair), b = pair_right(top.pair);
    const std::string new_token = out.vocab[a] + out.vocab[b];
    out.merges.emplace_back(out.vocab[a], out.vocab[b]);
    int32_t c;
    if (auto it = token_id.find(new_token); it != token_id.end()) {
      c = it->second;  // another pair already spelled this token
    } else {
      c = static_cast<int32_t>(out.vocab.size());
      token_id.emplace(new_token, c);
      out.vocab.push_back(new_token);
      if (bar) bar->add(1);
    }
    const int32_t merge_no = static_cast<int32_t>(out.merges.size());
    touched.clear();
    const std::vector<int32_t> affected = std::move(pair_words[top.pair]);
    pair_words.erase(top.pair);
    for (int32_t wi : affected) {
      if (stamp[wi] == merge_no) continue;
      stamp[wi] = merge_no;
      Word& w = words[wi];
      // Rewrite the word, then replace its old pairs by its new ones in the counts.
      merged.clear();
      bool changed = false;
      for (size_t i = 0; i < w.sym.size(); ++i) {
        if (i + 1 < w.sym.size() && w.sym[i] == a && w.sym[i + 1] == b) {
          merged.push_back(c);
          ++i;
          changed = true;
        } else {
          merged.push_back(w.sym[i]);
        }
      }
      if (!changed) continue;
      for (size_t i = 0; i + 1 < w.sym.size(); ++i) {
        pair_count[pair_key(w.sym[i], w.sym[i + 1])] -= w.count;
      }
      for (size_t i = 0; i + 1 < merged.size(); ++i) {
        const uint64_t k = pair_key(merged[i], merged[i + 1]);
        pair_count[k] += w.count;
        if (merged[i] == c || merged[i + 1] == c) {
          pair_words[k].push_back(wi);
          touched.insert(k);
        }
      }
      w.sym.swap(merged);
    }
    pair_count.erase(top.pair);
    // Pairs with the new token are new: queue them at their final counts (sorted for
    // determinism; the heap order does not depend on insertion order anyway).
    std::vector<uint64_t> fresh(touched.begin(), touched.end());
    std::sort(fresh.begin(), fresh.end());
    for (uint64_t k : fresh) {
      const int64_t n = pair_count[k];
      if (n > 0) heap.push(Entry{n, k});
    }
  }
  if (bar) bar->finish();
  if (out.vocab.size() < target) {
    STRATA_LOG_WARN("bpe: stopped at {} tokens (asked for {}): no pair occurs {} times or more",
                    out.vocab.size() + specials, options_.vocab_size, options_.min_frequency);
  }
  return out;
}

std::string tokenizer_json(const TrainedBpe& bpe, const BpeTrainerOptions& options) {
  using nlohmann::ordered_json;
  ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < bpe.special_tokens.size(); ++i) {
    added.push_back({{"id", bpe.vocab.size() + i},
                     {"content", bpe.special_tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  root["added_tokens"] = added;
  root["normalizer"] = options.nfc ? ordered_json{{"type", "NFC"}} : ordered_json(nullptr);
  const ordered_json byte_level = {{"type", "ByteLevel"},
                                   {"add_prefix_space", false},
                                   {"trim_offsets", false},
                                   {"use_regex", false}};
  root["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       ordered_json::array({ordered_json{{"type", "Split"},
                                         {"pattern", {{"Regex", effective_pattern(options)}}},
                                         {"behavior", "Isolated"},
                                         {"invert", false}},
                            byte_level})}};
  root["post_processor"] = byte_level;
  root["decoder"] = byte_level;
  ordered_json vocab = ordered_json::object();
  for (size_t i = 0; i < bpe.vocab.size(); ++i) vocab[bpe.vocab[i]] = i;
  ordered_json merges = ordered_json::array();
  for (const auto& [l, r] : bpe.merges) merges.push_back(ordered_json::array({l, r}));
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"ignore_merges", false},
                   {"vocab", vocab},
                   {"merges", merges}};
  return root.dump(2, ' ', false) + "\n";
}

std::string tokenizer_config_json(const TrainedBpe& bpe, const BpeTrainerOptions& options) {
  using nlohmann::ordered_json;
  auto has = [&](const char* t) {
    return std::find(bpe.special_tokens.begin(), bpe.special_tokens.end(), t) !=
           bpe.special_tokens.end();
  };
  const bool chatml = has("<|im_start|>") && has("<|im_end|>");
  ordered_json cfg;
  cfg["tokenizer_class"] = "PreTrainedTokenizerFast";
  cfg["bos_token"] = nullptr;
  if (bpe.special_tokens.empty()) {
    cfg["eos_token"] = nullptr;
    cfg["pad_token"] = nullptr;
  } else {
    cfg["eos_token"] = bpe.special_tokens.front();
    cfg["pad_token"] = bpe.special_tokens.front();
  }
  cfg["unk_token"] = nullptr;
  cfg["model_max_length"] = options.model_max_length;
  cfg["clean_up_tokenization_spaces"] = false;
  cfg["strata_chat_style"] = chatml ? "chatml" : "plain";
  if (chatml) {
    cfg["chat_template"] =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
        "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt "
        "%}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  }
  return cfg.dump(2, ' ', false) + "\n";
}

void write_tokenizer_files(const TrainedBpe& bpe, const BpeTrainerOptions& options,
                           const std::string& json_path) {
  namespace fs = std::filesystem;
  const fs::path path(json_path);
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  auto write = [](const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    STRATA_CHECK(out.good(), "cannot write " << p.string());
    out << text;
    out.close();
    STRATA_CHECK(out.good(), "failed writing " << p.string());
  };
  write(path, tokenizer_json(bpe, options));
  write(path.parent_path() / "tokenizer_config.json", tokenizer_config_json(bpe, options));
}

}  // namespace strata::agent
