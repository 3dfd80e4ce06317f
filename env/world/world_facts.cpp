// Names of kinds, splits and facts, and what each fact of an entity says (its answers, the
// entity it points to, the passage that states it).
#include <string>

#include "core/error.h"
#include "env/world/world.h"
#include "env/world/world_internal.h"
#include "env/world/world_vocab.h"

namespace strata::env {

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kCountry:
      return "country";
    case Kind::kCity:
      return "city";
    case Kind::kPerson:
      return "person";
    case Kind::kOrg:
      return "organisation";
    case Kind::kWork:
      return "work";
  }
  return "?";
}

const char* split_name(Split split) {
  switch (split) {
    case Split::kCommon:
      return "common";
    case Split::kTrain:
      return "train";
    case Split::kDev:
      return "dev";
    case Split::kTest:
      return "test";
  }
  return "?";
}

const char* fact_name(Fact fact) {
  switch (fact) {
    case Fact::kBirthCity:
      return "person.birth_city";
    case Fact::kBirthYear:
      return "person.birth_year";
    case Fact::kOccupation:
      return "person.occupation";
    case Fact::kEmployer:
      return "person.employer";
    case Fact::kCountry:
      return "city.country";
    case Fact::kFounder:
      return "org.founder";
    case Fact::kHeadquarters:
      return "org.headquarters";
    case Fact::kFoundingYear:
      return "org.founding_year";
    case Fact::kCreator:
      return "work.creator";
    case Fact::kReleaseYear:
      return "work.year";
    case Fact::kGenre:
      return "work.genre";
    case Fact::kCapital:
      return "country.capital";
    case Fact::kContinent:
      return "country.continent";
    case Fact::kCurrency:
      return "country.currency";
    case Fact::kLanguage:
      return "country.language";
  }
  return "?";
}

Kind fact_subject(Fact fact) {
  switch (fact) {
    case Fact::kBirthCity:
    case Fact::kBirthYear:
    case Fact::kOccupation:
    case Fact::kEmployer:
      return Kind::kPerson;
    case Fact::kCountry:
      return Kind::kCity;
    case Fact::kFounder:
    case Fact::kHeadquarters:
    case Fact::kFoundingYear:
      return Kind::kOrg;
    case Fact::kCreator:
    case Fact::kReleaseYear:
    case Fact::kGenre:
      return Kind::kWork;
    case Fact::kCapital:
    case Fact::kContinent:
    case Fact::kCurrency:
    case Fact::kLanguage:
      return Kind::kCountry;
  }
  return Kind::kPerson;
}

bool fact_is_relation(Fact fact) {
  switch (fact) {
    case Fact::kBirthCity:
    case Fact::kEmployer:
    case Fact::kCountry:
    case Fact::kFounder:
    case Fact::kHeadquarters:
    case Fact::kCreator:
    case Fact::kCapital:
      return true;
    default:
      return false;
  }
}

int32_t fact_target(const Entity& e, Fact fact) {
  STRATA_ASSERT(fact_subject(fact) == e.kind,
                "fact " << fact_name(fact) << " asked of a " << kind_name(e.kind));
  switch (fact) {
    case Fact::kBirthCity:
    case Fact::kHeadquarters:
    case Fact::kCapital:
      return e.city;
    case Fact::kEmployer:
      return e.org;
    case Fact::kCountry:
      return e.country;
    case Fact::kFounder:
    case Fact::kCreator:
      return e.person;
    default:
      return -1;
  }
}

std::vector<std::string> fact_answers(const World& world, const Entity& e, Fact fact) {
  if (fact_is_relation(fact)) {
    const int32_t target = fact_target(e, fact);
    STRATA_ASSERT(target >= 0, e.name << " has no " << fact_name(fact));
    const Entity& t = world.entity(target);
    std::vector<std::string> out = {t.name};
    if (t.kind == Kind::kCountry) out.push_back(world.countries[t.info].official_name);
    return out;
  }
  switch (fact) {
    case Fact::kBirthYear:
    case Fact::kFoundingYear:
    case Fact::kReleaseYear:
      return {std::to_string(e.year)};
    case Fact::kOccupation: {
      std::string title(vocab::occupations()[e.attr].title);
      if (title == "film director") return {title, "director"};
      return {title};
    }
    case Fact::kGenre:
      return {std::string(vocab::work_types()[e.type].genres[e.attr])};
    case Fact::kContinent:
      return {world.continents[e.attr]};
    case Fact::kCurrency:
      return {world.countries[e.info].currency};
    case Fact::kLanguage:
      return {world.countries[e.info].language};
    default:
      STRATA_ASSERT(false, "unhandled fact " << fact_name(fact));
  }
  return {};
}

int64_t fact_passage(const Entity& e, Fact fact) {
  STRATA_ASSERT(e.first_passage >= 0, "passages of " << e.name << " are not laid out yet");
  if (e.num_passages < 2) return e.first_passage;
  return e.first_passage + detail::fact_part(fact);
}

namespace detail {

int fact_part(Fact fact) {
  // The second passage of a two-passage article: a person's career, an organisation's
  // premises, a country's language and money.
  switch (fact) {
    case Fact::kEmployer:
    case Fact::kHeadquarters:
    case Fact::kCurrency:
    case Fact::kLanguage:
      return 1;
    default:
      return 0;
  }
}

}  // namespace detail
}  // namespace strata::env
