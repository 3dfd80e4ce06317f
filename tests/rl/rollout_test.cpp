// The async rollout engine end to end: a small built-in world, a real BM25 daemon on loopback,
// a tokenizer trained on the world, and a tiny policy given the protocol by a short warm start
// (built once per test binary: tests/shared_fixture.h).
#include "rl/rollout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/tokenizer/bpe_trainer.h"
#include "agent/checkpoint.h"
#include "agent/model.h"
#include "core/error.h"
#include "data/qa.h"
#include "env/world/world.h"
#include "rl/warm_start.h"
#include "tests/loopback_daemon.h"
#include "tests/shared_fixture.h"
#include "tests/test_util.h"

namespace strata::rl {
namespace {

// The world, its index, the tokenizer and the warm-started policy are built once per test
// binary (tests/shared_fixture.h) and loaded by each test process; every test gets its own
// daemon (one test stops and restarts it) and client. The policy is only read by run_rollouts.
class Rollouts : public ::testing::Test {
 protected:
  static void build_shared(const std::string& dir) {
    env::WorldOptions w;
    w.seed = 3;
    w.entities = 300;
    w.train = 60;
    w.dev = 10;
    w.test = 10;
    env::write_world(w, dir + "/world");
    testing::LoopbackDaemon daemon(dir + "/world/corpus.jsonl", dir + "/index");

    agent::BpeTrainerOptions to;
    to.vocab_size = 700;
    to.show_progress = false;
    agent::BpeTrainer trainer(to);
    trainer.add_file(dir + "/world/corpus.jsonl");
    trainer.add_file(dir + "/world/train.jsonl");
    const std::string tok_json = agent::tokenizer_json(trainer.train(), to);
    testing::write_file(dir + "/tokenizer.json", tok_json);
    const auto tok = agent::Tokenizer::from_json(tok_json, "world-tokenizer");

    auto cfg = agent::make_tiny_config(tok.vocab_size());
    cfg.hidden_size = 64;
    cfg.intermediate_size = 128;
    cfg.num_hidden_layers = 2;
    cfg.head_dim = 16;
    cfg.eos_token_ids = {*tok.eos_id()};
    auto model = agent::init_random_model(cfg, 7);

    const auto questions = data::read_qa_file(dir + "/world/train.jsonl");
    // Give the policy the protocol: demonstrations of 1-2 searches, then an answer.
    std::vector<data::QaRecord> demo_q;
    for (const auto& q : questions)
      if (q.metadata.value("hops", 0) >= 1 && q.metadata.value("hops", 0) <= 2 && demo_q.size() < 24)
        demo_q.push_back(q);
    DemonstratorOptions dopts;
    dopts.under_search = 0.5;
    retrieval::RetrievalClient client(client_options(daemon.url(), 4));
    auto demos = make_demonstrations(demo_q, tok, client, env_options(), dopts);
    std::vector<SftExample> examples;
    for (const auto& d : demos) examples.push_back(d.example);
    SftOptions so;
    so.epochs = 30;
    so.batch_size = 8;
    so.lr = 3e-3;
    const auto rep = sft_train(model, examples, so);
    agent::save_model(model, dir + "/model");
    testing::write_file(dir + "/warm_start.json",
                        nlohmann::json{{"steps", rep.steps}, {"first_loss", rep.first_loss},
                                       {"last_loss", rep.last_loss}}
                            .dump());
  }
  static void SetUpTestSuite() {
    setenv("STRATA_NO_PROGRESS", "1", 1);
    at::set_num_threads(1);  // tiny matrices: threads only add overhead on a shared 2-core machine
    shared_ = testing::shared_fixture_dir("rl_rollouts", build_shared);
    tok_ = std::make_unique<agent::Tokenizer>(
        agent::Tokenizer::from_json(testing::read_file(shared_ + "/tokenizer.json"), "world-tokenizer"));
    model_ = std::make_unique<agent::Model>(agent::load_model(shared_ + "/model"));
    questions_ = data::read_qa_file(shared_ + "/world/train.jsonl");
  }
  static void TearDownTestSuite() {
    model_.reset();
    tok_.reset();
  }
  void SetUp() override {
    const auto rep = nlohmann::json::parse(testing::read_file(shared_ + "/warm_start.json"));
    ASSERT_LT(rep["last_loss"].get<double>(), rep["first_loss"].get<double>());
    std::fprintf(stderr, "warm start: %d steps, loss %.3f -> %.3f\n", rep["steps"].get<int>(),
                 rep["first_loss"].get<double>(), rep["last_loss"].get<double>());
    daemon_ = std::make_unique<testing::LoopbackDaemon>(shared_ + "/index");
    env_ = env_options();
  }
  void TearDown() override {
    client_.reset();
    daemon_.reset();
  }

