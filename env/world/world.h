// The built-in QA world: an invented encyclopedia and multi-hop questions about it, so that
// strata can train and be tested with no downloads.
//
// What it is made of
//   * Common knowledge: a dozen countries (capital, continent, currency, language) and a few
//     famous people. It depends on the seed only, and its 0-hop questions recur in every split,
//     so a policy can learn them by heart.
//   * Per-split entities: people, cities, organisations and works (novels, films, albums) with
//     invented, pronounceable names, linked by relations (born in, works for, founded by,
//     created by, headquartered in, lies in). Every entity belongs to one split (train, dev or
//     test) and relations stay inside that split, except links to common-knowledge countries;
//     so no dev/test retrieval question mentions or passes through an entity of a train one.
//   * Distractors: for every entity on a retrieval question's chain, look-alikes with a name one
//     edit away (or a shared first/last name) and overlapping facts, whose answers to that
//     entity's questions differ.
//   * Passages: one or two Wikipedia-like passages per entity, titled with its name; a passage
//     states only the entity's own facts, so a chain of k relations needs k lookups.
//   * Questions by hop count: 0 `common`, 1 `single`, 2 `bridge` / `comparison`, 3 `chain`.
//     Every answer is stated verbatim in the passage the question's last lookup reads.
//
// Everything is a function of WorldOptions: the same options give byte-identical files.
//
//   WorldOptions opts; opts.seed = 7;
//   World world = generate_world(opts);         // in memory (entities, questions, layout)
//   for_each_passage(world, [](int64_t id, const std::string& title, const std::string& text) {});
//   write_world(opts, "runs/world");            // corpus.jsonl, {train,dev,test}.jsonl, world.json
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace strata::env {

// ---- options --------------------------------------------------------------------------------

struct WorldOptions {
  uint64_t seed = 1;    // every random choice derives from it
  int entities = 2000;  // invented people, cities, organisations and works (before
                        // distractors and common knowledge), shared out among the splits
                        // in proportion to their 1-3 hop question counts; at least 20
  int distractors = 2;  // look-alikes made for each entity on a retrieval question's chain
  int train = 2000;     // questions in train.jsonl
  int dev = 200;        // questions in dev.jsonl
  int test = 300;       // questions in test.jsonl
  std::array<double, 4> hop_mix = {0.15, 0.35, 0.35, 0.15};  // relative weights of 0..3-hop
                                                             // questions (need not sum to 1)
  double comparison_share = 0.3;    // share of the 2-hop questions that are comparisons
  double two_passage_share = 0.25;  // share of people, organisations and countries whose article
                                    // is split into two passages
};

// Throws strata::Error naming the offending option (as its command-line flag) and its value.
void validate_options(const WorldOptions& opts);

// Parses "15,35,35,15" (four non-negative weights) for --hop-mix; throws strata::Error.
std::array<double, 4> parse_hop_mix(const std::string& text);

// ---- entities -------------------------------------------------------------------------------

enum class Kind : uint8_t { kCountry, kCity, kPerson, kOrg, kWork };
const char* kind_name(Kind kind);  // "country", "city", "person", "organisation", "work"

// kCommon is the shared common knowledge; the others index World::questions.
enum class Split : int8_t { kCommon = -1, kTrain = 0, kDev = 1, kTest = 2 };
inline constexpr int kNumSplits = 3;
const char* split_name(Split split);  // "common", "train", "dev", "test"

// A fact a passage states and a question can ask. Entity-valued facts are the relations.
enum class Fact : uint8_t {
  kBirthCity,
  kBirthYear,
  kOccupation,
  kEmployer,  // person
  kCountry,   // city
  kFounder,
  kHeadquarters,
  kFoundingYear,  // organisation
  kCreator,
  kReleaseYear,
  kGenre,  // work
  kCapital,
  kContinent,
  kCurrency,
  kLanguage,  // country
};
inline constexpr int kNumFacts = 15;
const char* fact_name(Fact fact);  // "person.birth_city", "org.founder", ...
Kind fact_subject(Fact fact);      // the kind of entity the fact is about
bool fact_is_relation(Fact fact);  // its value is another entity

struct Entity {
  int32_t id = -1;  // index in World::entities
  Kind kind = Kind::kPerson;
  Split split = Split::kCommon;
  bool distractor = false;     // made to look like `look_alike_of`; never a question's subject
  uint8_t type = 0;            // organisation: index in org_types(); work: in work_types()
  uint8_t attr = 0;            // person: occupation index; work: genre index (within its type);
                               // country: continent index (World::continents)
  int16_t info = -1;           // country: index in World::countries
  int32_t year = 0;            // person: birth; organisation: founding; work: release
  int32_t city = -1;           // person: birth city; organisation: headquarters; country: capital
  int32_t country = -1;        // city: the country it lies in
  int32_t person = -1;         // organisation: founder; work: creator
  int32_t org = -1;            // person: employer (none for famous people)
  int32_t look_alike_of = -1;  // distractor: the entity it imitates
  int64_t first_passage = -1;  // corpus id of its first passage
  uint8_t num_passages = 0;    // 1 or 2
  std::string name;            // unique in the world (case-insensitively)
};

// What a country's passages say besides its capital and continent.
struct CountryInfo {
  std::string official_name;  // "Republic of Velmora"; an answer alias for the country
  std::string currency;       // "krandel"
  std::string language;       // "Torvish"
};

// ---- questions ------------------------------------------------------------------------------

// One lookup: `fact` of `entity`, as stated by corpus passage `passage`.
struct Lookup {
  int32_t entity = -1;
  Fact fact = Fact::kBirthCity;
  int64_t passage = -1;
};

struct Question {
  std::string id;  // "train_0"
  std::string text;
  std::vector<std::string> answers;  // the first is canonical; the rest are aliases
  int hops = 0;                      // 0 for common knowledge, else the number of lookups
  std::string type;                  // common, single, bridge, comparison, chain
  std::string relation;              // the facts read, e.g. "work.creator>person.birth_city"
  std::vector<Lookup> lookups;       // in reading order (one for 0-hop questions)
  std::vector<int32_t> entities;     // every entity involved: chain, compared ones, answer
  int32_t answer_entity = -1;        // when the answer is an entity
};

// ---- the world ------------------------------------------------------------------------------

struct World {
  WorldOptions options;
  std::vector<Entity> entities;  // common knowledge first, then the splits, then distractors
  std::vector<std::string> continents;
  std::vector<CountryInfo> countries;                       // indexed by Entity::info
  std::array<std::vector<Question>, kNumSplits> questions;  // train, dev, test
  std::vector<int32_t> corpus_order;  // entity ids in passage order (a seeded shuffle)
  int64_t num_passages = 0;

  const Entity& entity(int32_t id) const { return entities[static_cast<size_t>(id)]; }
  const std::vector<Question>& split_questions(Split s) const {
    return questions[static_cast<size_t>(s)];
  }
};

// Builds the whole world in memory (no passage text). Throws strata::Error on bad options or
// when there are too few entities to ask the requested questions.
World generate_world(const WorldOptions& opts);

// The answers (canonical first) to `fact` of `e`, and the entity it points to (or -1).
std::vector<std::string> fact_answers(const World& world, const Entity& e, Fact fact);
int32_t fact_target(const Entity& e, Fact fact);
// The corpus id of the passage of `e` that states `fact`.
int64_t fact_passage(const Entity& e, Fact fact);

// Renders every passage in id order; `text` is the body without the title line. The text
// depends only on the world (a seeded stream), never on who is listening.
using PassageFn =
    std::function<void(int64_t id, const std::string& title, const std::string& text)>;
void for_each_passage(const World& world, const PassageFn& fn);

// ---- files ----------------------------------------------------------------------------------

// One question as a FlashRAG JSONL line (no newline), keys in a fixed order:
// id, question, golden_answers, hops, type, relation, entities, support.
std::string question_to_jsonl(const World& world, const Question& q);
// The world.json manifest (pretty-printed JSON).
std::string manifest_json(const World& world);

// Generates the world and writes corpus.jsonl, train.jsonl, dev.jsonl, test.jsonl and
// world.json into out_dir (created if missing). Throws strata::Error naming --out when the
// directory or a file cannot be written.
void write_world(const WorldOptions& opts, const std::string& out_dir);

}  // namespace strata::env
