// The warm start's supervised loss: which tokens are targets (agent text only), the JSONL reader
// of user trajectories, and the loss value against a direct computation over all positions.
#include "rl/sft.h"

#include <gtest/gtest.h>

#include "agent/tokenizer/bpe_trainer.h"
#include "agent/logprobs.h"
#include "core/error.h"
#include "rl/rollout.h"
#include "rl/warm_start.h"
#include "tests/test_util.h"

namespace strata::rl {
namespace {

agent::Tokenizer small_tokenizer() {
  agent::BpeTrainerOptions to;
  to.vocab_size = 300;
  to.show_progress = false;
  agent::BpeTrainer trainer(to);
  trainer.add_text("<think>I need to search.</think>\n<search> Befo Studios </search>");
  trainer.add_text("<information>Doc 1(Title: \"Befo Studios\") Befo Studios was founded by Maiga Blodu.</information>");
  trainer.add_text("<answer> Maiga Blodu </answer> Who founded Befo Studios?");
  return agent::Tokenizer::from_json(agent::tokenizer_json(trainer.train(), to), "small");
}

const std::string kAgent1 = "<think>I need to search.</think>\n<search> Befo Studios </search>";
const std::string kInfo =
    "\n\n<information>Doc 1(Title: \"Befo Studios\") Befo Studios was founded by Maiga Blodu.</information>\n\n";
const std::string kAgent2 = "<answer> Maiga Blodu </answer>";

TEST(SftExample, OnlyTheAgentsOwnTextAndEosAreTargets) {
  const auto tok = small_tokenizer();
  const auto ex = sft_example(tok, "Who founded Befo Studios?", kAgent1 + kInfo + kAgent2, "plain");
  ASSERT_EQ(ex.ids.size(), ex.trained.size());
  const auto prompt = encode_prompt(tok, "Who founded Befo Studios?", "plain");
  for (size_t i = 0; i < prompt.size(); ++i) EXPECT_EQ(ex.trained[i], 0) << "prompt token " << i;
  std::vector<int32_t> trained, context;
  for (size_t i = prompt.size(); i < ex.ids.size(); ++i) (ex.trained[i] ? trained : context).push_back(ex.ids[i]);
  EXPECT_EQ(trained.back(), *tok.eos_id());
  trained.pop_back();
  EXPECT_EQ(tok.decode(trained), kAgent1 + kAgent2);
  EXPECT_EQ(tok.decode(context), kInfo);  // the retrieved block, blank lines included
}

TEST(SftExample, JsonlReaderTakesPromptOrQuestionAndNamesBadLines) {
  const auto tok = small_tokenizer();
  testing::TempDir dir;
  testing::write_file(dir.file("t.jsonl"),
                      "{\"prompt\": \"Who founded Befo Studios?\", \"response\": " +
                          nlohmann::json(kAgent1 + kInfo + kAgent2).dump() + "}\n\n"
                          "{\"question\": \"Who founded Befo Studios?\", \"response\": \"<answer> x </answer>\"}\n");
  const auto ex = read_sft_jsonl(dir.file("t.jsonl"), tok, "plain");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].ids, sft_example(tok, "Who founded Befo Studios?", kAgent1 + kInfo + kAgent2, "plain").ids);
  // "question" is wrapped in the environment's instruction, so its prompt is longer.
  EXPECT_GT(ex[1].ids.size(), encode_prompt(tok, "Who founded Befo Studios?", "plain").size());

  testing::write_file(dir.file("bad.jsonl"), "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\"}\n");
  const auto msg = testing::error_of([&] { read_sft_jsonl(dir.file("bad.jsonl"), tok, "plain"); });
  EXPECT_NE(msg.find("bad.jsonl:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("response"), std::string::npos) << msg;
  testing::write_file(dir.file("open.jsonl"), "{\"prompt\": \"a\", \"response\": \"<information> never closed\"}\n");
  EXPECT_NE(testing::error_of([&] { read_sft_jsonl(dir.file("open.jsonl"), tok, "plain"); }).find("open.jsonl:1"),
            std::string::npos);
}

// The loss runs the lm_head at trained positions only; it must equal the mean NLL of the trained
// targets computed over every position.
TEST(SftLoss, EqualsTheMeanNllOfTrainedTargetsOverAFullForward) {
  at::set_num_threads(1);
  const auto tok = small_tokenizer();
  auto cfg = agent::make_tiny_config(tok.vocab_size());
  cfg.hidden_size = 32;
  cfg.intermediate_size = 64;
  cfg.num_hidden_layers = 2;
  cfg.head_dim = 8;
  auto model = agent::init_random_model(cfg, 3);
  model.set_requires_grad(true);
  std::vector<SftExample> batch = {
      sft_example(tok, "Who founded Befo Studios?", kAgent1 + kInfo + kAgent2, "plain"),
      sft_example(tok, "Who?", kAgent2, "plain")};
  const auto got = sft_loss(model, batch);
  double sum = 0;
  int64_t n = 0;
  for (const auto& e : batch) {
    auto ids = torch::tensor(std::vector<int64_t>(e.ids.begin(), e.ids.end())).unsqueeze(0);
    const auto lp = agent::sequence_logprobs(model, ids, torch::ones_like(ids)).logprobs[0];
    for (size_t t = 1; t < e.ids.size(); ++t)
      if (e.trained[t]) {
        sum -= lp[static_cast<int64_t>(t) - 1].item<double>();
        ++n;
      }
  }
  EXPECT_EQ(got.tokens, n);
  EXPECT_NEAR(got.loss.item<double>(), sum / n, 1e-5);
  // Gradients reach the parameters.
  got.loss.backward();
  double gnorm = 0;
  for (const auto& p : model.parameters())
    if (p.grad().defined()) gnorm += p.grad().norm().item<double>();
  EXPECT_GT(gnorm, 0.0);
}

}  // namespace
}  // namespace strata::rl
