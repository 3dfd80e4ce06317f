#include "agent/encoder.h"

#include "core/error.h"

namespace strata::agent {

const char* pooling_name(Pooling p) { return p == Pooling::kCls ? "cls" : "mean"; }

Pooling parse_pooling(const std::string& name) {
  if (name == "mean") return Pooling::kMean;
  if (name == "cls") return Pooling::kCls;
  STRATA_FAIL("pooling: unknown value \"" << name << "\" (expected mean or cls)");
}

EncoderOptions e5_preset() {
  EncoderOptions o;
  o.query_prefix = "query: ";
  o.passage_prefix = "passage: ";
  o.pooling = Pooling::kMean;
  return o;
}

struct TextEncoder::Impl {};

TextEncoder::TextEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TextEncoder::~TextEncoder() = default;

std::unique_ptr<TextEncoder> TextEncoder::load(const std::string& dir, const EncoderOptions&) {
  STRATA_FAIL("TextEncoder::load(" << dir << "): the BERT encoder is not built yet");
}

int TextEncoder::dim() const { STRATA_FAIL("TextEncoder: not built yet"); }
std::string TextEncoder::describe() const { STRATA_FAIL("TextEncoder: not built yet"); }
std::vector<float> TextEncoder::encode_queries(const std::vector<std::string>&) {
  STRATA_FAIL("TextEncoder: not built yet");
}
std::vector<float> TextEncoder::encode_passages(const std::vector<std::string>&) {
  STRATA_FAIL("TextEncoder: not built yet");
}

}  // namespace strata::agent
