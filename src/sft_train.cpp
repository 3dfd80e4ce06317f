// sft_train: the warm start. Supervised fine-tuning of a policy on search-agent trajectories,
// with the loss on the agent's own tokens only (never the prompt or retrieved text).
//
//   sft_train --config configs/demo_sft.json --set retriever=http://127.0.0.1:8000/retrieve
//       source = "world": demonstrations made from the built-in world's ground truth through the
//       real retrieval daemon, with the imperfections of `demonstrator` (rl/warm_start.h).
//   sft_train --config my_sft.json --set source=jsonl --set trajectories=traj.jsonl
//       fine-tunes any Hugging Face checkpoint on user trajectories (format: rl/warm_start.h).
//
// The job itself (examples, training, outputs) is rl::run_warm_start (rl/warm_start_run.h); this
// program parses the arguments and the config.
#include <cstdio>

#include "core/cli.h"
#include "core/config.h"
#include "rl/distributed.h"
#include "rl/warm_start_run.h"

int main(int argc, char** argv) {
  CLI::App app{"Warm start: supervised fine-tuning of a search-agent policy on demonstrations "
               "(built-in world) or user trajectories (JSONL), loss on agent tokens only.",
               "sft_train"};
  app.footer(strata::cli::kExitCodesHelp);
  strata::cli::CommonOptions common;
  strata::cli::ConfigOptions cfg_opts;
  strata::cli::add_common(app, common);
  strata::cli::add_config(app, cfg_opts);
  bool list_keys = false;
  app.add_flag("--list-keys", list_keys, "list every config key with its default and exit");
  return strata::cli::run_main(app, argc, argv, [&] {
    using namespace strata;
    cli::apply_common(common);
    if (list_keys) {
      std::printf("%s", config::describe_fields(rl::WarmStartConfig{}).c_str());
      return 0;
    }
    const auto cfg = config::load<rl::WarmStartConfig>(cfg_opts.config_file, cfg_opts.sets);
    if (cfg_opts.print_config) {
      std::printf("%s\n", config::to_json(cfg).dump(2).c_str());
      return 0;
    }
    const auto report = rl::run_warm_start(cfg);
    if (rl::read_dist_env().rank != 0) return 0;  // rank 0 reports (data parallel: docs/DISTRIBUTED.md)
    std::printf("sft: %d steps, loss %.3f -> %.3f; policy in %s/model\n", report.steps, report.first_loss,
                report.last_loss, cfg.out_dir.c_str());
    return 0;
  });
}
