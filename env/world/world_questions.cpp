// Questions of a split: common knowledge (0 hops), relation chains of 1-3 lookups (single,
// bridge, chain) and comparisons of two entities' years (2 lookups).
//
// A chain question starts at an entity, follows relations (creator, employer, founder, birth
// city, headquarters, country) and asks a fact of the entity it ends at. Relations are
// functions (one value each), so the chain fixes exactly one answer; the text names the start
// entity and describes the others (wording in world_phrasing.cpp).
#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "core/error.h"
#include "env/world/world_internal.h"
#include "env/world/world_vocab.h"

namespace strata::env::detail {

namespace {

constexpr int kMaxAttempts = 400;

struct Pattern {
  Kind start;
  std::vector<Fact> path;  // relations followed from the start entity
  Fact last;               // the fact asked of the entity the path ends at
};

using F = Fact;

const std::vector<Pattern>& patterns(int hops) {
  static const std::vector<Pattern> kSingle = {
      {Kind::kPerson, {}, F::kBirthCity},  {Kind::kPerson, {}, F::kBirthYear},
      {Kind::kPerson, {}, F::kOccupation}, {Kind::kPerson, {}, F::kEmployer},
      {Kind::kCity, {}, F::kCountry},      {Kind::kOrg, {}, F::kFounder},
      {Kind::kOrg, {}, F::kHeadquarters},  {Kind::kOrg, {}, F::kFoundingYear},
      {Kind::kWork, {}, F::kCreator},      {Kind::kWork, {}, F::kReleaseYear},
      {Kind::kWork, {}, F::kGenre},
  };
  static const std::vector<Pattern> kBridge = {
      {Kind::kWork, {F::kCreator}, F::kBirthCity},
      {Kind::kWork, {F::kCreator}, F::kBirthYear},
      {Kind::kWork, {F::kCreator}, F::kEmployer},
      {Kind::kOrg, {F::kFounder}, F::kBirthCity},
      {Kind::kOrg, {F::kFounder}, F::kBirthYear},
      {Kind::kOrg, {F::kFounder}, F::kEmployer},
      {Kind::kPerson, {F::kEmployer}, F::kFounder},
      {Kind::kPerson, {F::kEmployer}, F::kHeadquarters},
      {Kind::kPerson, {F::kEmployer}, F::kFoundingYear},
      {Kind::kPerson, {F::kBirthCity}, F::kCountry},
      {Kind::kOrg, {F::kHeadquarters}, F::kCountry},
  };
  static const std::vector<Pattern> kChain = {
      {Kind::kWork, {F::kCreator, F::kEmployer}, F::kFounder},
      {Kind::kWork, {F::kCreator, F::kEmployer}, F::kHeadquarters},
      {Kind::kWork, {F::kCreator, F::kEmployer}, F::kFoundingYear},
      {Kind::kWork, {F::kCreator, F::kBirthCity}, F::kCountry},
      {Kind::kOrg, {F::kFounder, F::kBirthCity}, F::kCountry},
      {Kind::kOrg, {F::kFounder, F::kEmployer}, F::kHeadquarters},
      {Kind::kPerson, {F::kEmployer, F::kHeadquarters}, F::kCountry},
      {Kind::kPerson, {F::kEmployer, F::kFounder}, F::kBirthCity},
      {Kind::kPerson, {F::kEmployer, F::kFounder}, F::kBirthYear},
      {Kind::kPerson, {F::kBirthCity, F::kCountry}, F::kCapital},
      {Kind::kPerson, {F::kBirthCity, F::kCountry}, F::kCurrency},
      {Kind::kOrg, {F::kHeadquarters, F::kCountry}, F::kContinent},
      {Kind::kOrg, {F::kHeadquarters, F::kCountry}, F::kLanguage},
  };
  static const std::vector<Pattern> kNone;
  switch (hops) {
    case 1:
      return kSingle;
    case 2:
      return kBridge;
    case 3:
      return kChain;
    default:
      return kNone;
  }
}

// Question kinds, in the order slots are listed before shuffling.
enum class Slot : uint8_t { kCommon, kSingle, kBridge, kComparison, kChain };

// A question before it gets its id.
struct Draft {
  std::string text;
  std::vector<std::string> answers;
  std::vector<Lookup> lookups;
  std::vector<int32_t> entities;
  int32_t answer_entity = -1;
  std::string relation;
  std::string key;  // identity of the question, for duplicate detection
};

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool mentions(const std::string& text, const std::string& answer) {
  return lower(text).find(lower(answer)) != std::string::npos;
}

class QuestionMaker {
 public:
  QuestionMaker(const World& world, const SplitPools& pools, Rng& rng)
      : world_(world), pools_(pools), rng_(rng) {
    for (const Entity& e : world.entities) {
      if (e.split != Split::kCommon) break;  // common knowledge comes first
      add_common_facts(e);
    }
  }

