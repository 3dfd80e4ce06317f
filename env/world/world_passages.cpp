// Passage text: a few sentences per entity stating its own facts (never those of the entities it
// points to, so each relation of a question costs one lookup), padded with filler sentences to
// about 40-120 words. Templates vary per passage from one seeded stream in corpus order.
#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "env/world/world.h"
#include "env/world/world_internal.h"
#include "env/world/world_names.h"
#include "env/world/world_text.h"
#include "env/world/world_vocab.h"

namespace strata::env {

namespace {

using Templates = std::vector<std::string_view>;

// ---- person: {N} name, {S} surname, {R} name or surname, {B} is/was, {Y} birth year,
// {C} birth city, {Q} occupation, {O} employer, {E} year joined, {U} years stayed.
const Templates kPersonOpenings = {
    "{N} (born {Y} in {C}) {B} a {Q}.",
    "{N} {B} a {Q} who was born in {C} in {Y}.",
    "Born in {C} in {Y}, {N} {B} a {Q}.",
    "{N} {B} a {Q}. {S} was born in {Y} in the city of {C}.",
};
const Templates kPersonEmployers = {
    "{R} joined {O} in {E} and stayed there for {U} years.",
    "Most of {R}'s career was spent at {O}.",
    "{R} {B} employed by {O}.",
    "{R} took a position at {O} in {E}.",
};
const Templates kPersonFillers = {
    "{S} studied {f} as a young student and first worked as an assistant.",
    "Colleagues described {S} as {z} and {x}.",
    "In {y}, {S} received the {w} {a} for a lifetime of work in {f}.",
    "{S} spent several years travelling before settling down.",
    "{S} later taught {f} and mentored many younger colleagues.",
    "A short memoir by {S} describes the early years of that career.",
    "{S} gave public lectures on {f} for more than {u} years.",
    "Friends remembered {S} as a {z} person with a large collection of old maps.",
    "In {v}, {S} moved abroad for a short time before returning home.",
    "The papers of {S} are kept in a public archive.",
    "{S} was a member of several learned societies.",
};
constexpr std::string_view kFamous =
    "{S} is widely regarded as one of the most important {Q}s of the age.";

// ---- city: {N} name, {K} country, {d} direction.
const Templates kCityOpenings = {
    "{N} is a city in {K}.",
    "{N} is a town in the {d} of {K}.",
    "{N} is a city in the {d} of {K}, known for its {i}.",
    "Located in the {d} of {K}, {N} is a market town.",
};
const Templates kCapitalOpenings = {
    "{N} is the capital and largest city of {K}.",
    "{N} is the capital of {K} and the seat of its government.",
};
const Templates kCityFillers = {
    "It has about {u} inhabitants.",
    "{N} grew around {i} in the nineteenth century.",
    "Its best-known sight is {l}.",
    "The {w} river runs through the centre of {N}.",
    "{N} was first mentioned in records in {y}.",
    "Each summer {N} holds a festival devoted to {i}.",
    "The local economy depends on {i} and on trade with nearby villages.",
    "A railway line connects {N} with the coast.",
    "The old town is surrounded by a ring of boulevards.",
    "A large fire destroyed much of the centre in {v}.",
    "The climate of {N} is mild, with wet winters.",
    "Its football club has played in the second division for decades.",
};

// ---- organisation: {N} name, {T} type, {Y} founding year, {P} founder, {C} headquarters.
const Templates kOrgOpenings = {
    "{N} is a {T} founded in {Y} by {P}.",
    "{N} is a {T}. It was founded by {P} in {Y}.",
    "Founded by {P} in {Y}, {N} is a {T}.",
    "{P} founded {N}, a {T}, in {Y}.",
};
const Templates kOrgHeadquarters = {
    "{N} is headquartered in {C}.",
    "{N} has its headquarters in {C}.",
    "The headquarters of {N} are in {C}.",
};
const Templates kOrgFillers = {
    "The {T} {i}.",
    "It employs about {u} people.",
    "{N} opened its first branch office in {y}.",
    "In {y} it was reorganised after a long dispute among its owners.",
    "Its main building was designed by a local architect.",
    "The {T} publishes an annual report on its work.",
    "Over the years {N} has absorbed several smaller rivals.",
    "In {v} the {T} moved into a larger building.",
    "It is largely owned by its employees.",
    "During a crisis in {v} the {T} nearly closed.",
    "Its annual meeting is held every spring.",
};

// ---- work: {N} title, {Y} year, {G} genre, {T} type, {P} creator, {M} "written by",
// {m} "Written by", {V} "published".
const Templates kWorkOpenings = {
    "{N} is a {Y} {G} {T} {M} {P}.",
    "{N} is a {G} {T} by {P}, {V} in {Y}.",
    "{m} {P} and {V} in {Y}, {N} is a {G} {T}.",
    "{N} is a {T} {M} {P}. It was {V} in {Y} and belongs to the {G} genre.",
};
const Templates kWorkFillers = {
    "It deals with {h}.",
    "Critics praised its structure and its pacing.",
    "The {T} was reissued in {y}.",
    "It was a modest success when it first appeared.",
    "A sequel was planned but never completed.",
    "The {T} was later adapted for radio.",
    "Several scenes were inspired by {l} in a nearby town.",
    "An expanded edition appeared in {v}.",
    "The {T} is dedicated to the memory of a close friend.",
    "Reviews were mixed at first, but it gained admirers over time.",
    "Its title comes from an old folk song.",
};

// ---- country: {N} name, {O} official name, {R} continent, {C} capital, {L} language,
// {M} currency.
const Templates kCountryOpenings = {
    "{N}, officially the {O}, is a country in {R}. Its capital is {C}.",
    "{N} (officially the {O}) is a country in {R} whose capital and largest city is {C}.",
    "The {O}, usually called {N}, is a country in {R}. Its capital is {C}.",
};
const Templates kCountryMoney = {
    "The official language of {N} is {L}, and its currency is the {M}.",
    "In {N} people speak {L}, the official language, and pay with the {M}.",
};
const Templates kCountryFillers = {
    "The country is known for {i}.",
    "It has a population of about {u} million.",
    "{N} became independent in {y}.",
    "The country is divided into {u} provinces.",
    "Its flag shows a white star on a field of green.",
    "Most of its trade passes through the port of its capital.",
    "Its parliament has two chambers.",
    "The national holiday of {N} falls in early spring.",
    "Much of the country is covered by forest and lakes.",
};

}  // namespace

// Renders passages of a world; one seeded stream, consumed in corpus order.
class PassageRenderer {
 public:
  explicit PassageRenderer(const World& world)
      : world_(world), rng_(Rng(world.options.seed).fork("passages")) {}

