// Options and the generation pipeline of the QA world (see world_internal.h for the steps).
#include "env/world/world.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "env/world/world_internal.h"
#include "env/world/world_names.h"

namespace strata::env {

namespace {

constexpr int kMaxEntities = 50'000'000;
constexpr int kMaxQuestions = 10'000'000;
constexpr int kMaxDistractors = 10;

void check_count(int value, const char* flag, int lo, int hi) {
  STRATA_CHECK(value >= lo && value <= hi, "option " << flag << " must be between " << lo << " and "
                                                     << hi << ", got " << value);
}

void check_share(double value, const char* flag) {
  STRATA_CHECK(std::isfinite(value) && value >= 0.0 && value <= 1.0,
               "option " << flag << " must be between 0 and 1, got " << value);
}

int split_questions(const WorldOptions& opts, int s) {
  return s == 0 ? opts.train : s == 1 ? opts.dev : opts.test;
}

// Every split that asks retrieval questions needs enough entities of its own.
void check_split_sizes(const WorldOptions& opts) {
  const std::array<int, kNumSplits> counts = detail::split_entity_counts(opts);
  for (int s = 0; s < kNumSplits; ++s) {
    const int questions = split_questions(opts, s);
    const std::array<int, 4> hops = detail::hop_counts(opts.hop_mix, questions);
    if (questions - hops[0] == 0) continue;
    STRATA_CHECK(counts[s] >= detail::kMinSplitEntities,
                 "option --entities "
                     << opts.entities
                     << " is too small for the requested "
                        "questions: the "
                     << split_name(static_cast<Split>(s)) << " split gets " << counts[s]
                     << " of them (entities are shared out in proportion to the "
                        "splits' 1-3 hop question counts) but needs at least "
                     << detail::kMinSplitEntities << "; raise --entities or lower --"
                     << split_name(static_cast<Split>(s)));
  }
}

}  // namespace

void validate_options(const WorldOptions& opts) {
  check_count(opts.entities, "--entities", detail::kMinSplitEntities, kMaxEntities);
  check_count(opts.distractors, "--distractors", 0, kMaxDistractors);
  check_count(opts.train, "--train", 0, kMaxQuestions);
  check_count(opts.dev, "--dev", 0, kMaxQuestions);
  check_count(opts.test, "--test", 0, kMaxQuestions);
  double sum = 0;
  for (double w : opts.hop_mix) {
    STRATA_CHECK(std::isfinite(w) && w >= 0.0,
                 "option --hop-mix needs four non-negative weights, got " << w);
    sum += w;
  }
  STRATA_CHECK(sum > 0.0, "option --hop-mix needs at least one positive weight, got all zeros");
  check_share(opts.comparison_share, "--comparison-share");
  check_share(opts.two_passage_share, "--two-passage-share");
  check_split_sizes(opts);
}

std::array<double, 4> parse_hop_mix(const std::string& text) {
  std::array<double, 4> out{};
  std::stringstream in(text);
  std::string item;
  size_t n = 0;
  while (std::getline(in, item, ',')) {
    STRATA_CHECK(n < 4,
                 "option --hop-mix takes four comma-separated weights, got \"" << text << "\"");
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    STRATA_CHECK(used > 0 && used == item.size(),
                 "option --hop-mix: \"" << item << "\" is not a number (in \"" << text << "\")");
    out[n++] = v;
  }
  STRATA_CHECK(n == 4, "option --hop-mix takes four comma-separated weights (0,1,2,3 hops), got \""
                           << text << "\"");
  return out;
}

World generate_world(const WorldOptions& opts) {
  validate_options(opts);
  World world;
  world.options = opts;
  const Rng root(opts.seed);
  names::Registry registry;
  registry.reserve(static_cast<size_t>(opts.entities) + 64);
  world.entities.reserve(static_cast<size_t>(opts.entities) + 64);

  detail::add_common_knowledge(world, registry, root);
  const std::array<int, kNumSplits> counts = detail::split_entity_counts(opts);
  std::array<detail::SplitPools, kNumSplits> pools;
  for (int s = 0; s < kNumSplits; ++s)
    pools[s] = detail::add_split_entities(world, registry, static_cast<Split>(s), counts[s], root);
  for (int s = 0; s < kNumSplits; ++s)
    detail::add_questions(world, static_cast<Split>(s), pools[s], root);
  detail::add_distractors(world, registry, pools, root);
  detail::lay_out_passages(world, root);
  return world;
}

}  // namespace strata::env
