// The warm start: demonstration trajectories from the built-in world's ground truth, and the
// supervised training that gives a policy the search protocol before RL.
//
// The demonstrator knows each question's entity chain (the world's `entities` field): it
// searches for each entity in turn through the real retrieval daemon, then answers. Its
// imperfections are deliberate, so that the warm-started policy follows the format but not the
// best search strategy and RL has something to fix:
//   * under_search: on a multi-hop question it stops after one search and answers with a name
//     taken from what it retrieved (usually wrong);
//   * wrong_passage: it answers with the title of a retrieved passage that is not the gold one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/model.h"
#include "agent/tokenizer/tokenizer.h"
#include "data/qa.h"
#include "env/search_env.h"
#include "retrieval/client.h"
#include "rl/precision.h"
#include "rl/distributed.h"
#include "rl/sft.h"

namespace strata::rl {

struct DemonstratorOptions {
  double under_search = 0.3;   // share of multi-hop questions answered after one search
  double wrong_passage = 0.1;  // share of answers taken from a non-gold passage title
  uint64_t seed = 1;           // choices above are drawn from this
  std::string chat = "plain";  // prompt formatting, as in RolloutOptions::chat

  void validate() const;
  template <class V>
  void visit(V& v) {
    v("under_search", under_search, "share of multi-hop questions answered after one search");
    v("wrong_passage", wrong_passage, "share of answers taken from a wrong passage");
    v("seed", seed, "seed of the demonstrator's choices");
    v("chat", chat, "prompt formatting: plain, chatml or llama3");
  }
};

struct Demonstration {
  SftExample example;      // prompt + response ids, trained = agent tokens only
  std::string text;        // the response text (for inspection)
  int searches = 0;
  bool correct = false;    // the demonstrated answer is a gold answer
};

// Builds one demonstration per question (questions need the world's `entities` metadata; for
// other data the demonstrator searches once with the question text). Retrieval failures are
// errors: a demonstration must not silently lose its observations.
std::vector<Demonstration> make_demonstrations(const std::vector<data::QaRecord>& questions,
                                               const agent::Tokenizer& tok,
                                               retrieval::RetrievalClient& client,
                                               const env::SearchEnvOptions& env,
                                               const DemonstratorOptions& opts);

struct SftOptions {
  int epochs = 2;              // passes over the demonstrations
  int batch_size = 8;          // examples per optimiser step
  double lr = 1e-3;            // AdamW learning rate
  double weight_decay = 0.0;   // AdamW weight decay
  double grad_clip = 1.0;      // global gradient-norm clip (0 = off)
  uint64_t seed = 1;           // shuffling seed
  int max_steps = 0;           // stop after this many steps (0 = no limit)
  // fp32, or bf16: forward passes under bf16 autocast on fp32 weights and fp32 AdamW (about 3x
  // faster on CPUs with AVX512-BF16, and on GPUs).
  AutocastPrecision precision = AutocastPrecision::kFp32;

  void validate() const;
  template <class V>
  void visit(V& v) {
    v("epochs", epochs, "passes over the demonstrations");
    v("batch_size", batch_size, "examples per optimiser step");
    v("lr", lr, "AdamW learning rate");
    v("weight_decay", weight_decay, "AdamW weight decay");
    v("grad_clip", grad_clip, "gradient-norm clip (0 = off)");
    v("seed", seed, "shuffling seed");
    v("max_steps", max_steps, "stop after this many steps (0 = no limit)");
    v("precision", precision, "fp32, or bf16 (autocast forward, fp32 weights and optimiser)");
  }
};

struct SftReport {
  int steps = 0;
  double first_loss = 0;
  double last_loss = 0;
  std::vector<double> losses;  // per optimiser step
  std::vector<int64_t> tokens; // trained tokens per step
};

// User trajectories for supervised fine-tuning, one JSON object per line:
//   {"prompt": TEXT, "response": TEXT}   prompt = the user message, before the chat template
//   {"question": TEXT, "response": TEXT} the prompt is env's Search-R1 instruction around it
// Each "\n\n<information>...</information>\n\n" block of the response (blank lines included, as
// the environment writes them) is retrieved text: context, never a loss target. Everything else
// in the response, and a final eos, is trained. Errors name the file and line.
std::vector<SftExample> read_sft_jsonl(const std::string& path, const agent::Tokenizer& tok,
                                       const std::string& chat,
                                       const env::SearchEnvOptions& env = {});

// One example from a prompt and a response (same rules as read_sft_jsonl).
SftExample sft_example(const agent::Tokenizer& tok, const std::string& prompt_text,
                       const std::string& response, const std::string& chat);

// Trains `model` in place (its parameters must be float32 leaves); shows progress and calls
// on_step(step, loss, trained tokens) after each optimiser step when given.
//
// Data parallel (`dist` with more than one rank; every rank holds the same `examples`): rank r
// trains on the r-th of `world` contiguous shares of each batch, its loss weighted by its share of
// the batch's trained tokens, and the gradients are summed across ranks before clipping, so N ranks
// take the steps one process takes. The reported losses and token counts are the batch's.
SftReport sft_train(agent::Model& model, const std::vector<SftExample>& examples,
                    const SftOptions& opts,
                    const std::function<void(int, double, int64_t)>& on_step = nullptr,
                    const Distributed* dist = nullptr);

}  // namespace strata::rl