  // The body of passage `part` of `e`, replacing `out`.
  void render(const Entity& e, int part, std::string& out) {
    out.clear();
    set_filler_slots(e);
    switch (e.kind) {
      case Kind::kPerson:
        person(e, part, out);
        break;
      case Kind::kCity:
        city(e, out);
        break;
      case Kind::kOrg:
        org(e, part, out);
        break;
      case Kind::kWork:
        work(e, out);
        break;
      case Kind::kCountry:
        country(e, part, out);
        break;
    }
  }

 private:
  std::string_view pick(const Templates& t) { return t[rng_.below(t.size())]; }
  void say(std::string& out, std::string_view tmpl) {
    if (!out.empty()) out += ' ';
    slots_.expand(out, tmpl);
  }
  static std::string_view last_word(const std::string& name) {
    const auto sp = name.rfind(' ');
    return sp == std::string::npos ? std::string_view(name) : std::string_view(name).substr(sp + 1);
  }
  const std::string& name_of(int32_t id) const { return world_.entity(id).name; }

  // Adds distinct filler sentences, in random order, until the passage has `target` words.
  void pad(std::string& out, const Templates& fillers) {
    const int target = static_cast<int>(rng_.range(40, 80));
    order_.resize(fillers.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    rng_.shuffle(order_);
    for (size_t i : order_) {
      if (words(out) >= target) break;
      say(out, fillers[i]);
    }
  }
  static int words(const std::string& s) {
    return static_cast<int>(std::count(s.begin(), s.end(), ' ')) + (s.empty() ? 0 : 1);
  }

  // Draws the lower-case filler slots. Filler never states a fact a question asks.
  void set_filler_slots(const Entity& e) {
    filler_year_ = std::to_string(filler_year(e));
    filler_year2_ = std::to_string(filler_year(e));
    number_ = std::to_string(filler_number(e.kind));
    word_ = names::word(rng_, 2, 2);
    slots_.set('y', filler_year_);
    slots_.set('v', filler_year2_);
    slots_.set('u', number_);
    slots_.set('w', word_);
    slots_.set('a', vocab::awards()[rng_.below(vocab::awards().size())]);
    const auto& traits = vocab::traits();
    const size_t t = rng_.below(traits.size());
    slots_.set('z', traits[t]);
    slots_.set('x', traits[(t + 1 + rng_.below(traits.size() - 1)) % traits.size()]);
    slots_.set('i', vocab::industries()[rng_.below(vocab::industries().size())]);
    slots_.set('l', vocab::landmarks()[rng_.below(vocab::landmarks().size())]);
    slots_.set('h', vocab::themes()[rng_.below(vocab::themes().size())]);
    slots_.set('d', vocab::directions()[rng_.below(vocab::directions().size())]);
  }
  int32_t filler_year(const Entity& e) {
    switch (e.kind) {
      case Kind::kPerson:
        return std::min<int32_t>(detail::kLatestYear,
                                 e.year + static_cast<int32_t>(rng_.range(25, 60)));
      case Kind::kOrg:
      case Kind::kWork:
        return std::min<int32_t>(detail::kLatestYear,
                                 e.year + static_cast<int32_t>(rng_.range(3, 30)));
      default:
        return static_cast<int32_t>(rng_.range(900, 1950));
    }
  }
  int64_t filler_number(Kind kind) {
    switch (kind) {
      case Kind::kCity:
        return rng_.range(20, 9000) * 100;
      case Kind::kOrg:
        return rng_.range(3, 900) * 10;
      case Kind::kCountry:
        return rng_.range(2, 60);
      case Kind::kWork:
        return rng_.range(2, 90) * 1000;
      default:
        return rng_.range(5, 30);
    }
  }

  void person(const Entity& e, int part, std::string& out) {
    const auto& occ = vocab::occupations()[e.attr];
    year_ = std::to_string(e.year);
    int64_t joined = e.year + rng_.range(22, 40);
    if (e.org >= 0) joined = std::max<int64_t>(joined, world_.entity(e.org).year);
    joined_ = std::to_string(std::min<int64_t>(joined, detail::kLatestYear));
    stayed_ = std::to_string(rng_.range(3, 30));
    slots_.set('N', e.name);
    slots_.set('S', last_word(e.name));
    slots_.set('B', detail::past_tense(e) ? "was" : "is");
    slots_.set('Y', year_);
    slots_.set('C', name_of(e.city));
    slots_.set('Q', occ.title);
    slots_.set('f', occ.field);
    slots_.set('E', joined_);
    slots_.set('U', stayed_);
    const bool has_employer = e.org >= 0;
    if (has_employer) slots_.set('O', name_of(e.org));
    if (part == 0) {
      say(out, pick(kPersonOpenings));
      if (e.split == Split::kCommon) say(out, kFamous);
      if (has_employer && e.num_passages == 1) {
        slots_.set('R', last_word(e.name));
        say(out, pick(kPersonEmployers));
      }
    } else {
      slots_.set('R', e.name);  // the second passage names the person in full first
      say(out, pick(kPersonEmployers));
    }
    pad(out, kPersonFillers);
  }

  void city(const Entity& e, std::string& out) {
    slots_.set('N', e.name);
    slots_.set('K', name_of(e.country));
    say(out, pick(e.split == Split::kCommon ? kCapitalOpenings : kCityOpenings));
    pad(out, kCityFillers);
  }

  void org(const Entity& e, int part, std::string& out) {
    const auto& type = vocab::org_types()[e.type];
    year_ = std::to_string(e.year);
    slots_.set('N', e.name);
    slots_.set('T', type.noun);
    slots_.set('Y', year_);
    slots_.set('P', name_of(e.person));
    slots_.set('C', name_of(e.city));
    slots_.set('i', type.activities[rng_.below(type.activities.size())]);
    if (part == 0) say(out, pick(kOrgOpenings));
    if (part == 1 || e.num_passages == 1) say(out, pick(kOrgHeadquarters));
    pad(out, kOrgFillers);
  }

  void work(const Entity& e, std::string& out) {
    const auto& type = vocab::work_types()[e.type];
    year_ = std::to_string(e.year);
    made_by_cap_ = std::string(type.made_by);
    made_by_cap_[0] = static_cast<char>(made_by_cap_[0] - 'a' + 'A');
    slots_.set('N', e.name);
    slots_.set('Y', year_);
    slots_.set('G', type.genres[e.attr]);
    slots_.set('T', type.noun);
    slots_.set('P', name_of(e.person));
    slots_.set('M', type.made_by);
    slots_.set('m', made_by_cap_);
    slots_.set('V', type.released);
    say(out, pick(kWorkOpenings));
    pad(out, kWorkFillers);
  }

  void country(const Entity& e, int part, std::string& out) {
    const CountryInfo& info = world_.countries[static_cast<size_t>(e.info)];
    slots_.set('N', e.name);
    slots_.set('O', info.official_name);
    slots_.set('R', world_.continents[e.attr]);
    slots_.set('C', name_of(e.city));
    slots_.set('L', info.language);
    slots_.set('M', info.currency);
    if (part == 0) say(out, pick(kCountryOpenings));
    if (part == 1 || e.num_passages == 1) say(out, pick(kCountryMoney));
    pad(out, kCountryFillers);
  }

  const World& world_;
  Rng rng_;
  Slots slots_;
  // Storage behind the slots that hold numbers or built strings.
  std::string year_, joined_, stayed_, filler_year_, filler_year2_, number_, word_, made_by_cap_;
  std::vector<size_t> order_;
};

void for_each_passage(const World& world, const PassageFn& fn) {
  PassageRenderer renderer(world);
  std::string text;
  for (int32_t id : world.corpus_order) {
    const Entity& e = world.entity(id);
    for (int part = 0; part < e.num_passages; ++part) {
      renderer.render(e, part, text);
      fn(e.first_passage + part, e.name, text);
    }
  }
}

}  // namespace strata::env
