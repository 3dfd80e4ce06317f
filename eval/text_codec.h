// A stand-in tokenizer for agents behind an HTTP endpoint.
//
// env::Episode keeps a trajectory as token ids and counts tokens for its limits
// (max_obs_tokens, max_response_tokens). When the policy is a remote OpenAI-compatible server,
// strata has no tokenizer for it, so a "token" here is a word: a run of whitespace plus the
// non-whitespace run after it (a trailing whitespace run is a token of its own). decode(encode(s))
// == s for every string, and a cut never splits a UTF-8 character. English text has roughly 1.3
// subword tokens per word, so word limits are a little looser than the same token limits.
//
// One codec per episode: encode() interns new words and is not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::eval {

class WordCodec {
 public:
  std::vector<int32_t> encode(std::string_view text);
  std::string decode(const std::vector<int32_t>& ids) const;
  size_t vocab_size() const { return words_.size(); }

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace strata::eval
