// Passage layout: how many passages each entity gets, in which order entities appear in the
// corpus, and the passage ids that questions' lookups read.
#include <numeric>

#include "env/world/world_internal.h"

namespace strata::env::detail {

namespace {

// People, organisations and countries have enough facts to fill two passages.
bool can_split(Kind kind) {
  return kind == Kind::kPerson || kind == Kind::kOrg || kind == Kind::kCountry;
}

}  // namespace

void lay_out_passages(World& world, const Rng& root) {
  Rng rng = root.fork("layout");
  const double share = world.options.two_passage_share;
  for (Entity& e : world.entities)
    e.num_passages = can_split(e.kind) && rng.bernoulli(share) ? 2 : 1;

  // A shuffled order, so that neither a passage id nor its neighbours tell the split, the kind
  // or which entity is the distractor (retrievers break score ties by id).
  world.corpus_order.resize(world.entities.size());
  std::iota(world.corpus_order.begin(), world.corpus_order.end(), 0);
  rng.shuffle(world.corpus_order);
  int64_t next = 0;
  for (int32_t id : world.corpus_order) {
    Entity& e = world.entities[static_cast<size_t>(id)];
    e.first_passage = next;
    next += e.num_passages;
  }
  world.num_passages = next;

  for (auto& questions : world.questions)
    for (Question& q : questions)
      for (Lookup& l : q.lookups) l.passage = fact_passage(world.entity(l.entity), l.fact);
}

}  // namespace strata::env::detail
