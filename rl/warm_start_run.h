// sft_train's job, from config to saved policy: the warm start's examples (demonstrations through
// the daemon, user trajectories, or corpus passages) and the supervised training on them.
//
// Writes OUT/model (Hugging Face layout, loadable by grpo_train, evaluate and transformers),
// OUT/demonstrations.jsonl (world source; the same format source=jsonl reads), OUT/sft_log.jsonl
// (loss per step), OUT/config.json, and OUT/DONE last, so a finished warm start can be reused.
#pragma once

#include <string>
#include <vector>

#include "agent/tokenizer/tokenizer.h"
#include "core/config.h"
#include "retrieval/client_urls.h"
#include "env/search_env.h"
#include "rl/sft.h"
#include "rl/warm_start.h"

namespace strata::rl {

// Where the examples come from.
enum class SftSource { kWorld, kJsonl, kCorpus };
inline constexpr config::EnumName<SftSource> kSftSourceNames[] = {
    {SftSource::kWorld, "world"}, {SftSource::kJsonl, "jsonl"}, {SftSource::kCorpus, "corpus"}};
inline config::EnumTable<SftSource> enum_names(SftSource) { return kSftSourceNames; }

struct WarmStartConfig {
  std::string model;                 // initial policy (Hugging Face directory)
  std::string out_dir = "runs/sft";  // OUT/model and the logs
  SftSource source = SftSource::kWorld;  // world (demonstrator), jsonl (user trajectories) or corpus
  std::string train_data;            // QA file with the world's `entities` (source = world)
  std::string trajectories;          // JSONL trajectories (source = jsonl)
  std::string corpus;                // passages (source = corpus: language modelling on them)
  int chunk_tokens = 128;            // source = corpus: passages are cut into pieces this long
  retrieval::RetrieverUrls retriever = "http://127.0.0.1:8000/retrieve";  // a URL or a list
  int max_examples = 0;              // use at most this many questions or trajectories (0 = all)
  int first_turn_examples = 0;       // extra short examples: questions cut after their first turn
  int threads = 0;                   // torch intra-op threads (0 = LibTorch's default)
  std::string device = "cpu";        // cpu, cuda or cuda:N (agent::pick_device)
  int save_every = 0;                // also save OUT/step_NNNNNN/ every this many steps (0 = off)
  env::SearchEnvOptions env;
  DemonstratorOptions demonstrator;
  SftOptions sft;

  template <class V>
  void visit(V& v) {
    v("model", model, "initial policy: Hugging Face model directory");
    v("out_dir", out_dir, "output directory (OUT/model is the warm-started policy)");
    v("source", source, "world (demonstrations through the daemon), jsonl (user trajectories) or corpus");
    v("train_data", train_data, "questions for the demonstrator (source = world)");
    v("trajectories", trajectories, "JSONL trajectories (source = jsonl)");
    v("corpus", corpus, "corpus.jsonl for source = corpus (next-token loss on every passage token)");
    v("chunk_tokens", chunk_tokens, "source = corpus: tokens per training piece");
    v("retriever", retriever, "retrieval endpoint, a URL or a list of them (source = world)");
    v("max_examples", max_examples, "use at most this many questions/trajectories (0 = all)");
    v("first_turn_examples", first_turn_examples,
      "extra examples made of a question and its first turn only (cheap practice at copying the "
      "entity into the query; source = world)");
    v("threads", threads, "torch threads (0 = default)");
    v("device", device, "cpu, cuda or cuda:N");
    v("save_every", save_every, "also save the policy every N steps to OUT/step_NNNNNN (0 = off)");
    v("env", env, "search environment (prompt, limits) of the demonstrations");
    v("demonstrator", demonstrator, "demonstrator imperfections (source = world)");
    v("sft", sft, "supervised training");
  }
  // Leaf keys, the device's syntax included.
  void validate() const;
};

// The examples of `cfg.source`. For world, the demonstrations (and the first-turn extras) go
// through the daemon at cfg.retriever and are written to `demonstrations_path` as JSONL.
std::vector<SftExample> build_sft_examples(const WarmStartConfig& cfg, const agent::Tokenizer& tok,
                                           const std::string& demonstrations_path);

// The whole warm start: checks (device, model folder, and for world the daemon's health: an
// unreachable one is a strata::UnreachableError), examples, training, and the outputs listed above.
SftReport run_warm_start(const WarmStartConfig& cfg);

}  // namespace strata::rl
