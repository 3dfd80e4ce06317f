// make_world: writes the built-in QA world (corpus, train/dev/test questions, manifest).
//
//   make_world --out runs/world --seed 1
//   make_world --out /data/bench --entities 870000   # about 1.0M passages, ~5 s
#include <string>

#include "core/cli.h"
#include "core/log.h"
#include "env/world/world.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Write the built-in QA world: an invented encyclopedia (corpus.jsonl, Search-R1 format) and "
      "0-3 hop questions about it (train/dev/test.jsonl, FlashRAG format), plus world.json. The "
      "same options always give byte-identical files.",
      "make_world"};
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  strata::env::WorldOptions opts;
  std::string out_dir;
  std::string hop_mix;
  app.add_option("-o,--out", out_dir, "directory to write into (created if missing)")->required();
  app.add_option("--seed", opts.seed, "random seed")->capture_default_str();
  app.add_option("--entities", opts.entities,
                 "invented people, cities, organisations and works, before distractors "
                 "(about 1.15 passages each)")
      ->capture_default_str();
  app.add_option("--distractors", opts.distractors,
                 "look-alike entities per entity a retrieval question involves")
      ->capture_default_str();
  app.add_option("--train", opts.train, "questions in train.jsonl")->capture_default_str();
  app.add_option("--dev", opts.dev, "questions in dev.jsonl")->capture_default_str();
  app.add_option("--test", opts.test, "questions in test.jsonl")->capture_default_str();
  app.add_option("--hop-mix", hop_mix,
                 "relative weights of 0,1,2,3-hop questions, e.g. 15,35,35,15 "
                 "[default: 0.15,0.35,0.35,0.15]");
  app.add_option("--comparison-share", opts.comparison_share,
                 "share of 2-hop questions that are comparisons")
      ->capture_default_str();
  app.add_option("--two-passage-share", opts.two_passage_share,
                 "share of people, organisations and countries written as two passages")
      ->capture_default_str();
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    if (!hop_mix.empty()) opts.hop_mix = strata::env::parse_hop_mix(hop_mix);
    strata::env::write_world(opts, out_dir);
    STRATA_LOG_INFO("wrote the world to {}", out_dir);
    return 0;
  });
}
