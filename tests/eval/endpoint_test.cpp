// evaluate --endpoint end to end on every QA format in ../shared/data/real, with a scripted
// policy behind a fake OpenAI-compatible server and a real BM25 daemon on the shared 1k-passage
// corpus. The script decides each question's fate from its position, so the summary's numbers
// are known in advance:
//   i % 3 == 0: search once, then answer the first gold answer        (1 search, right)
//   i % 3 == 1: search once, then answer "certainly not this"         (1 search, wrong)
//   i % 3 == 2: answer the first gold answer at once                  (0 searches, right);
//               at odd i after a first turn that is no action (and the env's feedback)
// With 9 questions per file: EM 6/9, searches 6/9, every question answered.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>

#include "data/qa.h"
#include "tests/eval/eval_test_util.h"
#include "tests/eval/fake_chat_server.h"
#include "tests/loopback_daemon.h"
#include "tests/retrieval/server_test_util.h"
#include "tests/test_util.h"

namespace strata::eval {
namespace {

using namespace strata::testing;
using nlohmann::json;

const char* kFiles[] = {"hotpotqa_500.jsonl", "2wiki_500.jsonl", "nq_test_17.jsonl"};
constexpr int kPerFile = 9;

struct Scripted {
  int index = 0;     // position in its file
  std::string gold;  // the first gold answer
};

class EndpointEval : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("STRATA_NO_PROGRESS", "1", 1);
    real_ = shared_real_dir();
    if (real_.empty())
      GTEST_SKIP() << "../shared/data/real not found beside the checkout (set "
                      "STRATA_SHARED_DIR); skipping the test that reads it";
    exe_ = evaluate_bin();
    if (exe_.empty()) GTEST_SKIP() << "build/bin/evaluate is not built (it needs LibTorch)";
    for (const char* f : kFiles) {
      const auto recs = data::read_qa_file(real_ + "/" + f);
      for (int i = 0; i < kPerFile; ++i) script_[recs[i].question] = {i, recs[i].golden_answers[0]};
    }
    ASSERT_EQ(script_.size(), 3u * kPerFile) << "questions must be distinct for the script";

    daemon_ = std::make_unique<strata::testing::LoopbackDaemon>(real_ + "/wiki18_sample_1000.jsonl",
                                                                dir_.file("index"));
    chat_ = std::make_unique<FakeChatServer>(
        [this](const FakeChatServer::Request& r) { return play(r); });
  }
  void TearDown() override {
    if (chat_) chat_->stop();
    if (daemon_) daemon_->stop();
  }

  // The scripted policy. Anything unexpected is recorded in problems_ and answered with a 400.
  std::pair<int, json> play(const FakeChatServer::Request& r) {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_;
    if (r.authorization != "Bearer sekrit") return {401, {{"error", {{"message", "bad key"}}}}};
    auto problem = [&](const std::string& what) {
      problems_.push_back(what);
      return std::pair<int, json>{400, {{"error", {{"message", what}}}}};
    };
    if (r.target != "/v1/chat/completions") return problem("target " + r.target);
    const json& b = r.body;
    if (!b.is_object() || b.value("model", "") != "scripted") return problem("model");
    if (b["stop"] != json({"</search>", "</answer>"})) return problem("stop " + b["stop"].dump());
    if (b.value("temperature", -1.0) != 0.0) return problem("temperature");
    const json& msgs = b["messages"];
    const std::string first = msgs[0].value("content", "");
    const auto at = first.find("Question: ");
    if (msgs[0]["role"] != "user" || at == std::string::npos) return problem("first message");
    const std::string q = first.substr(at + 10, first.size() - at - 11);  // up to the final "\n"
    auto it = script_.find(q);
    if (it == script_.end()) return problem("unknown question: " + q);
    const Scripted& s = it->second;
    const bool names_stop = s.index % 2 == 0;  // like vLLM's stop_reason; the others like OpenAI
    const int mode = s.index % 3;
    int assistant = 0;
    for (const auto& m : msgs) assistant += m["role"] == "assistant" ? 1 : 0;
    if (mode == 2) {
      // Odd positions first say something that is no action and get the env's feedback back.
      if (s.index % 2 == 1 && assistant == 0)
        return {200, chat_completion("I am not sure.", "stop")};
      if (s.index % 2 == 1 &&
          msgs.back().value("content", "").rfind("My last step was not a valid action", 0) != 0)
        return problem("feedback: " + msgs.back().dump());
      return {200,
              chat_completion("<think>I know this.</think>\n<answer> " + s.gold + " ", "stop")};
    }
    if (assistant == 0)
      return {200, chat_completion("<think>Let me look it up.</think>\n<search> " + q + " ", "stop",
                                   names_stop ? "</search>" : "")};
    // Second turn: the search must have been closed and the documents given back.
    const std::string said = msgs[1].value("content", "");
    const std::string info = msgs.back().value("content", "");
    if (said.size() < 9 || said.substr(said.size() - 9) != "</search>")
      return problem("stop not restored: " + said);
    if (msgs.back()["role"] != "user" || info.rfind("<information>", 0) != 0 ||
        info.find("</information>") != info.size() - 14)
      return problem("observation: " + info.substr(0, 80));
    ++observations_;
    const std::string answer = mode == 0 ? s.gold : "certainly not this";
    return {200, chat_completion("<answer> " + answer, "stop", names_stop ? "</answer>" : "")};
  }

  std::string command(const std::string& extra = "") const {
    std::string cmd = "STRATA_TEST_KEY=sekrit " + exe_ + " --endpoint " + chat_->url() +
                      " --endpoint-model scripted --api-key-env STRATA_TEST_KEY --retriever "
                      "http://127.0.0.1:" +
                      std::to_string(daemon_->port()) + "/retrieve --out " + dir_.file("out") +
                      " --limit " + std::to_string(kPerFile) + " --parallel 3";
    for (const char* f : kFiles) cmd += " --data " + real_ + "/" + f;
    return cmd + extra;
  }

