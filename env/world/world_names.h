// Invented names for the QA world: pronounceable words built from syllables, names for each
// kind of entity, a registry that keeps every name unique, and look-alike names for distractors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/rng.h"
#include "env/world/world.h"
#include "env/world/world_vocab.h"

namespace strata::env::names {

// The names in use, compared case-insensitively. Only hashes are kept: a hash collision makes
// a fresh name look taken (it is then re-drawn), never lets a duplicate through.
class Registry {
 public:
  void reserve(size_t n) { hashes_.reserve(n); }
  // Records `name` and returns true, or returns false when it (or its hash) is taken.
  bool claim(std::string_view name);
  size_t size() const { return hashes_.size(); }

 private:
  std::unordered_set<uint64_t> hashes_;  // looked up only, never iterated
};

// Every inventor takes `stretch` >= 0: that many extra syllables, so that retries after
// collisions reach a larger space of names.
std::string word(Rng& rng, int min_syllables, int max_syllables, int stretch = 0);
std::string first_name(Rng& rng, int stretch = 0);
std::string last_name(Rng& rng, int stretch = 0);
std::string person_name(Rng& rng, int stretch = 0);
std::string city_name(Rng& rng, int stretch = 0);
std::string country_name(Rng& rng, int stretch = 0);
std::string continent_name(Rng& rng, int stretch = 0);
std::string currency_name(Rng& rng, int stretch = 0);  // lower case: "the krandel"
std::string language_name(Rng& rng, int stretch = 0);
std::string org_name(Rng& rng, const vocab::OrgType& type, int stretch = 0);
std::string work_title(Rng& rng, int stretch = 0);

// Draws names with `invent(stretch)` until `registry` accepts one, stretching every few misses.
template <class Invent>
std::string unique(Registry& registry, Invent&& invent) {
  for (int attempt = 0;; ++attempt) {
    std::string name = invent(attempt / 8);
    if (registry.claim(name)) return name;
  }
}

// A new, registered name that a reader could mistake for `name`: for people a shared first or
// last name or one changed vowel; for other entities one changed vowel or a sibling word
// ("The Silent Harbour" -> "The Quiet Harbour", "Morvik Records" -> "Morvik Music").
std::string look_alike(Registry& registry, Rng& rng, const std::string& name, Kind kind);

}  // namespace strata::env::names
