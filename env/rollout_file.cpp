#include "env/rollout_file.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/util/delimited_message_util.h>

#include "core/error.h"

namespace strata::env {

namespace {
const char* action_name(Action::Kind k) {
  switch (k) {
    case Action::kSearch: return "search";
    case Action::kAnswer: return "answer";
    case Action::kInvalid: return "invalid";
  }
  return "none";
}
}  // namespace

EndReason end_reason_of(const pb::Trajectory& t) {
  for (EndReason r : {EndReason::kAnswered, EndReason::kMaxTurns, EndReason::kMaxResponseTokens,
                      EndReason::kRetrievalFailed})
    if (t.end_reason() == end_reason_name(r)) return r;
  return EndReason::kNone;
}

pb::Trajectory make_record(const Episode& ep, const RewardResult& reward,
                           const std::vector<int32_t>& prompt_ids, int64_t group, int sample,
                           int step, int64_t stratum) {
  pb::Trajectory t;
  const auto& q = ep.question();
  t.set_question_id(q.id);
  t.set_question(q.question);
  for (const auto& a : q.golden_answers) t.add_golden_answers(a);
  t.set_group(group);
  t.set_sample(sample);
  t.set_step(step);
  t.set_prompt_text(ep.prompt_text());
  for (int32_t id : prompt_ids) t.add_prompt_ids(id);
  for (int32_t id : ep.response_ids()) t.add_response_ids(id);
  for (int32_t m : ep.loss_mask()) t.add_loss_mask(m);
  for (float lp : ep.logprobs()) t.add_behaviour_logprobs(lp);
  for (const auto& tr : ep.turns()) {
    auto* p = t.add_turns();
    p->set_generated_tokens(tr.generated_tokens);
    p->set_action(action_name(tr.action));
    p->set_query(tr.query);
    for (const auto& d : tr.doc_ids) p->add_doc_ids(d);
    p->set_retrieval_ms(tr.retrieval_ms);
    p->set_retrieval_attempts(tr.retrieval_attempts);
    p->set_observation_tokens(tr.observation_tokens);
    p->set_observation_truncated(tr.observation_truncated);
  }
  for (const auto& [text, trained] : ep.segments()) {
    auto* s = t.add_segments();
    s->set_text(text);
    s->set_trained(trained);
  }
  t.set_final_answer(reward.answer);
  t.set_reward(reward.reward);
  t.set_em(reward.em);
  t.set_f1(reward.f1);
  t.set_cover_em(reward.cover_em);
  t.set_format_valid(reward.format_valid);
  t.set_num_searches(ep.num_searches());
  t.set_stratum(stratum);
  t.set_end_reason(end_reason_name(ep.end_reason()));
  t.set_error(ep.error());
  t.set_gold_retrieved(ep.gold_retrieved());
  return t;
}

RolloutWriter::RolloutWriter(const std::string& path)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
  STRATA_CHECK(out_.good(), "cannot write rollouts file " << path);
}

void RolloutWriter::write(const pb::Trajectory& t) {
  STRATA_CHECK(google::protobuf::util::SerializeDelimitedToOstream(t, &out_),
               "error while writing " << path_);
  ++written_;
}

void RolloutWriter::flush() {
  out_.flush();
  STRATA_CHECK(out_.good(), "error while writing " << path_);
}

struct RolloutReader::Impl {
  std::ifstream in;
  std::unique_ptr<google::protobuf::io::IstreamInputStream> stream;
};

RolloutReader::RolloutReader(const std::string& path) : path_(path), impl_(new Impl) {
  impl_->in.open(path, std::ios::binary);
  STRATA_CHECK(impl_->in.good(), "cannot open rollouts file " << path);
  impl_->stream = std::make_unique<google::protobuf::io::IstreamInputStream>(&impl_->in);
}

RolloutReader::~RolloutReader() = default;

bool RolloutReader::next(pb::Trajectory& out) {
  bool clean_eof = false;
  out.Clear();  // the parser merges into the message: start from empty
  if (google::protobuf::util::ParseDelimitedFromZeroCopyStream(&out, impl_->stream.get(),
                                                               &clean_eof)) {
    ++index_;
    return true;
  }
  STRATA_CHECK(clean_eof, path_ << ": record " << index_
                                << " is truncated or corrupt (not a strata rollouts file?)");
  return false;
}

}  // namespace strata::env
