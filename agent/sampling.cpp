#include "agent/sampling.h"

#include <limits>

#include "core/error.h"

namespace strata::agent {

using torch::Tensor;

void SamplingOptions::validate() const {
  STRATA_CHECK(temperature >= 0, "sampling temperature must be >= 0, got " << temperature);
  STRATA_CHECK(top_p > 0 && top_p <= 1, "sampling top_p must be in (0, 1], got " << top_p);
  STRATA_CHECK(top_k >= 0, "sampling top_k must be >= 0, got " << top_k);
}

SampledToken sample_token(const Tensor& logits_in, const SamplingOptions& o, Rng& rng) {
  Tensor logits = logits_in.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  STRATA_CHECK(logits.dim() == 1, "sample_token wants logits [V], got " << logits.sizes());
  const int64_t V = logits.size(0);
  SampledToken out;
  if (o.temperature == 0.0) {
    out.id = logits.argmax().item<int64_t>();
    out.logprob = torch::log_softmax(logits, 0)[out.id].item<float>();
    return out;
  }
  Tensor l = logits / o.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (o.top_k > 0 && o.top_k < V) {
    const float kth = std::get<0>(l.topk(o.top_k)).min().item<float>();
    l = l.masked_fill(l < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, order] = l.sort(/*dim=*/0, /*descending=*/true);
    Tensor probs = torch::softmax(sorted, 0);
    // A token is dropped when the mass strictly before it already reaches top_p (the first
    // token is always kept).
    Tensor before = probs.cumsum(0) - probs;
    Tensor drop_sorted = before >= o.top_p;
    Tensor drop = torch::zeros({V}, torch::kBool).scatter(0, order, drop_sorted);
    l = l.masked_fill(drop, neg_inf);
  }
  Tensor logp = torch::log_softmax(l, 0);
  Tensor p = logp.exp();
  const float* pp = p.data_ptr<float>();
  const double u = rng.uniform();
  double acc = 0.0;
  int64_t pick = -1, last_nonzero = -1;
  for (int64_t i = 0; i < V; ++i) {
    if (pp[i] <= 0.0f) continue;
    last_nonzero = i;
    acc += pp[i];
    if (u < acc) {
      pick = i;
      break;
    }
  }
  if (pick < 0) pick = last_nonzero;  // rounding left u above the total mass
  STRATA_ASSERT(pick >= 0, "sample_token: empty distribution");
  out.id = pick;
  out.logprob = logp[pick].item<float>();
  return out;
}

std::vector<SampledToken> sample_tokens(const Tensor& logits, const std::vector<const SamplingOptions*>& options,
                                        const std::vector<Rng*>& rngs) {
  STRATA_CHECK(logits.dim() == 2, "sample_tokens wants logits [B, V], got " << logits.sizes());
  const int64_t B = logits.size(0);
  STRATA_CHECK(static_cast<int64_t>(options.size()) == B && static_cast<int64_t>(rngs.size()) == B,
               "sample_tokens: " << options.size() << " options and " << rngs.size() << " rngs for " << B << " rows");
  Tensor cpu = logits.detach().to(torch::kCPU, torch::kFloat32);
  std::vector<SampledToken> out;
  out.reserve(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) out.push_back(sample_token(cpu[b], *options[b], *rngs[b]));
  return out;
}

}  // namespace strata::agent
