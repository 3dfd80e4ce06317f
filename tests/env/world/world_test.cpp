// The built-in world generator: determinism, the shapes of entities, facts, passages and
// questions, and the files it writes (over 450 lines on purpose: one test per promise of
// env/world/world.h, sharing one generated world).
#include "env/world/world.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/corpus.h"
#include "data/qa.h"
#include "tests/test_util.h"

namespace strata::env {
namespace {

using strata::testing::TempDir;

const char* const kFiles[] = {"corpus.jsonl", "train.jsonl", "dev.jsonl", "test.jsonl",
                              "world.json"};

WorldOptions small_options(uint64_t seed = 7) {
  WorldOptions o;
  o.seed = seed;
  o.entities = 300;
  o.train = 200;
  o.dev = 50;
  o.test = 50;
  return o;
}

// The small world with its passages rendered, shared by the tests that only read it.
struct Rendered {
  World world;
  std::vector<std::string> titles, texts;  // by passage id
  std::string passage(int64_t id) const {
    return titles[static_cast<size_t>(id)] + "\n" + texts[static_cast<size_t>(id)];
  }
};

// Seeds the invariant tests run on.
const uint64_t kSeeds[] = {7, 11, 12};

const Rendered& small_world(uint64_t seed = 7) {
  static std::map<uint64_t, Rendered> cache;
  auto it = cache.find(seed);
  if (it != cache.end()) return it->second;
  const Rendered& r = cache[seed] = [seed] {
    Rendered out;
    out.world = generate_world(small_options(seed));
    out.titles.resize(static_cast<size_t>(out.world.num_passages));
    out.texts.resize(out.titles.size());
    for_each_passage(out.world, [&](int64_t id, const std::string& title, const std::string& text) {
      out.titles.at(static_cast<size_t>(id)) = title;
      out.texts.at(static_cast<size_t>(id)) = text;
    });
    return out;
  }();
  return r;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// `phrase` as whole words of `text` (not inside a longer word).
bool contains_phrase(const std::string& text, const std::string& phrase) {
  auto letter = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
  for (size_t at = text.find(phrase); at != std::string::npos; at = text.find(phrase, at + 1)) {
    const size_t end = at + phrase.size();
    if ((at == 0 || !letter(text[at - 1])) && (end == text.size() || !letter(text[end])))
      return true;
  }
  return false;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t sp = s.find(' ', start);
    if (sp == std::string::npos) sp = s.size();
    out.push_back(s.substr(start, sp - start));
    start = sp + 1;
  }
  return out;
}

std::string run_make_world(const std::string& args, const std::string& stderr_path, int& rc) {
  const std::string cmd =
      strata::testing::bin("make_world") + " " + args + " --log-level off 2>" + stderr_path;
  const int status = std::system(cmd.c_str());
  rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return strata::testing::read_file(stderr_path);
}

// ---- determinism ------------------------------------------------------------------------------

TEST(WorldDeterminism, SameSeedGivesIdenticalFilesAndOtherSeedDiffers) {
  TempDir a, b, c;
  write_world(small_options(7), a.path());
  write_world(small_options(7), b.path());
  write_world(small_options(8), c.path());
  for (const char* f : kFiles) {
    const std::string fa = strata::testing::read_file(a.file(f));
    ASSERT_FALSE(fa.empty()) << f;
    EXPECT_EQ(fa, strata::testing::read_file(b.file(f))) << f;
  }
  EXPECT_NE(strata::testing::read_file(a.file("corpus.jsonl")),
            strata::testing::read_file(c.file("corpus.jsonl")));
  EXPECT_NE(strata::testing::read_file(a.file("train.jsonl")),
            strata::testing::read_file(c.file("train.jsonl")));
}

TEST(WorldDeterminism, BinaryWritesTheSameBytesAsTheLibrary) {
  TempDir lib, cli;
  write_world(small_options(7), lib.path());
  int rc = -1;
  const std::string err = run_make_world(
      "--out " + cli.path() + "/w --seed 7 --entities 300 --train 200 --dev 50 --test 50",
      cli.file("stderr.txt"), rc);
  ASSERT_EQ(rc, 0) << err;
  for (const char* f : kFiles)
    EXPECT_EQ(strata::testing::read_file(lib.file(f)),
              strata::testing::read_file(cli.path() + "/w/" + f))
        << f;
}

TEST(WorldDeterminism, CommonKnowledgeDependsOnTheSeedOnly) {
  WorldOptions other = small_options(7);
  other.entities = 500;
  other.distractors = 0;
  other.train = 100;
  const World a = small_world().world;
  const World b = generate_world(other);
  size_t n = 0;
  for (const Entity& e : a.entities) {
    if (e.split != Split::kCommon) break;
    const Entity& f = b.entity(e.id);
    EXPECT_EQ(e.name, f.name);
    EXPECT_EQ(f.split, Split::kCommon);
    for (int k = 0; k < kNumFacts; ++k) {
      const Fact fact = static_cast<Fact>(k);
      if (fact_subject(fact) != e.kind || (fact_is_relation(fact) && fact_target(e, fact) < 0))
        continue;
      EXPECT_EQ(fact_answers(a, e, fact), fact_answers(b, f, fact)) << e.name;
    }
    ++n;
  }
  EXPECT_GE(n, 24u);  // a dozen countries and their capitals at least
}

// ---- question mix and splits ------------------------------------------------------------------

TEST(WorldQuestions, EverySplitHasEveryHopCountAndType) {
  const World& w = small_world().world;
  const WorldOptions o = small_options();
  const std::array<int, kNumSplits> sizes = {o.train, o.dev, o.test};
  for (int s = 0; s < kNumSplits; ++s) {
    const auto& qs = w.questions[s];
    EXPECT_EQ(static_cast<int>(qs.size()), sizes[s]);
    std::set<int> hops;
    std::set<std::string> types;
    for (const Question& q : qs) {
      hops.insert(q.hops);
      types.insert(q.type);
      EXPECT_EQ(q.lookups.size(), static_cast<size_t>(std::max(q.hops, 1))) << q.text;
    }
    EXPECT_EQ(hops, (std::set<int>{0, 1, 2, 3})) << "split " << s;
    EXPECT_EQ(types, (std::set<std::string>{"common", "single", "bridge", "comparison", "chain"}))
        << "split " << s;
  }
}

TEST(WorldQuestions, HopMixIsFollowed) {
  WorldOptions o = small_options();
  o.hop_mix = {0, 1, 0, 1};
  const World w = generate_world(o);
  std::map<int, int> hops;
  for (const Question& q : w.questions[0]) ++hops[q.hops];
  EXPECT_EQ(hops, (std::map<int, int>{{1, 100}, {3, 100}}));
}

void check_entities_stay_in_their_split(uint64_t seed) {
  const World& w = small_world(seed).world;
  std::set<int32_t> train_entities;
  for (const Question& q : w.questions[0])
    for (int32_t id : q.entities) train_entities.insert(id);
  for (int s = 0; s < kNumSplits; ++s) {
    for (const Question& q : w.questions[s]) {
      for (const Lookup& l : q.lookups) EXPECT_FALSE(w.entity(l.entity).distractor) << q.text;
      if (q.hops == 0) {
        for (int32_t id : q.entities) EXPECT_EQ(w.entity(id).split, Split::kCommon) << q.text;
        continue;
      }
      for (int32_t id : q.entities) {
        const Entity& e = w.entity(id);
        if (e.split == Split::kCommon) {
          // The only shared links: a city's country, and that country's capital.
          EXPECT_TRUE(e.kind == Kind::kCountry || e.kind == Kind::kCity) << q.text;
          continue;
        }
        EXPECT_EQ(static_cast<int>(e.split), s) << q.text << ": " << e.name;
        if (s != 0) {
          EXPECT_EQ(train_entities.count(id), 0u) << q.text << ": " << e.name;
        }
      }
    }
  }
}

TEST(WorldQuestions, RetrievalEntitiesStayInTheirSplit) {
  for (uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    check_entities_stay_in_their_split(seed);
  }
}

TEST(WorldQuestions, DevAndTestEntitiesNeverAppearInTrainFiles) {
  TempDir dir;
  write_world(small_options(), dir.path());
  const auto manifest = nlohmann::json::parse(strata::testing::read_file(dir.file("world.json")));
  std::set<std::string> common;
  for (const auto& n : manifest.at("common_knowledge")) common.insert(n.get<std::string>());
  std::set<std::string> train_names;
  std::string train_text;
  for (const auto& r : data::read_qa_file(dir.file("train.jsonl"))) {
    for (const auto& n : r.metadata.at("entities")) train_names.insert(n.get<std::string>());
    train_text += r.question + "\n";
  }
  size_t checked = 0;
  for (const char* split : {"dev.jsonl", "test.jsonl"}) {
    for (const auto& r : data::read_qa_file(dir.file(split))) {
      if (r.metadata.at("hops").get<int>() == 0) continue;
      for (const auto& n : r.metadata.at("entities")) {
        const std::string name = n.get<std::string>();
        if (common.count(name)) continue;
        EXPECT_EQ(train_names.count(name), 0u) << name;
        // People's full names cannot occur inside other kinds of names, so any mention in a
        // train question would be a leak (other names may share an invented word by chance).
        if (words_of(name).size() == 2 && !contains(name, "The ")) {
          EXPECT_FALSE(contains_phrase(train_text, name)) << name;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 50u);
}

TEST(WorldQuestions, CommonKnowledgeRecursWithTheSameAnswers) {
  WorldOptions o;  // the default question counts: 300 common questions in train
  o.seed = 3;
  o.distractors = 0;
  const World w = generate_world(o);
  // A common question is identified by the fact it asks (its phrasing may vary).
  auto key = [](const Question& q) { return q.relation + ":" + std::to_string(q.entities[0]); };
  std::map<std::string, std::vector<std::string>> train_common;
  for (const Question& q : w.questions[0])
    if (q.hops == 0) train_common[key(q)] = q.answers;
  size_t seen_in_train = 0, total = 0;
  for (int s = 1; s < kNumSplits; ++s) {
    for (const Question& q : w.questions[s]) {
      if (q.hops != 0) continue;
      ++total;
      auto it = train_common.find(key(q));
      if (it == train_common.end()) continue;
      ++seen_in_train;
      EXPECT_EQ(it->second, q.answers) << q.text;
    }
  }
  ASSERT_GT(total, 50u);
  EXPECT_GT(seen_in_train * 10, total * 9);  // nearly all were asked (and answered) in train
}

// ---- answers ----------------------------------------------------------------------------------

void check_lookups_are_stated_verbatim(uint64_t seed) {
  const Rendered& r = small_world(seed);
  const World& w = r.world;
  for (const auto& qs : w.questions) {
    for (const Question& q : qs) {
      ASSERT_FALSE(q.answers.empty()) << q.text;
      for (const Lookup& l : q.lookups) {
        ASSERT_GE(l.passage, 0);
        ASSERT_LT(l.passage, w.num_passages);
        const Entity& e = w.entity(l.entity);
        EXPECT_EQ(r.titles[static_cast<size_t>(l.passage)], e.name);
        const std::string value = fact_answers(w, e, l.fact).front();
        EXPECT_TRUE(contains(r.passage(l.passage), value))
            << q.text << ": " << fact_name(l.fact) << " = " << value << " not in passage "
            << l.passage << ": " << r.passage(l.passage);
      }
      // The canonical answer is in what the question's lookups read.
      std::string support;
      for (const Lookup& l : q.lookups) support += r.passage(l.passage) + "\n";
      EXPECT_TRUE(contains(support, q.answers.front())) << q.text;
    }
  }
}

TEST(WorldAnswers, EveryLookupIsStatedVerbatimInItsPassage) {
  for (uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    check_lookups_are_stated_verbatim(seed);
  }
}

TEST(WorldAnswers, EveryAnswerAndAliasAppearsInTheCorpus) {
  const Rendered& r = small_world();
  std::string corpus;
  for (size_t i = 0; i < r.texts.size(); ++i) corpus += r.passage(static_cast<int64_t>(i)) + "\n";
  for (const auto& qs : r.world.questions)
    for (const Question& q : qs)
      for (const std::string& a : q.answers) EXPECT_TRUE(contains(corpus, a)) << q.text << " " << a;
}

void check_answers_are_unambiguous(uint64_t seed) {
  const World& w = small_world(seed).world;
  std::set<std::string> names;
  for (const Entity& e : w.entities) EXPECT_TRUE(names.insert(lower(e.name)).second) << e.name;
  for (int s = 0; s < kNumSplits; ++s) {
    std::set<std::string> retrieval_texts;
    for (const Question& q : w.questions[s]) {
      if (q.hops > 0) {
        EXPECT_TRUE(retrieval_texts.insert(q.text).second) << q.text;
      }
      if (q.type == "comparison") {
        ASSERT_EQ(q.lookups.size(), 2u);
        const Entity& a = w.entity(q.lookups[0].entity);
        const Entity& b = w.entity(q.lookups[1].entity);
        EXPECT_NE(a.year, b.year) << q.text;
        EXPECT_TRUE(q.answers.front() == a.name || q.answers.front() == b.name) << q.text;
        continue;
      }
      // Following the lookups from the named entity reaches the answer, one relation at a time.
      for (size_t i = 0; i + 1 < q.lookups.size(); ++i)
        EXPECT_EQ(fact_target(w.entity(q.lookups[i].entity), q.lookups[i].fact),
                  q.lookups[i + 1].entity)
            << q.text;
      const Lookup& last = q.lookups.back();
      EXPECT_EQ(fact_answers(w, w.entity(last.entity), last.fact), q.answers) << q.text;
      EXPECT_TRUE(contains(q.text, w.entity(q.lookups.front().entity).name)) << q.text;
      for (const std::string& a : q.answers)
        EXPECT_FALSE(contains(lower(q.text), lower(a))) << q.text << " gives away " << a;
    }
  }
}

TEST(WorldAnswers, AnswersAreUnambiguous) {
  for (uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    check_answers_are_unambiguous(seed);
  }
}

// ---- distractors ------------------------------------------------------------------------------

void check_look_alikes(uint64_t seed) {
  const Rendered& r = small_world(seed);
  const World& w = r.world;
  std::map<int32_t, std::vector<int32_t>> look_alikes;
  for (const Entity& e : w.entities)
    if (e.distractor) look_alikes[e.look_alike_of].push_back(e.id);
  std::set<std::string> titles(r.titles.begin(), r.titles.end());
  size_t checked = 0;
  for (const auto& qs : w.questions) {
    for (const Question& q : qs) {
      if (q.hops == 0) continue;
      for (const Lookup& l : q.lookups) {
        const Entity& original = w.entity(l.entity);
        if (original.split == Split::kCommon) continue;
        const auto& copies = look_alikes[l.entity];
        ASSERT_EQ(copies.size(), static_cast<size_t>(w.options.distractors)) << original.name;
        for (int32_t id : copies) {
          const Entity& d = w.entity(id);
          EXPECT_EQ(d.kind, original.kind);
          EXPECT_EQ(d.split, original.split);
          EXPECT_TRUE(titles.count(d.name)) << d.name << " has no passage";
          // Near-duplicate names: one letter changed, or a shared word.
          const auto wa = words_of(original.name), wb = words_of(d.name);
          const bool shares_word = std::any_of(wa.begin(), wa.end(), [&](const std::string& x) {
            return x.size() >= 3 && std::find(wb.begin(), wb.end(), x) != wb.end();
          });
          EXPECT_TRUE(shares_word || edit_distance(original.name, d.name) <= 2)
              << original.name << " vs " << d.name;
          // Whatever a question reads from the original, the look-alike answers differently.
          EXPECT_NE(fact_answers(w, original, l.fact), fact_answers(w, d, l.fact))
              << q.text << ": " << original.name << " vs " << d.name;
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 500u);
}

TEST(WorldDistractors, LookAlikesExistWithConfusableNamesAndOtherAnswers) {
  for (uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    check_look_alikes(seed);
  }
}

TEST(WorldDistractors, ZeroDistractorsAddsNone) {
  WorldOptions o = small_options();
  o.distractors = 0;
  const World w = generate_world(o);
  for (const Entity& e : w.entities) EXPECT_FALSE(e.distractor);
}

// ---- passages and files -----------------------------------------------------------------------

TEST(WorldPassages, AreWikipediaSizedAndTitledByTheirEntity) {
  const Rendered& r = small_world();
  ASSERT_EQ(static_cast<int64_t>(r.texts.size()), r.world.num_passages);
  int two_passage_entities = 0;
  for (const Entity& e : r.world.entities) {
    ASSERT_GE(e.first_passage, 0);
    two_passage_entities += e.num_passages == 2;
    for (int p = 0; p < e.num_passages; ++p)
      EXPECT_EQ(r.titles[static_cast<size_t>(e.first_passage + p)], e.name);
  }
  EXPECT_GT(two_passage_entities, 0);
  for (const std::string& t : r.texts) {
    const auto words = static_cast<int>(std::count(t.begin(), t.end(), ' ') + 1);
    EXPECT_GE(words, 35) << t;
    EXPECT_LE(words, 130) << t;
  }
}

TEST(WorldFiles, ReadBackWithTheDataReaders) {
  TempDir dir;
  write_world(small_options(), dir.path());
  const World& w = small_world().world;
  const char* const splits[] = {"train", "dev", "test"};
  for (int s = 0; s < kNumSplits; ++s) {
    const auto records = data::read_qa_file(dir.file(std::string(splits[s]) + ".jsonl"));
    ASSERT_EQ(records.size(), w.questions[s].size());
    for (size_t i = 0; i < records.size(); ++i) {
      const Question& q = w.questions[s][i];
      EXPECT_EQ(records[i].id, std::string(splits[s]) + "_" + std::to_string(i));
      EXPECT_EQ(records[i].question, q.text);
      EXPECT_EQ(records[i].golden_answers, q.answers);
      EXPECT_EQ(records[i].metadata.at("hops").get<int>(), q.hops);
      EXPECT_EQ(records[i].metadata.at("type").get<std::string>(), q.type);
      EXPECT_EQ(records[i].metadata.at("support").size(), q.lookups.size());
    }
  }
  data::CorpusReader reader(dir.file("corpus.jsonl"));
  data::Passage p;
  int64_t n = 0;
  const Rendered& r = small_world();
  while (reader.next(p)) {
    EXPECT_EQ(p.id, std::to_string(n));
    EXPECT_EQ(p.title, r.titles[static_cast<size_t>(n)]);
    EXPECT_EQ(p.text, r.texts[static_cast<size_t>(n)]);
    ++n;
  }
  EXPECT_EQ(n, w.num_passages);
  const auto manifest = nlohmann::json::parse(strata::testing::read_file(dir.file("world.json")));
  EXPECT_EQ(manifest.at("passages").get<int64_t>(), w.num_passages);
  EXPECT_EQ(manifest.at("seed").get<uint64_t>(), 7u);
  EXPECT_EQ(manifest.at("splits").at("dev").at("questions").get<size_t>(), 50u);
}

TEST(WorldFiles, QuestionLinesHaveKeysInAFixedOrder) {
  const World& w = small_world().world;
  const std::string line = question_to_jsonl(w, w.questions[0][0]);
  const auto j = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"id", "question", "golden_answers", "hops", "type",
                                            "relation", "entities", "support"}));
}

// ---- errors -----------------------------------------------------------------------------------

void expect_error(const WorldOptions& o, const std::string& option) {
  try {
    validate_options(o);
    ADD_FAILURE() << "no error for " << option;
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), option)) << e.what();
  }
}

TEST(WorldOptionsTest, InvalidOptionsNameTheOption) {
  WorldOptions o = small_options();
  o.entities = 0;
  expect_error(o, "--entities");
  o = small_options();
  o.entities = 40;  // dev and test would get a handful of entities each
  expect_error(o, "--entities");
  o = small_options();
  o.distractors = -1;
  expect_error(o, "--distractors");
  o = small_options();
  o.test = -5;
  expect_error(o, "--test");
  o = small_options();
  o.hop_mix = {0, 0, 0, 0};
  expect_error(o, "--hop-mix");
  o = small_options();
  o.comparison_share = 1.5;
  expect_error(o, "--comparison-share");
  EXPECT_THROW(parse_hop_mix("1,2,3"), Error);
  EXPECT_THROW(parse_hop_mix("1,2,x,3"), Error);
  EXPECT_EQ(parse_hop_mix("1,2,3.5,0"), (std::array<double, 4>{1, 2, 3.5, 0}));
}

TEST(WorldOptionsTest, UnwritableOutIsAnError) {
  TempDir dir;
  strata::testing::write_file(dir.file("plain"), "a file, not a directory");
  try {
    write_world(small_options(), dir.file("plain") + "/world");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "--out")) << e.what();
  }
}

TEST(WorldOptionsTest, BinaryExitsTwoWithTheMessage) {
  TempDir dir;
  int rc = -1;
  std::string err = run_make_world("--out " + dir.path() + "/w --entities 0", dir.file("e1"), rc);
  EXPECT_EQ(rc, 2);
  EXPECT_TRUE(contains(err, "--entities")) << err;
  err = run_make_world("--out " + dir.path() + "/w --hop-mix 1,2", dir.file("e2"), rc);
  EXPECT_EQ(rc, 2);
  EXPECT_TRUE(contains(err, "--hop-mix")) << err;
}

}  // namespace
}  // namespace strata::env
