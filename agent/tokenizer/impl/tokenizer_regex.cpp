#define PCRE2_CODE_UNIT_WIDTH 8
#include "agent/tokenizer/impl/tokenizer_regex.h"

#include <pcre2.h>

#include <mutex>

#include "core/error.h"

namespace strata::agent::impl {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// A match data block serves one match at a time, so each find_all() borrows one from a small
// mutex-guarded free list and gives it back.
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

}  // namespace

struct Regex::State {
  pcre2_code* code = nullptr;
  bool jit = false;
  std::mutex mu;
  std::vector<MatchData> free_list;

  ~State() {
    if (code != nullptr) pcre2_code_free(code);
  }
  MatchData borrow() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!free_list.empty()) {
        MatchData m = std::move(free_list.back());
        free_list.pop_back();
        return m;
      }
    }
    return MatchData(pcre2_match_data_create_from_pattern(code, nullptr));
  }
  void give_back(MatchData m) {
    std::lock_guard<std::mutex> lock(mu);
    if (free_list.size() < 64) free_list.push_back(std::move(m));
  }
};

Regex::Regex(const std::string& pattern) : pattern_(pattern), state_(std::make_unique<State>()) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  state_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                               PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &offset, nullptr);
  STRATA_CHECK(state_->code != nullptr,
               "pre-tokenizer regex does not compile: " << pcre2_message(err) << " at offset "
                                                        << offset << " in /" << pattern << "/");
  state_->jit = pcre2_jit_compile(state_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  out.clear();
  MatchData md = state_->borrow();
  STRATA_ASSERT(md != nullptr, "pcre2_match_data_create failed");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = state_->jit ? pcre2_jit_match(state_->code, subject, text.size(), start,
                                                 PCRE2_NO_UTF_CHECK, md.get(), nullptr)
                               : pcre2_match(state_->code, subject, text.size(), start,
                                             PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    STRATA_CHECK(rc >= 0, "pre-tokenizer regex failed: " << pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t b = ov[0], e = ov[1];
    if (e == b) {
      // An empty match: tokenizers drops it; step one character forward.
      size_t next = b + 1;
      while (next < text.size() && (static_cast<uint8_t>(text[next]) & 0xC0) == 0x80) ++next;
      start = next;
      continue;
    }
    out.emplace_back(b, e);
    start = e;
  }
  state_->give_back(std::move(md));
}

std::string regex_escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace strata::agent::impl
