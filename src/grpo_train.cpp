// grpo_train: Stratified GRPO (or GRPO) training of a search agent against a retrieval daemon.
//   grpo_train --config configs/demo.json [--set advantage.estimator=grpo] [--print-config]
//   grpo_train --config configs/qwen2.5-3b_nq_hotpotqa_stratified_bm25.json [--resume]
//   torchrun --nproc-per-node 2 --no-python build/bin/grpo_train --config ...   (data parallel,
//   rl/distributed.h and docs/DISTRIBUTED.md)
// Every config error (keys, device, model folder, tokenizer, QA file) is reported with exit status
// 2, an unreachable retrieval daemon with 3, before any weights are loaded (rl/trainer.h).
#include <cstdio>

#include "core/cli.h"
#include "core/config.h"
#include "rl/distributed.h"
#include "rl/trainer.h"

int main(int argc, char** argv) {
  CLI::App app{"Train a search agent with Stratified GRPO (or GRPO) against a retrieval daemon.",
               "grpo_train"};
  app.footer(strata::cli::kExitCodesHelp);
  strata::cli::CommonOptions common;
  strata::cli::ConfigOptions cfg_opts;
  strata::cli::add_common(app, common);
  strata::cli::add_config(app, cfg_opts);
  bool list_keys = false;
  bool resume = false;
  app.add_flag("--resume", resume, "continue from the newest checkpoint in OUT/checkpoints");
  app.add_flag("--list-keys", list_keys, "list every config key with its default and exit");
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    if (list_keys) {
      std::printf("%s", strata::config::describe_fields(strata::rl::TrainerConfig{}).c_str());
      return 0;
    }
    const auto cfg = strata::config::load<strata::rl::TrainerConfig>(cfg_opts.config_file, cfg_opts.sets);
    if (cfg_opts.print_config) {
      std::printf("%s\n", strata::config::to_json(cfg).dump(2).c_str());
      return 0;
    }
    const auto s = strata::rl::train_grpo(cfg, resume);
    if (strata::rl::read_dist_env().rank == 0)  // rank 0 holds the metrics (docs/DISTRIBUTED.md)
      std::printf("%s\n", strata::rl::format_summary(s).c_str());
    return 0;
  });
}