  // One draw; false when it cannot be used (a relation is missing, an entity repeats, or the
  // answer is given away by the text). The caller retries.
  bool make(Slot slot, Draft& d) {
    switch (slot) {
      case Slot::kCommon:
        return common_question(d);
      case Slot::kSingle:
        return chain_question(1, d);
      case Slot::kBridge:
        return chain_question(2, d);
      case Slot::kChain:
        return chain_question(3, d);
      case Slot::kComparison:
        return comparison_question(d);
    }
    return false;
  }

 private:
  const Entity& at(int32_t id) const { return world_.entity(id); }

  template <class T>
  const T& choose(const std::vector<T>& v) {
    return rng_.pick(v);
  }
  void add_common_facts(const Entity& e) {
    switch (e.kind) {
      case Kind::kCountry:
        for (Fact f : {F::kCapital, F::kContinent, F::kCurrency, F::kLanguage})
          common_facts_.push_back({e.id, f, -1});
        break;
      case Kind::kCity:
        common_facts_.push_back({e.id, F::kCountry, -1});
        break;
      case Kind::kPerson:
        for (Fact f : {F::kBirthCity, F::kBirthYear, F::kOccupation})
          common_facts_.push_back({e.id, f, -1});
        break;
      default:
        break;
    }
  }

  const std::vector<int32_t>& pool(Kind kind) const {
    switch (kind) {
      case Kind::kCity:
        return pools_.cities;
      case Kind::kPerson:
        return pools_.people;
      case Kind::kOrg:
        return pools_.orgs;
      default:
        return pools_.works;
    }
  }

  // Fills lookups, entities, answers and relation for a walk from `start`; false when the walk
  // breaks (a missing relation) or revisits an entity.
  bool walk(int32_t start, const std::vector<Fact>& path, Fact last, std::vector<int32_t>& chain,
            Draft& d) {
    chain = {start};
    for (Fact f : path) {
      const int32_t next = fact_target(at(chain.back()), f);
      if (next < 0 || std::find(chain.begin(), chain.end(), next) != chain.end()) return false;
      d.lookups.push_back({chain.back(), f, -1});
      chain.push_back(next);
    }
    const Entity& end = at(chain.back());
    d.lookups.push_back({end.id, last, -1});
    d.answers = fact_answers(world_, end, last);
    d.answer_entity = fact_is_relation(last) ? fact_target(end, last) : -1;
    if (d.answer_entity >= 0 &&
        std::find(chain.begin(), chain.end(), d.answer_entity) != chain.end())
      return false;
    d.entities = chain;
    if (d.answer_entity >= 0) d.entities.push_back(d.answer_entity);
    for (const Lookup& l : d.lookups) {
      if (!d.relation.empty()) d.relation += '>';
      d.relation += fact_name(l.fact);
    }
    return true;
  }

  bool chain_question(int hops, Draft& d) {
    const Pattern& p = choose(patterns(hops));
    const std::vector<int32_t>& candidates = pool(p.start);
    if (candidates.empty()) return false;
    std::vector<int32_t> chain;
    if (!walk(choose(candidates), p.path, p.last, chain, d)) return false;
    d.text = chain_question_text(world_, chain, p.path, p.last, rng_);
    for (const std::string& a : d.answers)
      if (mentions(d.text, a)) return false;
    d.key = d.relation;
    for (int32_t id : chain) d.key += ":" + std::to_string(id);
    return true;
  }

  bool comparison_question(Draft& d) {
    const double u = rng_.uniform();
    const Kind kind = u < 0.5 ? Kind::kPerson : u < 0.7 ? Kind::kOrg : Kind::kWork;
    const std::vector<int32_t>& candidates = pool(kind);
    if (candidates.size() < 2) return false;
    const Entity& a = at(choose(candidates));
    const Entity* b = nullptr;
    // Prefer a partner of a similar era: the comparison is then less guessable.
    for (int tries = 0; tries < 12; ++tries) {
      const Entity& c = at(choose(candidates));
      if (c.id == a.id || c.year == a.year) continue;
      b = &c;
      if (std::abs(c.year - a.year) <= 30) break;
    }
    if (b == nullptr) return false;
    const bool earlier = rng_.bernoulli(0.5);
    const Entity& answer = (a.year < b->year) == earlier ? a : *b;
    d.text = comparison_text(a, *b, earlier);
    const Fact year = kind == Kind::kPerson ? F::kBirthYear
                      : kind == Kind::kOrg  ? F::kFoundingYear
                                            : F::kReleaseYear;
    d.lookups = {{a.id, year, -1}, {b->id, year, -1}};
    d.entities = {a.id, b->id};
    d.answer_entity = answer.id;
    d.answers = {answer.name};
    d.relation = std::string("compare(") + fact_name(year) + ")";
    const int32_t lo = std::min(a.id, b->id), hi = std::max(a.id, b->id);
    d.key = d.relation + ":" + std::to_string(lo) + ":" + std::to_string(hi);
    return true;
  }

