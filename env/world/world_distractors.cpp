// Distractors: for every entity a retrieval question involves, look-alike entities of the same
// kind and split, with a confusable name and overlapping facts. Every fact some question reads
// from the original gets a different value in the look-alike (so a passage about the wrong
// entity gives a wrong answer); other facts are shared or shifted, e.g. the same birth city
// or a birth year a few years off.
#include <algorithm>
#include <string>

#include "env/world/world_internal.h"
#include "env/world/world_vocab.h"

namespace strata::env::detail {

namespace {

using FactMask = uint16_t;
static_assert(kNumFacts <= 16, "FactMask holds one bit per fact");

FactMask bit(Fact f) { return static_cast<FactMask>(1u << static_cast<unsigned>(f)); }

// A random element of `pool` other than `avoid`, preferring one for which `prefer` holds;
// `avoid` itself when the pool has nothing else.
template <class Pred>
int32_t other_than(Rng& rng, const std::vector<int32_t>& pool, int32_t avoid, Pred prefer) {
  int32_t fallback = avoid;
  for (int tries = 0; tries < 16 && !pool.empty(); ++tries) {
    const int32_t c = rng.pick(pool);
    if (c == avoid) continue;
    if (prefer(c)) return c;
    fallback = c;
  }
  if (fallback == avoid)  // tiny pools: scan for any other element
    for (int32_t c : pool)
      if (c != avoid) return c;
  return fallback;
}

int32_t other_than(Rng& rng, const std::vector<int32_t>& pool, int32_t avoid) {
  return other_than(rng, pool, avoid, [](int32_t) { return true; });
}

class DistractorMaker {
 public:
  DistractorMaker(World& world, names::Registry& registry,
                  const std::array<SplitPools, kNumSplits>& pools, Rng rng)
      : world_(world), registry_(registry), all_pools_(pools), rng_(std::move(rng)) {
    for (const Entity& e : world.entities)
      if (e.kind == Kind::kCountry) countries_.push_back(e.id);
  }

  void make(int32_t original_id, FactMask asked) {
    Entity d = world_.entity(original_id);  // a copy: same kind, split, type and facts
    d.name = names::look_alike(registry_, rng_, d.name, d.kind);
    d.distractor = true;
    d.look_alike_of = original_id;
    const SplitPools& pools = all_pools_[static_cast<size_t>(d.split)];
    auto change = [&](Fact f, double p) { return (asked & bit(f)) != 0 || rng_.bernoulli(p); };
    switch (d.kind) {
      case Kind::kPerson:
        vary_person(d, pools, change);
        break;
      case Kind::kCity:
        if (change(Fact::kCountry, 0.5)) d.country = other_than(rng_, countries_, d.country);
        break;
      case Kind::kOrg:
        vary_org(d, pools, change);
        break;
      case Kind::kWork:
        vary_work(d, pools, change);
        break;
      case Kind::kCountry:
        break;  // common knowledge has no distractors
    }
    d.id = static_cast<int32_t>(world_.entities.size());
    world_.entities.push_back(std::move(d));
  }

 private:
  // A year 1-6 years away when it must change (or by chance), else the same year.
  int32_t near_year(int32_t year, bool must_change) {
    if (!must_change) return year;
    const int32_t delta = static_cast<int32_t>(rng_.range(1, 6));
    return rng_.bernoulli(0.5) ? year - delta : year + delta;
  }

  // A different city, preferably in the same country.
  int32_t nearby_city(const SplitPools& pools, int32_t city) {
    const int32_t country = world_.entity(city).country;
    return other_than(rng_, pools.cities, city,
                      [&](int32_t c) { return world_.entity(c).country == country; });
  }

  template <class Change>
  void vary_person(Entity& d, const SplitPools& pools, Change change) {
    if (change(Fact::kOccupation, 0.3)) {
      const auto n = static_cast<uint8_t>(vocab::occupations().size());
      uint8_t occ = d.attr;
      while (occ == d.attr) occ = static_cast<uint8_t>(rng_.below(n));
      d.attr = occ;
    }
    d.year = near_year(d.year, change(Fact::kBirthYear, 0.7));
    if (change(Fact::kBirthCity, 0.5)) d.city = nearby_city(pools, d.city);
    if (change(Fact::kEmployer, 0.5)) d.org = other_than(rng_, pools.orgs, d.org);
  }

  template <class Change>
  void vary_org(Entity& d, const SplitPools& pools, Change change) {
    if (change(Fact::kFounder, 0.5)) d.person = other_than(rng_, pools.people, d.person);
    if (change(Fact::kHeadquarters, 0.5)) d.city = nearby_city(pools, d.city);
    d.year = near_year(d.year, change(Fact::kFoundingYear, 0.7));
  }

  template <class Change>
  void vary_work(Entity& d, const SplitPools& pools, Change change) {
    if (change(Fact::kCreator, 0.5)) {
      // Another creator of the same trade when there is one.
      const uint8_t occ = world_.entity(d.person).attr;
      const auto& same_trade = pools.people_by_occupation[occ];
      const int32_t other = other_than(rng_, same_trade, d.person);
      d.person = other != d.person ? other : other_than(rng_, pools.people, d.person);
    }
    d.year = near_year(d.year, change(Fact::kReleaseYear, 0.7));
    if (change(Fact::kGenre, 0.5)) {
      const auto n = static_cast<uint8_t>(vocab::work_types()[d.type].genres.size());
      uint8_t genre = d.attr;
      while (genre == d.attr) genre = static_cast<uint8_t>(rng_.below(n));
      d.attr = genre;
    }
  }

  World& world_;
  names::Registry& registry_;
  const std::array<SplitPools, kNumSplits>& all_pools_;
  Rng rng_;
  std::vector<int32_t> countries_;
};

}  // namespace

void add_distractors(World& world, names::Registry& registry,
                     const std::array<SplitPools, kNumSplits>& pools, const Rng& root) {
  const int per_entity = world.options.distractors;
  if (per_entity <= 0) return;
  // Which facts of each entity some retrieval question reads.
  std::vector<FactMask> asked(world.entities.size(), 0);
  std::vector<int32_t> targets;
  for (const auto& questions : world.questions) {
    for (const Question& q : questions) {
      if (q.hops == 0) continue;
      for (const Lookup& l : q.lookups) asked[static_cast<size_t>(l.entity)] |= bit(l.fact);
      for (int32_t id : q.entities)
        if (world.entity(id).split != Split::kCommon) targets.push_back(id);
    }
  }
  std::sort(targets.begin(), targets.end());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  world.entities.reserve(world.entities.size() + targets.size() * static_cast<size_t>(per_entity));
  DistractorMaker maker(world, registry, pools, root.fork("distractors"));
  for (int32_t id : targets)
    for (int i = 0; i < per_entity; ++i) maker.make(id, asked[static_cast<size_t>(id)]);
}

}  // namespace strata::env::detail