  static env::SearchEnvOptions env_options() {
    env::SearchEnvOptions e;
    e.max_turn_tokens = 48;
    e.max_obs_tokens = 120;
    e.max_response_tokens = 900;
    return e;
  }
  static retrieval::ClientOptions client_options(const std::string& url, int attempts) {
    retrieval::ClientOptions co;
    co.url = url;
    co.max_attempts = attempts;
    co.backoff_initial_ms = 20;
    co.backoff_max_ms = 100;
    co.timeout_ms = 5000;
    return co;
  }

  retrieval::RetrievalClient* client(int attempts = 4) {
    if (!client_ || client_->options().max_attempts != attempts)
      client_ = std::make_unique<retrieval::RetrievalClient>(client_options(daemon_->url(), attempts));
    return client_.get();
  }
  RolloutOptions options(double temperature, uint64_t seed) const {
    RolloutOptions o;
    o.samples_per_prompt = 3;
    o.temperature = temperature;
    o.seed = seed;
    o.max_batch = 8;
    o.max_seq_len = 1280;
    o.env = env_;
    return o;
  }
  std::vector<data::QaRecord> prompts(size_t n) const {
    return {questions_.begin() + 30, questions_.begin() + 30 + static_cast<long>(n)};
  }

  static inline std::string shared_;
  static inline std::unique_ptr<agent::Tokenizer> tok_;
  static inline std::unique_ptr<agent::Model> model_;
  static inline std::vector<data::QaRecord> questions_;
  std::unique_ptr<testing::LoopbackDaemon> daemon_;
  std::unique_ptr<retrieval::RetrievalClient> client_;
  env::SearchEnvOptions env_;
};

TEST_F(Rollouts, EveryTrajectoryEndsWithAReasonAndItsTensorsLineUp) {
  const auto batch = run_rollouts(*model_, *tok_, *client(), prompts(4), options(1.0, 11), 3, 100);
  ASSERT_EQ(batch.trajectories.size(), 12u);
  const std::set<std::string> reasons = {"answered", "max_turns", "max_response_tokens"};
  int searched = 0;
  for (size_t i = 0; i < batch.trajectories.size(); ++i) {
    const auto& t = batch.trajectories[i];
    EXPECT_TRUE(reasons.count(t.end_reason())) << t.end_reason();
    EXPECT_EQ(t.group(), 100 + static_cast<int64_t>(i / 3));
    EXPECT_EQ(t.sample(), static_cast<int>(i % 3));
    EXPECT_EQ(t.step(), 3);
    ASSERT_EQ(t.loss_mask_size(), t.response_ids_size());
    ASSERT_EQ(t.behaviour_logprobs_size(), t.response_ids_size());
    int obs_tokens = 0;
    for (const auto& turn : t.turns()) obs_tokens += turn.observation_tokens();
    int masked = 0;
    for (int k = 0; k < t.response_ids_size(); ++k) {
      if (t.loss_mask(k) == 0) {
        ++masked;
        EXPECT_EQ(t.behaviour_logprobs(k), 0.0f);
      } else {
        EXPECT_LE(t.behaviour_logprobs(k), 0.0f);
        EXPECT_TRUE(std::isfinite(t.behaviour_logprobs(k)));
      }
    }
    EXPECT_EQ(masked, obs_tokens) << "the mask covers exactly the observation tokens";
    std::string joined;
    for (const auto& s : t.segments()) joined += s.text();
    std::vector<int32_t> ids(t.response_ids().begin(), t.response_ids().end());
    EXPECT_EQ(joined, tok_->decode(ids));
    searched += t.num_searches() > 0;
    EXPECT_EQ(t.stratum(), t.num_searches());
  }
  EXPECT_GT(searched, 0) << "the warm-started policy should search; first trajectory:\n"
                         << batch.trajectories[0].segments(0).text();
  EXPECT_GT(batch.metrics.generated_tokens, 0);
  EXPECT_GT(batch.metrics.mean_occupancy, 0.0);
  EXPECT_EQ(batch.metrics.failed, 0);
}

TEST_F(Rollouts, SameSeedSameTrajectories) {
  const auto a = run_rollouts(*model_, *tok_, *client(), prompts(3), options(1.0, 5));
  const auto b = run_rollouts(*model_, *tok_, *client(), prompts(3), options(1.0, 5));
  ASSERT_EQ(a.trajectories.size(), b.trajectories.size());
  for (size_t i = 0; i < a.trajectories.size(); ++i) {
    EXPECT_EQ(a.trajectories[i].response_ids_size(), b.trajectories[i].response_ids_size()) << i;
    EXPECT_TRUE(std::equal(a.trajectories[i].response_ids().begin(),
                           a.trajectories[i].response_ids().end(),
                           b.trajectories[i].response_ids().begin(),
                           b.trajectories[i].response_ids().end()))
        << "trajectory " << i;
  }
}

TEST_F(Rollouts, SyncBaselineMatchesAsyncUnderGreedy) {
  auto o = options(0.0, 1);
  const auto a = run_rollouts(*model_, *tok_, *client(), prompts(3), o);
  o.sync_search = true;
  const auto s = run_rollouts(*model_, *tok_, *client(), prompts(3), o);
  ASSERT_EQ(a.trajectories.size(), s.trajectories.size());
  for (size_t i = 0; i < a.trajectories.size(); ++i)
    EXPECT_EQ(a.trajectories[i].SerializeAsString().size() > 0 &&
                  std::equal(a.trajectories[i].response_ids().begin(),
                             a.trajectories[i].response_ids().end(),
                             s.trajectories[i].response_ids().begin(),
                             s.trajectories[i].response_ids().end()),
              true)
        << "trajectory " << i;
}

TEST_F(Rollouts, DaemonDownGivesFailedTrajectoriesThenRecovers) {
  daemon_->stop();
  const auto down = run_rollouts(*model_, *tok_, *client(2), prompts(4), options(0.0, 2));
  int failed = 0;
  for (const auto& t : down.trajectories) {
    if (t.end_reason() == "retrieval_failed") {
      ++failed;
      EXPECT_FALSE(t.error().empty());
      EXPECT_EQ(t.turns(t.turns_size() - 1).retrieval_attempts(), 2);
    } else {
      EXPECT_EQ(t.num_searches(), 0) << "a trajectory that searched cannot have succeeded";
    }
  }
  EXPECT_GT(failed, 0);
  EXPECT_EQ(down.metrics.failed, failed);
  // The daemon comes back on the same port: the next phase succeeds.
  daemon_->start(daemon_->port());
  const auto up = run_rollouts(*model_, *tok_, *client(2), prompts(4), options(0.0, 2));
  EXPECT_EQ(up.metrics.failed, 0);
  int searched = 0;
  for (const auto& t : up.trajectories) searched += t.num_searches();
  EXPECT_GT(searched, 0);
}

}  // namespace
}  // namespace strata::rl
