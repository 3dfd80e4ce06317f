#include "agent/bf16_packs.h"

#include "agent/bf16_gemm.h"

namespace strata::agent {
namespace {

// Inference tensors keep no version counter (and cannot be changed outside inference mode).
int64_t version_of(const at::Tensor& t) { return t.is_inference() ? 0 : t._version(); }

}  // namespace

std::vector<at::Tensor> Bf16Packs::get(const std::vector<at::Tensor>& sources) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.resize(sources.size());
  std::vector<at::Tensor> out;
  out.reserve(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    const at::Tensor& s = sources[i];
    Entry& e = entries_[i];
    if (!e.packed.defined() || e.source != s.data_ptr() || e.version != version_of(s)) {
      e.packed = bf16_gemm_pack(s);
      e.source = s.data_ptr();
      e.version = version_of(s);
      ++builds_;
    }
    out.push_back(e.packed);
  }
  return out;
}

void Bf16Packs::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
}

int64_t Bf16Packs::builds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return builds_;
}

}  // namespace strata::agent