  TempDir dir_;
  std::string real_, exe_;
  std::map<std::string, Scripted> script_;
  std::unique_ptr<strata::testing::LoopbackDaemon> daemon_;
  std::unique_ptr<FakeChatServer> chat_;
  std::mutex mu_;
  std::vector<std::string> problems_;
  int requests_ = 0;
  int observations_ = 0;
};

TEST_F(EndpointEval, EveryRealFormatScoresExactlyWhatTheScriptImplies) {
  const auto r = run_command(command());
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_TRUE(problems_.empty()) << problems_.front();
  EXPECT_EQ(observations_, 3 * 6);            // two of every three questions searched once
  EXPECT_EQ(requests_, 3 * (6 * 2 + 3 + 1));  // + question 5's invalid first turn

  const auto s = read_json(dir_.file("out/summary.json"));
  const json expected = {{"n", kPerFile},       {"em", 66.6667},      {"f1", 66.6667},
                         {"cover_em", 66.6667}, {"searches", 0.6667}, {"answer_rate", 100.0},
                         {"missing", 0}};
  for (const char* name : {"hotpotqa_500", "2wiki_500", "nq_test_17"}) {
    json got = s["datasets"][name];
    EXPECT_EQ(json::parse(got.dump()), expected) << name << ": " << got.dump();
  }
  json overall = expected;
  overall["n"] = 3 * kPerFile;
  EXPECT_EQ(json::parse(s["overall"].dump()), overall) << s["overall"].dump();
  EXPECT_NE(r.output.find("| **overall** | 27 | 66.67 | 66.67 | 66.67 | 0.67 | 100.00 |"),
            std::string::npos)
      << r.output;

  const auto lines = read_jsonl(dir_.file("out/predictions.jsonl"));
  ASSERT_EQ(lines.size(), 27u);
  for (size_t k = 0; k < lines.size(); ++k) {
    const auto& p = lines[k];
    const int i = static_cast<int>(k % kPerFile);
    const auto& sc = script_.at(p["question"].get<std::string>());
    ASSERT_EQ(sc.index, i) << "predictions are in file order";
    EXPECT_EQ(p["end_reason"], "answered");
    EXPECT_EQ(p["searches"], i % 3 == 2 ? 0 : 1);
    EXPECT_EQ(p["em"], i % 3 == 1 ? 0.0 : 1.0);
    EXPECT_EQ(p["prediction"], i % 3 == 1 ? "certainly not this" : sc.gold);
    if (i % 3 != 2) {
      EXPECT_EQ(p["queries"], json::array({p["question"]}));
      EXPECT_NE(p["trajectory"].get<std::string>().find("</search>\n\n<information>"),
                std::string::npos);
    }
    EXPECT_TRUE(p.contains("golden_answers") && p.contains("id") && p.contains("f1") &&
                p.contains("cover_em") && p.contains("dataset"));
  }
  EXPECT_EQ(lines[0]["dataset"], "hotpotqa_500");
  EXPECT_EQ(lines[26]["dataset"], "nq_test_17");
  EXPECT_EQ(lines[18]["id"], "test_0");  // FlashRAG ids are kept
  EXPECT_EQ(lines[0]["id"], "1");        // R1-Searcher's integer idx becomes the id

  // Scoring mode on the file it wrote gives the same summary.
  const auto again =
      run_command(exe_ + " --predictions " + dir_.file("out/predictions.jsonl") + " --data " +
                  real_ + "/hotpotqa_500.jsonl --data " + real_ + "/2wiki_500.jsonl --data " +
                  real_ + "/nq_test_17.jsonl --limit 9 --out " + dir_.file("rescored"));
  ASSERT_EQ(again.rc, 0) << again.output;
  EXPECT_EQ(read_json(dir_.file("rescored/summary.json")), s);
}

TEST_F(EndpointEval, EndpointAndRetrieverFailuresAreRuntimeErrors) {
  // A wrong key: 401 fails at once with the server's message.
  auto r = run_command("STRATA_TEST_KEY=wrong " +
                       command().substr(std::string("STRATA_TEST_KEY=sekrit ").size()));
  EXPECT_EQ(r.rc, 1) << r.output;
  EXPECT_NE(r.output.find("HTTP 401: bad key"), std::string::npos) << r.output;
  // Nothing listening: retried, then a clear error.
  r = run_command("STRATA_TEST_KEY=x " + exe_ + " --endpoint http://127.0.0.1:" +
                  std::to_string(retrieval::testing::free_port()) +
                  " --endpoint-model m --endpoint-attempts 2 --retriever http://127.0.0.1:" +
                  std::to_string(daemon_->port()) + "/retrieve --data " + real_ +
                  "/nq_test_17.jsonl --limit 1 --out " + dir_.file("o2"));
  EXPECT_EQ(r.rc, 1) << r.output;
  EXPECT_NE(r.output.find("failed after 2 attempt(s)"), std::string::npos) << r.output;
  // No retriever: the daemon's health probe fails before any work, with the one exit code of
  // "daemon unreachable" (3, as grpo_train and sft_train; issue 15).
  r = run_command(exe_ + " --endpoint " + chat_->url() +
                  " --endpoint-model scripted --retriever http://127.0.0.1:" +
                  std::to_string(retrieval::testing::free_port()) + "/retrieve --data " + real_ +
                  "/nq_test_17.jsonl --out " + dir_.file("o3"));
  EXPECT_EQ(r.rc, 3) << r.output;
  EXPECT_NE(r.output.find("--retriever: cannot reach the retrieval daemon at"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace strata::eval
