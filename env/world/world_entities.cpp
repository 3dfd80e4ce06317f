// The entity graph: common knowledge shared by all splits, and each split's own people,
// cities, organisations and works, related only among themselves (and to common countries).
#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "env/world/world_internal.h"
#include "env/world/world_vocab.h"

namespace strata::env::detail {

namespace {

constexpr int kContinents = 4;
constexpr int kCountries = 12;
constexpr int kFamousPeople = 6;

// Shares of a split's entities by kind (people take the rest).
constexpr double kCityShare = 0.12;
constexpr double kOrgShare = 0.20;
constexpr double kWorkShare = 0.30;
// Share of people with an occupation that creates works (writer, film director, musician).
constexpr double kCreatorShare = 0.4;

int32_t pick_id(Rng& rng, const std::vector<int32_t>& ids) { return rng.pick(ids); }

std::vector<int32_t> ids_of_kind(const World& world, Kind kind) {
  std::vector<int32_t> out;
  for (const Entity& e : world.entities)
    if (e.kind == kind && e.split == Split::kCommon) out.push_back(e.id);
  return out;
}

// The occupation indices that create works, and the others.
void occupation_groups(std::vector<uint8_t>& creators, std::vector<uint8_t>& others) {
  const auto& occ = vocab::occupations();
  for (size_t i = 0; i < occ.size(); ++i)
    (occ[i].creates_work >= 0 ? creators : others).push_back(static_cast<uint8_t>(i));
}

void add_cities(World& world, names::Registry& registry, Rng rng, int count, Split split,
                SplitPools& pools) {
  const std::vector<int32_t> countries = ids_of_kind(world, Kind::kCountry);
  for (int i = 0; i < count; ++i) {
    std::string name = names::unique(registry, [&](int s) { return names::city_name(rng, s); });
    Entity& city = add_entity(world, Kind::kCity, split, std::move(name));
    city.country = pick_id(rng, countries);
    pools.cities.push_back(city.id);
  }
}

void add_people(World& world, names::Registry& registry, Rng rng, int count, Split split,
                SplitPools& pools) {
  std::vector<uint8_t> creators, others;
  occupation_groups(creators, others);
  pools.people_by_occupation.assign(vocab::occupations().size(), {});
  for (int i = 0; i < count; ++i) {
    std::string name = names::unique(registry, [&](int s) { return names::person_name(rng, s); });
    Entity& p = add_entity(world, Kind::kPerson, split, std::move(name));
    // The first people cover every creating occupation, so each kind of work has a creator.
    if (i < static_cast<int>(creators.size())) {
      p.attr = creators[static_cast<size_t>(i)];
    } else {
      p.attr = rng.bernoulli(kCreatorShare) ? rng.pick(creators) : rng.pick(others);
    }
    p.year = static_cast<int32_t>(rng.range(1850, 1990));
    p.city = pick_id(rng, pools.cities);
    pools.people.push_back(p.id);
    pools.people_by_occupation[p.attr].push_back(p.id);
  }
}

void add_orgs(World& world, names::Registry& registry, Rng rng, int count, Split split,
              SplitPools& pools) {
  const auto& types = vocab::org_types();
  for (int i = 0; i < count; ++i) {
    const auto type = static_cast<uint8_t>(rng.below(types.size()));
    std::string name =
        names::unique(registry, [&](int s) { return names::org_name(rng, types[type], s); });
    const int32_t founder = pick_id(rng, pools.people);
    const int32_t founded = std::min<int32_t>(
        kLatestYear - 1, world.entity(founder).year + static_cast<int32_t>(rng.range(25, 60)));
    Entity& org = add_entity(world, Kind::kOrg, split, std::move(name));
    org.type = type;
    org.person = founder;
    org.year = founded;
    org.city = pick_id(rng, pools.cities);
    pools.orgs.push_back(org.id);
  }
}

void add_employers(World& world, Rng rng, const SplitPools& pools) {
  for (int32_t id : pools.people) {
    const int32_t born = world.entity(id).year;
    int32_t org = pick_id(rng, pools.orgs);
    // Prefer an organisation that existed during the person's working life.
    for (int tries = 0; tries < 8 && world.entity(org).year > born + 50; ++tries)
      org = pick_id(rng, pools.orgs);
    world.entities[static_cast<size_t>(id)].org = org;
  }
}

void add_works(World& world, names::Registry& registry, Rng rng, int count, Split split,
               SplitPools& pools) {
  const auto& occ = vocab::occupations();
  std::vector<uint8_t> creators, others;
  occupation_groups(creators, others);
  for (int i = 0; i < count; ++i) {
    const uint8_t occupation = creators[static_cast<size_t>(i) % creators.size()];
    const auto& makers = pools.people_by_occupation[occupation];
    STRATA_ASSERT(!makers.empty(), "no " << occ[occupation].title << " to create works");
    const int32_t creator = pick_id(rng, makers);
    const auto type = static_cast<uint8_t>(occ[occupation].creates_work);
    const int32_t year = std::min<int32_t>(
        kLatestYear, world.entity(creator).year + static_cast<int32_t>(rng.range(20, 65)));
    std::string name = names::unique(registry, [&](int s) { return names::work_title(rng, s); });
    Entity& work = add_entity(world, Kind::kWork, split, std::move(name));
    work.type = type;
    work.person = creator;
    work.year = year;
    work.attr = static_cast<uint8_t>(rng.below(vocab::work_types()[type].genres.size()));
    pools.works.push_back(work.id);
  }
}

int share_of(int total, double share, int minimum) {
  return std::max(minimum, static_cast<int>(std::lround(total * share)));
}

}  // namespace

Entity& add_entity(World& world, Kind kind, Split split, std::string name) {
  Entity e;
  e.id = static_cast<int32_t>(world.entities.size());
  e.kind = kind;
  e.split = split;
  e.name = std::move(name);
  world.entities.push_back(std::move(e));
  return world.entities.back();
}

void add_common_knowledge(World& world, names::Registry& registry, const Rng& root) {
  Rng rng = root.fork("common");
  for (int i = 0; i < kContinents; ++i)
    world.continents.push_back(
        names::unique(registry, [&](int s) { return names::continent_name(rng, s); }));

  static const char* const kForms[] = {"Republic of", "Kingdom of", "Federation of",
                                       "Commonwealth of", "Grand Duchy of"};
  std::vector<uint8_t> continent_of;
  for (int i = 0; i < kCountries; ++i)
    continent_of.push_back(static_cast<uint8_t>(i % kContinents));
  rng.shuffle(continent_of);
  for (int i = 0; i < kCountries; ++i) {
    CountryInfo info;
    std::string name = names::unique(registry, [&](int s) { return names::country_name(rng, s); });
    info.official_name = std::string(kForms[rng.below(5)]) + " " + name;
    registry.claim(info.official_name);
    info.currency = names::unique(registry, [&](int s) { return names::currency_name(rng, s); });
    info.language = names::unique(registry, [&](int s) { return names::language_name(rng, s); });
    Entity& country = add_entity(world, Kind::kCountry, Split::kCommon, std::move(name));
    country.attr = continent_of[static_cast<size_t>(i)];
    country.info = static_cast<int16_t>(world.countries.size());
    world.countries.push_back(std::move(info));
  }
  const std::vector<int32_t> countries = ids_of_kind(world, Kind::kCountry);
  std::vector<int32_t> capitals;
  for (int32_t country : countries) {
    std::string name = names::unique(registry, [&](int s) { return names::city_name(rng, s); });
    Entity& capital = add_entity(world, Kind::kCity, Split::kCommon, std::move(name));
    capital.country = country;
    capitals.push_back(capital.id);
    world.entities[static_cast<size_t>(country)].city = capital.id;
  }
  for (int i = 0; i < kFamousPeople; ++i) {
    std::string name = names::unique(registry, [&](int s) { return names::person_name(rng, s); });
    Entity& p = add_entity(world, Kind::kPerson, Split::kCommon, std::move(name));
    p.attr = static_cast<uint8_t>(rng.below(vocab::occupations().size()));
    p.year = static_cast<int32_t>(rng.range(1800, 1950));
    p.city = pick_id(rng, capitals);
  }
}

std::array<int, kNumSplits> split_entity_counts(const WorldOptions& opts) {
  // Only retrieval questions (1-3 hops) need a split's own entities.
  std::array<int64_t, kNumSplits> questions{};
  const std::array<int, kNumSplits> asked = {opts.train, opts.dev, opts.test};
  for (int s = 0; s < kNumSplits; ++s)
    questions[s] = asked[s] - hop_counts(opts.hop_mix, asked[s])[0];
  const int64_t total = questions[0] + questions[1] + questions[2];
  std::array<int, kNumSplits> out = {0, 0, 0};
  if (total == 0) {  // no retrieval questions (a bare benchmark corpus): all go to "train"
    out[0] = opts.entities;
    return out;
  }
  // Largest remainder, ties to the earlier split, so the counts sum to opts.entities exactly.
  std::array<int64_t, kNumSplits> rem{};
  int64_t given = 0;
  for (int s = 0; s < kNumSplits; ++s) {
    const int64_t num = static_cast<int64_t>(opts.entities) * questions[s];
    out[s] = static_cast<int>(num / total);
    rem[s] = num % total;
    given += out[s];
  }
  for (int64_t left = opts.entities - given; left > 0; --left) {
    int best = 0;
    for (int s = 1; s < kNumSplits; ++s)
      if (rem[s] > rem[best]) best = s;
    ++out[best];
    rem[best] = -1;
  }
  return out;
}

SplitPools add_split_entities(World& world, names::Registry& registry, Split split, int count,
                              const Rng& root) {
  SplitPools pools;
  if (count == 0) return pools;
  STRATA_ASSERT(count >= kMinSplitEntities, "split " << split_name(split) << " too small");
  const Rng rng = root.fork(std::string("split/") + split_name(split));
  const int cities = share_of(count, kCityShare, 2);
  const int orgs = share_of(count, kOrgShare, 2);
  const int works = share_of(count, kWorkShare, 3);
  const int people = count - cities - orgs - works;
  std::vector<uint8_t> creators, others;
  occupation_groups(creators, others);
  STRATA_ASSERT(people >= static_cast<int>(creators.size()),
                "too few people in split " << split_name(split) << " to create every kind of work");
  add_cities(world, registry, rng.fork("cities"), cities, split, pools);
  add_people(world, registry, rng.fork("people"), people, split, pools);
  add_orgs(world, registry, rng.fork("orgs"), orgs, split, pools);
  add_employers(world, rng.fork("employers"), pools);
  add_works(world, registry, rng.fork("works"), works, split, pools);
  return pools;
}

}  // namespace strata::env::detail
