// Internals of the QA world generator, shared by env/world/world_*.cpp. Not part of the API.
//
// generate_world() runs these steps in order, each from its own forked random stream:
//   add_common_knowledge   (world_entities.cpp)    countries, capitals, famous people
//   add_split_entities     (world_entities.cpp)    per split: cities, people, orgs, works
//   add_questions          (world_questions.cpp)   per split
//   add_distractors        (world_distractors.cpp) look-alikes of the questions' entities
//   lay_out_passages       (world_layout.cpp)      passage count and ids per entity
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "env/world/world.h"
#include "env/world/world_names.h"

namespace strata::env::detail {

// The entities of one split by kind: where question subjects and relation targets are drawn.
struct SplitPools {
  std::vector<int32_t> cities, people, orgs, works;
  std::vector<std::vector<int32_t>> people_by_occupation;  // indexed like vocab::occupations()
};

// A split needs this many entities to ask retrieval questions (two of each kind at least).
inline constexpr int kMinSplitEntities = 20;
// No date in the world is later than this.
inline constexpr int kLatestYear = 2023;
// People born before this year are written about in the past tense.
inline constexpr int kPastTenseBefore = 1940;

// Appends an entity with the next id and returns it.
Entity& add_entity(World& world, Kind kind, Split split, std::string name);

void add_common_knowledge(World& world, names::Registry& registry, const Rng& root);

// How many of opts.entities each split gets: in proportion to its question count.
std::array<int, kNumSplits> split_entity_counts(const WorldOptions& opts);

SplitPools add_split_entities(World& world, names::Registry& registry, Split split, int count,
                              const Rng& root);

// How many questions of each hop count a split of `total` questions gets (largest remainder).
std::array<int, 4> hop_counts(const std::array<double, 4>& mix, int total);

// Fills world.questions[split]; Lookup::passage is set later by lay_out_passages.
void add_questions(World& world, Split split, const SplitPools& pools, const Rng& root);

// Question wording (world_phrasing.cpp). name_phrase: "the novel The Silent Harbour" for works,
// the bare name otherwise. chain_question_text: the question asking `last` of chain.back(),
// where chain[i + 1] is the value of path[i] for chain[i]. comparison_text: "Who was born
// earlier, A or B?" (or later), by the kind of a and b.
std::string name_phrase(const Entity& e);
std::string chain_question_text(const World& world, const std::vector<int32_t>& chain,
                                const std::vector<Fact>& path, Fact last, Rng& rng);
std::string comparison_text(const Entity& a, const Entity& b, bool earlier);

void add_distractors(World& world, names::Registry& registry,
                     const std::array<SplitPools, kNumSplits>& pools, const Rng& root);

// Decides which entities get two passages, shuffles the corpus order, assigns passage ids and
// points every question's lookups at their passages.
void lay_out_passages(World& world, const Rng& root);

// Which of an entity's passages (0 or 1) states `fact` when it has two.
int fact_part(Fact fact);

// "is" or "was" for a person, by birth year.
inline bool past_tense(const Entity& person) { return person.year < kPastTenseBefore; }

}  // namespace strata::env::detail
