// inspect_rollouts: prints the trajectories of a rollouts file readably. The policy's own text
// is shown plainly and everything masked out of the loss (retrieved documents, feedback) is
// dimmed (or wrapped in [masked]…[/masked] when colour is off), so a person can check what was
// trained on.
#include <unistd.h>

#include <cstdio>
#include <map>
#include <numeric>
#include <optional>

#include "core/cli.h"
#include "env/rollout_file.h"

int main(int argc, char** argv) {
  CLI::App app{"Print the trajectories of a strata rollouts file, colouring what is masked.",
               "inspect_rollouts"};
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  std::string path;
  std::optional<int64_t> stratum;
  std::optional<double> min_reward, max_reward;
  std::string end_reason;
  int limit = 0;
  bool no_color = false, summary_only = false, show_prompt = false;
  app.add_option("file", path, "rollouts file (.pb)")->required()->check(CLI::ExistingFile);
  app.add_option("--stratum", stratum, "only trajectories with this stratum key");
  app.add_option("--min-reward", min_reward, "only trajectories with reward >= this");
  app.add_option("--max-reward", max_reward, "only trajectories with reward <= this");
  app.add_option("--end-reason", end_reason, "only this end reason (answered, max_turns, ...)");
  app.add_option("-n,--limit", limit, "print at most this many trajectories (0 = all)");
  app.add_flag("--no-color", no_color, "mark masked text with [masked]…[/masked] instead of colour");
  app.add_flag("--prompt", show_prompt, "also print each prompt");
  app.add_flag("--summary", summary_only, "only print the summary");
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    const bool color = !no_color && isatty(STDOUT_FILENO);
    const char* dim = color ? "\033[2;36m" : "[masked]";
    const char* undim = color ? "\033[0m" : "[/masked]";
    const char* bold = color ? "\033[1m" : "";
    const char* reset = color ? "\033[0m" : "";
    strata::env::RolloutReader reader(path);
    strata::env::pb::Trajectory t;
    size_t total = 0, shown = 0;
    double reward_sum = 0;
    std::map<std::string, int> by_end;
    std::map<int, int> by_searches;
    while (reader.next(t)) {
      ++total;
      if (stratum && t.stratum() != *stratum) continue;
      if (min_reward && t.reward() < *min_reward) continue;
      if (max_reward && t.reward() > *max_reward) continue;
      if (!end_reason.empty() && t.end_reason() != end_reason) continue;
      reward_sum += t.reward();
      by_end[t.end_reason()]++;
      by_searches[t.num_searches()]++;
      if (summary_only || (limit > 0 && static_cast<int>(shown) >= limit)) continue;
      ++shown;
      int trained = 0;
      for (int m : t.loss_mask()) trained += m;
      std::printf("%s── %s  group %lld sample %d  step %d%s\n", bold, t.question_id().c_str(),
                  static_cast<long long>(t.group()), t.sample(), t.step(), reset);
      std::printf("question: %s\ngold: ", t.question().c_str());
      for (int i = 0; i < t.golden_answers_size(); ++i)
        std::printf("%s%s", i ? " | " : "", t.golden_answers(i).c_str());
      std::printf("\nreward %.3f (em %.0f f1 %.2f cover %.0f, format %s)  searches %d  stratum "
                  "%lld  end %s%s%s\n",
                  t.reward(), t.em(), t.f1(), t.cover_em(), t.format_valid() ? "ok" : "bad",
                  t.num_searches(), static_cast<long long>(t.stratum()), t.end_reason().c_str(),
                  t.error().empty() ? "" : ": ", t.error().c_str());
      std::printf("tokens: prompt %d, response %d (%d trained, %d masked)\n", t.prompt_ids_size(),
                  t.response_ids_size(), trained, t.response_ids_size() - trained);
      if (show_prompt) std::printf("%s%s%s\n", dim, t.prompt_text().c_str(), undim);
      for (const auto& s : t.segments()) {
        if (s.trained())
          std::printf("%s", s.text().c_str());
        else
          std::printf("%s%s%s", dim, s.text().c_str(), undim);
      }
      std::printf("\n\n");
    }
    const size_t kept = static_cast<size_t>(
        std::accumulate(by_end.begin(), by_end.end(), 0,
                        [](int a, const auto& kv) { return a + kv.second; }));
    std::printf("%zu trajectories in %s, %zu matching, mean reward %.3f\n", total, path.c_str(),
                kept, kept ? reward_sum / static_cast<double>(kept) : 0.0);
    std::printf("by end reason:");
    for (const auto& [k, v] : by_end) std::printf(" %s=%d", k.c_str(), v);
    std::printf("\nby searches:");
    for (const auto& [k, v] : by_searches) std::printf(" %d=%d", k, v);
    std::printf("\n");
    return 0;
  });
}