  bool common_question(Draft& d) {
    const Lookup& l = choose(common_facts_);
    std::vector<int32_t> chain;
    if (!walk(l.entity, {}, l.fact, chain, d)) return false;
    d.text = chain_question_text(world_, chain, {}, l.fact, rng_);
    d.key = d.relation + ":" + std::to_string(l.entity);
    return true;
  }

  const World& world_;
  const SplitPools& pools_;
  Rng& rng_;
  std::vector<Lookup> common_facts_;  // (entity, fact) pairs common questions draw from
};

const char* slot_type(Slot slot) {
  switch (slot) {
    case Slot::kCommon:
      return "common";
    case Slot::kSingle:
      return "single";
    case Slot::kBridge:
      return "bridge";
    case Slot::kComparison:
      return "comparison";
    case Slot::kChain:
      return "chain";
  }
  return "?";
}

int slot_hops(Slot slot) {
  switch (slot) {
    case Slot::kCommon:
      return 0;
    case Slot::kSingle:
      return 1;
    case Slot::kChain:
      return 3;
    default:
      return 2;
  }
}

std::vector<Slot> question_slots(const WorldOptions& opts, int total, Rng& rng) {
  const std::array<int, 4> hops = hop_counts(opts.hop_mix, total);
  const int comparisons = static_cast<int>(std::lround(hops[2] * opts.comparison_share));
  std::vector<Slot> slots;
  slots.insert(slots.end(), static_cast<size_t>(hops[0]), Slot::kCommon);
  slots.insert(slots.end(), static_cast<size_t>(hops[1]), Slot::kSingle);
  slots.insert(slots.end(), static_cast<size_t>(hops[2] - comparisons), Slot::kBridge);
  slots.insert(slots.end(), static_cast<size_t>(comparisons), Slot::kComparison);
  slots.insert(slots.end(), static_cast<size_t>(hops[3]), Slot::kChain);
  rng.shuffle(slots);
  return slots;
}

int split_question_count(const WorldOptions& opts, Split split) {
  switch (split) {
    case Split::kTrain:
      return opts.train;
    case Split::kDev:
      return opts.dev;
    case Split::kTest:
      return opts.test;
    default:
      return 0;
  }
}

size_t split_size(const SplitPools& pools) {
  return pools.cities.size() + pools.people.size() + pools.orgs.size() + pools.works.size();
}

}  // namespace

std::array<int, 4> hop_counts(const std::array<double, 4>& mix, int total) {
  double sum = 0;
  for (double w : mix) sum += w;
  std::array<int, 4> out{};
  std::array<double, 4> rem{};
  int given = 0;
  for (int h = 0; h < 4; ++h) {
    const double exact = sum > 0 ? total * mix[h] / sum : 0.0;
    out[h] = static_cast<int>(std::floor(exact));
    rem[h] = exact - out[h];
    given += out[h];
  }
  for (int left = total - given; left > 0; --left) {
    int best = 0;
    for (int h = 1; h < 4; ++h)
      if (rem[h] > rem[best]) best = h;
    ++out[best];
    rem[best] = -1;
  }
  return out;
}

void add_questions(World& world, Split split, const SplitPools& pools, const Rng& root) {
  const WorldOptions& opts = world.options;
  const int total = split_question_count(opts, split);
  Rng rng = root.fork(std::string("questions/") + split_name(split));
  const std::vector<Slot> slots = question_slots(opts, total, rng);
  QuestionMaker maker(world, pools, rng);
  std::set<std::string> seen;  // keys of the retrieval questions asked so far
  std::vector<Question>& out = world.questions[static_cast<size_t>(split)];
  out.reserve(slots.size());
  for (Slot slot : slots) {
    Draft d;
    bool ok = false;
    for (int attempt = 0; attempt < kMaxAttempts && !ok; ++attempt) {
      d = Draft();
      ok = maker.make(slot, d) && (slot == Slot::kCommon || seen.insert(d.key).second);
    }
    STRATA_CHECK(ok, "option --entities " << opts.entities
                                          << " is too small for the requested "
                                             "questions: the "
                                          << split_name(split) << " split has " << split_size(pools)
                                          << " entities and ran out of distinct " << slot_type(slot)
                                          << " questions after " << out.size() << " of " << total
                                          << " (raise --entities or lower --" << split_name(split)
                                          << ")");
    Question q;
    q.id = std::string(split_name(split)) + "_" + std::to_string(out.size());
    q.text = std::move(d.text);
    q.answers = std::move(d.answers);
    q.hops = slot_hops(slot);
    q.type = slot_type(slot);
    q.relation = std::move(d.relation);
    q.lookups = std::move(d.lookups);
    q.entities = std::move(d.entities);
    q.answer_entity = d.answer_entity;
    out.push_back(std::move(q));
  }
}

}  // namespace strata::env::detail
