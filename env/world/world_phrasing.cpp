// Question wording: noun phrases for the entities along a relation chain ("the founder of the
// bank that employs Ana Velmor") and the question asked of the last one. Phrasing variants are
// drawn from the caller's stream; the facts never depend on them.
#include <string>
#include <vector>

#include "core/error.h"
#include "env/world/world_internal.h"
#include "env/world/world_vocab.h"

namespace strata::env::detail {

namespace {

using F = Fact;

class Phraser {
 public:
  Phraser(const World& world, Rng& rng) : world_(world), rng_(rng) {}

  // A noun phrase for chain[k], reached from chain[0] through path[0..k).
  std::string describe(const std::vector<int32_t>& chain, const std::vector<Fact>& path, size_t k) {
    if (k == 0) return name_phrase(at(chain[0]));
    const Entity& from = at(chain[k - 1]);
    const Entity& to = at(chain[k]);
    const Fact f = path[k - 1];
    if (f == F::kCountry && k >= 2 &&
        (path[k - 2] == F::kBirthCity || path[k - 2] == F::kHeadquarters)) {
      // "the country where X was born" rather than "the country of the city where ..."
      const std::string d = describe(chain, path, k - 2);
      if (path[k - 2] == F::kBirthCity) return "the country where " + d + " was born";
      return "the country where " + d + " has its headquarters";
    }
    const std::string d = describe(chain, path, k - 1);
    switch (f) {
      case F::kCreator:
        return "the " + std::string(vocab::work_types()[from.type].creator_noun) + " of " + d;
      case F::kFounder:
        return "the founder of " + d;
      case F::kEmployer: {
        const std::string noun(vocab::org_types()[to.type].noun);
        if (rng_.bernoulli(0.5))
          return "the " + noun + (past_tense(from) ? " that employed " : " that employs ") + d;
        return "the " + noun + " that " + d + (past_tense(from) ? " worked for" : " works for");
      }
      case F::kBirthCity:
        return rng_.bernoulli(0.5) ? "the city where " + d + " was born" : "the birthplace of " + d;
      case F::kHeadquarters:
        return "the city where " + d + " has its headquarters";
      case F::kCountry:
        return "the country in which " + d + " lies";
      default:
        STRATA_ASSERT(false, "no description through " << fact_name(f));
    }
    return {};
  }

  // The question text asking `last` of chain.back().
  std::string ask(const std::vector<int32_t>& chain, const std::vector<Fact>& path, Fact last) {
    const size_t k = chain.size() - 1;
    const Entity& e = at(chain[k]);
    if (last == F::kCountry && k >= 1 &&
        (path[k - 1] == F::kBirthCity || path[k - 1] == F::kHeadquarters)) {
      const std::string d = describe(chain, path, k - 1);
      if (path[k - 1] == F::kBirthCity) return "In which country was " + d + " born?";
      return "In which country does " + d + " have its headquarters?";
    }
    const std::string d = describe(chain, path, k);
    const bool past = e.kind == Kind::kPerson && past_tense(e);
    switch (last) {
      case F::kBirthCity:
        return rng_.bernoulli(0.5) ? "In which city was " + d + " born?"
                                   : "What is the birthplace of " + d + "?";
      case F::kBirthYear:
        return std::string(choose({"In what year was ", "In which year was "})) + d + " born?";
      case F::kOccupation:
        return (past ? "What was the occupation of " : "What is the occupation of ") + d + "?";
      case F::kEmployer:
        return std::string(past ? "For which organisation did " : "For which organisation does ") +
               d + " work?";
      case F::kCountry:
        if (e.split == Split::kCommon) return "Of which country is " + d + " the capital?";
        return rng_.bernoulli(0.5) ? "In which country is " + d + "?"
                                   : "In which country does the city of " + d + " lie?";
      case F::kFounder:
        return rng_.bernoulli(0.5) ? "Who founded " + d + "?" : "Who is the founder of " + d + "?";
      case F::kHeadquarters:
        return rng_.bernoulli(0.5) ? "In which city is " + d + " headquartered?"
                                   : "Where does " + d + " have its headquarters?";
      case F::kFoundingYear:
        return std::string(choose({"In what year was ", "In which year was "})) + d + " founded?";
      case F::kCreator: {
        const auto& type = vocab::work_types()[e.type];
        if (rng_.bernoulli(0.5)) return std::string(type.who_question) + " " + d + "?";
        return "Who is the " + std::string(type.creator_noun) + " of " + d + "?";
      }
      case F::kReleaseYear:
        return "In what year was " + d + " " + std::string(vocab::work_types()[e.type].released) +
               "?";
      case F::kGenre:
        return rng_.bernoulli(0.5) ? "What genre is " + d + "?"
                                   : "To which genre does " + d + " belong?";
      case F::kCapital:
        return rng_.bernoulli(0.5) ? "What is the capital of " + d + "?"
                                   : "Which city is the capital of " + d + "?";
      case F::kContinent:
        return "On which continent is " + d + "?";
      case F::kCurrency:
        return rng_.bernoulli(0.5) ? "What is the currency of " + d + "?"
                                   : "Which currency is used in " + d + "?";
      case F::kLanguage:
        return "What is the official language of " + d + "?";
    }
    return {};
  }

 private:
  const Entity& at(int32_t id) const { return world_.entity(id); }
  const char* choose(std::initializer_list<const char*> v) {
    return v.begin()[rng_.below(v.size())];
  }

  const World& world_;
  Rng& rng_;
};

}  // namespace

std::string name_phrase(const Entity& e) {
  if (e.kind != Kind::kWork) return e.name;
  return "the " + std::string(vocab::work_types()[e.type].noun) + " " + e.name;
}

std::string chain_question_text(const World& world, const std::vector<int32_t>& chain,
                                const std::vector<Fact>& path, Fact last, Rng& rng) {
  STRATA_ASSERT(chain.size() == path.size() + 1, "a chain has one more entity than relations");
  return Phraser(world, rng).ask(chain, path, last);
}

std::string comparison_text(const Entity& a, const Entity& b, bool earlier) {
  const std::string x = name_phrase(a), y = name_phrase(b);
  const std::string which = earlier ? "earlier" : "later";
  switch (a.kind) {
    case Kind::kPerson:
      return "Who was born " + which + ", " + x + " or " + y + "?";
    case Kind::kOrg:
      return "Which was founded " + which + ", " + x + " or " + y + "?";
    default:
      return std::string("Which came out ") + (earlier ? "first" : "later") + ", " + x + " or " +
             y + "?";
  }
}

}  // namespace strata::env::detail
