#include "rl/warm_start.h"

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/progress.h"
#include "core/rng.h"
#include "data/corpus.h"
#include "env/answer_match.h"
#include "env/search_step.h"
#include "rl/precision.h"
#include "rl/rollout.h"

namespace strata::rl {

void DemonstratorOptions::validate() const {
  STRATA_CHECK(under_search >= 0 && under_search <= 1,
               "under_search: expected [0, 1], got " << under_search);
  STRATA_CHECK(wrong_passage >= 0 && wrong_passage <= 1,
               "wrong_passage: expected [0, 1], got " << wrong_passage);
}

void SftOptions::validate() const {
  STRATA_CHECK(epochs >= 1, "epochs: expected >= 1, got " << epochs);
  STRATA_CHECK(batch_size >= 1, "batch_size: expected >= 1, got " << batch_size);
  STRATA_CHECK(lr > 0, "lr: expected > 0, got " << lr);
  STRATA_CHECK(grad_clip >= 0, "grad_clip: expected >= 0, got " << grad_clip);
}

namespace {

std::string title_of(const std::string& contents) {
  std::string title, text;
  data::split_contents(contents, title, text);
  return title;
}

}  // namespace

std::vector<Demonstration> make_demonstrations(const std::vector<data::QaRecord>& questions,
                                               const agent::Tokenizer& tok,
                                               retrieval::RetrievalClient& client,
                                               const env::SearchEnvOptions& env_opts,
                                               const DemonstratorOptions& opts) {
  opts.validate();
  env_opts.validate();
  const auto eos = tok.eos_id();
  STRATA_CHECK(eos.has_value(), "the tokenizer " << tok.source() << " has no eos token");
  Rng rng = Rng(opts.seed).fork("demonstrator");
  const env::EncodeFn encode = [&tok](std::string_view s) { return tok.encode(s, false); };
  const env::DecodeFn decode = [&tok](const std::vector<int32_t>& ids) { return tok.decode(ids); };
  std::vector<Demonstration> out;
  Progress bar("demonstrations", questions.size(), "questions");
  for (const auto& q : questions) {
    env::Episode ep(env_opts, q, encode, decode);
    std::vector<std::string> entities;
    int hops = 1;
    if (q.metadata.contains("entities") && q.metadata["entities"].is_array()) {
      for (const auto& e : q.metadata["entities"]) entities.push_back(e.get<std::string>());
      hops = q.metadata.value("hops", static_cast<int>(entities.size()));
    } else {
      entities = {q.question};
    }
    int searches = std::min<int>(hops, static_cast<int>(entities.size()));
    searches = std::min(searches, env_opts.max_turns - 1);
    const bool under = searches >= 2 && rng.bernoulli(opts.under_search);
    if (under) searches = 1;

    std::vector<env::RetrievedDoc> last_docs;
    for (int s = 0; s < searches; ++s) {
      // The thought names no entity: a small policy then copies each name once, into the query.
      const std::string turn = std::string("<think>") + (s == 0 ? "I need to search." : "I need one more search.") +
                               "</think>\n<search> " + entities[s] + " </search>";
      const auto ids = encode(turn);
      const auto step = ep.on_generation(ids, std::vector<float>(ids.size(), 0.0f),
                                         env::TurnFinish::kStopSequence);
      STRATA_ASSERT(step.kind == env::Episode::StepKind::kSearch, "demonstration turn did not search");
      env::SearchOutcome found = env::run_search(ep, client);
      STRATA_CHECK(found.ok, "retrieval failed while making demonstrations (question "
                                 << q.id << "): " << found.error);
      last_docs = std::move(found.docs);
      STRATA_CHECK(!ep.done(), "demonstration for " << q.id << " ran out of budget ("
                                                    << env::end_reason_name(ep.end_reason()) << ")");
      (void)ep.take_pending_observation();
    }
    std::string answer = q.golden_answers.at(0);
    const bool wrong = !last_docs.empty() && (under || rng.bernoulli(opts.wrong_passage));
    if (wrong) {
      for (const auto& d : last_docs) {
        const std::string t = title_of(d.contents);
        if (!t.empty() && env::exact_match(t, q.golden_answers) == 0) {
          answer = t;
          break;
        }
      }
    }
    const std::string final_turn =
        std::string("<think>") + (searches > 0 ? "The documents answer it." : "I know this.") +
        "</think>\n<answer> " + answer + " </answer>";
    auto ids = encode(final_turn);
    ep.on_generation(ids, std::vector<float>(ids.size(), 0.0f), env::TurnFinish::kStopSequence);
    STRATA_ASSERT(ep.end_reason() == env::EndReason::kAnswered, "demonstration did not answer");

    Demonstration d;
    const auto prompt = encode_prompt(tok, ep.prompt_text(), opts.chat);
    d.example.ids = prompt;
    d.example.trained.assign(prompt.size(), 0);
    for (size_t i = 0; i < ep.response_ids().size(); ++i) {
      d.example.ids.push_back(ep.response_ids()[i]);
      d.example.trained.push_back(static_cast<uint8_t>(ep.loss_mask()[i]));
    }
    d.example.ids.push_back(*eos);
    d.example.trained.push_back(1);
    d.text = ep.response_text();
    d.searches = ep.num_searches();
    d.correct = env::exact_match(answer, q.golden_answers) > 0;
    out.push_back(std::move(d));
    bar.add();
  }
  bar.finish();
  return out;
}

SftReport sft_train(agent::Model& model, const std::vector<SftExample>& examples,
                    const SftOptions& opts,
                    const std::function<void(int, double, int64_t)>& on_step, const Distributed* dist) {
  opts.validate();
  const Distributed single;
  const Distributed& dp = dist != nullptr ? *dist : single;
  STRATA_CHECK(!examples.empty(), "sft_train: no examples");
  model.set_requires_grad(true);
  auto params = model.parameters();
  const bool bf16 = opts.precision == AutocastPrecision::kBf16;
  torch::optim::AdamW optim(params, torch::optim::AdamWOptions(opts.lr).weight_decay(opts.weight_decay));
  Rng rng = Rng(opts.seed).fork("sft");
  std::vector<size_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const int per_epoch = static_cast<int>((examples.size() + opts.batch_size - 1) / opts.batch_size);
  int total = per_epoch * opts.epochs;
  if (opts.max_steps > 0) total = std::min(total, opts.max_steps);
  SftReport report;
  Progress bar("sft", static_cast<uint64_t>(total), "steps");
  const size_t bs = static_cast<size_t>(opts.batch_size);
  for (int epoch = 0; epoch < opts.epochs && report.steps < total; ++epoch) {
    rng.shuffle(order);
    // Batches of similar lengths waste less on padding: within windows of 16 batches the examples
    // are sorted by length, cut into batches, and the batches are visited in a random order.
    std::vector<std::vector<size_t>> batches;
    for (size_t w = 0; w < order.size(); w += 16 * bs) {
      std::vector<size_t> win(order.begin() + w, order.begin() + std::min(order.size(), w + 16 * bs));
      std::stable_sort(win.begin(), win.end(), [&](size_t a, size_t b) {
        return examples[a].ids.size() < examples[b].ids.size();
      });
      for (size_t i = 0; i < win.size(); i += bs)
        batches.emplace_back(win.begin() + i, win.begin() + std::min(win.size(), i + bs));
    }
    rng.shuffle(batches);
    for (const auto& idx : batches) {
      if (report.steps >= total) break;
      // This rank's share of the batch (all of it in one process).
      const size_t n = idx.size(), world = static_cast<size_t>(dp.world()), rank = static_cast<size_t>(dp.rank());
      std::vector<SftExample> batch;
      for (size_t k = n * rank / world; k < n * (rank + 1) / world; ++k) batch.push_back(examples[idx[k]]);
      optim.zero_grad();
      SftLoss l;
      double v = 0;
      if (!dp.active()) {
        {
          AutocastBf16 autocast(bf16, params.front().device());
          l = sft_loss(model, batch);
        }
        l.loss.backward();
        v = l.loss.item<double>();
      } else {
        // The batch's trained tokens (sft_loss's count: targets at positions >= 1), from every
        // example of it: each rank's token mean is weighted by its share.
        double batch_tokens = 0;
        for (size_t i : idx)
          for (size_t t = 1; t < examples[i].trained.size(); ++t) batch_tokens += examples[i].trained[t] ? 1 : 0;
        double part = 0;
        if (!batch.empty()) {
          {
            AutocastBf16 autocast(bf16, params.front().device());
            l = sft_loss(model, batch);
          }
          const double w = static_cast<double>(l.tokens) / std::max(1.0, batch_tokens);
          (l.loss * w).backward();
          part = l.loss.item<double>() * w;
        }
        std::vector<torch::Tensor> grads;
        for (auto& p : params) {
          if (!p.mutable_grad().defined()) p.mutable_grad() = torch::zeros_like(p);
          grads.push_back(p.mutable_grad());
        }
        dp.all_reduce_sum(grads);
        v = dp.all_reduce_sum(std::vector<double>{part})[0];
        l.tokens = static_cast<int64_t>(batch_tokens);
      }
      if (opts.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, opts.grad_clip);
      optim.step();
      if (report.steps == 0) report.first_loss = v;
      report.last_loss = v;
      report.losses.push_back(v);
      report.tokens.push_back(l.tokens);
      ++report.steps;
      if (on_step) on_step(report.steps, v, l.tokens);
      bar.add();
    }
  }
  bar.finish();
  model.set_requires_grad(false);
  return report;
}

SftExample sft_example(const agent::Tokenizer& tok, const std::string& prompt_text,
                       const std::string& response, const std::string& chat) {
  const auto eos = tok.eos_id();
  STRATA_CHECK(eos.has_value(), "the tokenizer " << tok.source() << " has no eos token");
  SftExample ex;
  ex.ids = encode_prompt(tok, prompt_text, chat);
  ex.trained.assign(ex.ids.size(), 0);
  auto append = [&](std::string_view text, bool trained) {
    if (text.empty()) return;
    for (int32_t id : tok.encode(text, false)) {
      ex.ids.push_back(id);
      ex.trained.push_back(trained ? 1 : 0);
    }
  };
  // Split the response into agent text and retrieved blocks; the blank lines the environment
  // writes around a block belong to it.
  static const std::string open = "<information>", close = "</information>";
  size_t pos = 0;
  while (pos < response.size()) {
    size_t a = response.find(open, pos);
    if (a == std::string::npos) break;
    size_t b = response.find(close, a);
    STRATA_CHECK(b != std::string::npos, "an <information> block is not closed");
    b += close.size();
    size_t lead = a;
    for (int k = 0; k < 2 && lead > pos && response[lead - 1] == '\n'; ++k) --lead;
    size_t trail = b;
    for (int k = 0; k < 2 && trail < response.size() && response[trail] == '\n'; ++k) ++trail;
    append(std::string_view(response).substr(pos, lead - pos), true);
    append(std::string_view(response).substr(lead, trail - lead), false);
    pos = trail;
  }
  append(std::string_view(response).substr(pos), true);
  ex.ids.push_back(*eos);
  ex.trained.push_back(1);
  return ex;
}

std::vector<SftExample> read_sft_jsonl(const std::string& path, const agent::Tokenizer& tok,
                                       const std::string& chat, const env::SearchEnvOptions& env) {
  std::ifstream in(path);
  STRATA_CHECK(in, "cannot open " << path);
  std::vector<SftExample> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      STRATA_CHECK(j.is_object(), "expected a JSON object");
      STRATA_CHECK(j.contains("response") && j["response"].is_string(),
                   "missing string field \"response\"");
      std::string prompt;
      if (j.contains("prompt")) {
        STRATA_CHECK(j["prompt"].is_string(), "\"prompt\" must be a string");
        prompt = j["prompt"].get<std::string>();
      } else {
        STRATA_CHECK(j.contains("question") && j["question"].is_string(),
                     "missing string field \"prompt\" or \"question\"");
        data::QaRecord q;
        q.question = j["question"].get<std::string>();
        q.golden_answers = {""};
        env::Episode ep(env, q, [&tok](std::string_view s) { return tok.encode(s, false); },
                        [&tok](const std::vector<int32_t>& ids) { return tok.decode(ids); });
        prompt = ep.prompt_text();
      }
      out.push_back(sft_example(tok, prompt, j["response"].get<std::string>(), chat));
    } catch (const std::exception& e) {
      STRATA_FAIL(path << ":" << lineno << ": " << e.what());
    }
  }
  STRATA_CHECK(!out.empty(), path << ": no trajectories");
  return out;
}

}  // namespace strata::rl
