#include "rl/sft.h"

#include <algorithm>

#include "agent/logprobs.h"
#include "core/error.h"

namespace strata::rl {

SftLoss sft_loss(const agent::Model& model, const std::vector<SftExample>& batch) {
  STRATA_CHECK(!batch.empty(), "sft_loss: empty batch");
  size_t T = 0;
  for (const auto& e : batch) {
    STRATA_CHECK(e.ids.size() == e.trained.size(),
                 "sft example: ids and trained differ in length (" << e.ids.size() << " vs "
                                                                   << e.trained.size() << ")");
    T = std::max(T, e.ids.size());
  }
  STRATA_CHECK(T >= 2, "sft_loss: examples need at least two tokens");
  const int64_t B = static_cast<int64_t>(batch.size());
  auto ids = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);     // [B, T]
  auto attn = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);    // [B, T]
  auto target = torch::zeros({B, static_cast<int64_t>(T)}, torch::kFloat); // [B, T]
  auto ids_a = ids.accessor<int64_t, 2>();
  auto attn_a = attn.accessor<int64_t, 2>();
  auto tgt_a = target.accessor<float, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& e = batch[b];
    for (size_t t = 0; t < e.ids.size(); ++t) {
      ids_a[b][t] = e.ids[t];
      attn_a[b][t] = 1;
      tgt_a[b][t] = e.trained[t] ? 1.0f : 0.0f;
    }
  }
  const auto dev = model.device();
  // Scored only where a target is trained: logprobs[b, t] scores ids[b, t+1] (the last column
  // scores nothing). token_logprobs skips the lm_head elsewhere.
  auto targets = torch::cat({ids.slice(1, 1), ids.slice(1, T - 1)}, 1);
  auto tmask = torch::cat({target.slice(1, 1), torch::zeros({B, 1})}, 1);
  const auto lp = agent::token_logprobs(model, ids.to(dev), attn.to(dev), targets.to(dev), tmask.to(dev))
                      .logprobs.slice(1, 0, static_cast<int64_t>(T) - 1);  // [B, T-1]
  const auto mask = target.slice(1, 1).to(dev);  // [B, T-1]
  SftLoss out;
  const double n = mask.sum().item<double>();
  out.tokens = static_cast<int64_t>(n);
  out.loss = -(lp * mask).sum() / std::max(n, 1.0);
  return out;
}

}  // namespace strata::rl
