#include "agent/tokenizer/impl/tokenizer_pipeline.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include "agent/tokenizer/impl/tokenizer_byte_level.h"
#include "core/error.h"

namespace strata::agent::impl {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

// Calls f(begin, end, valid) for the maximal valid-UTF-8 runs and invalid-byte runs of `s`.
template <class F>
void for_each_utf8_run(std::string_view s, F&& f) {
  size_t run = 0, pos = 0;
  bool valid = true;
  while (pos < s.size()) {
    uint32_t cp = 0;
    const int len = decode_utf8(s, pos, cp);
    const bool ok = len > 0;
    if (ok != valid && pos > run) {
      f(run, pos, valid);
      run = pos;
    }
    valid = ok;
    pos += ok ? static_cast<size_t>(len) : 1;
  }
  if (pos > run) f(run, pos, valid);
}

const icu::Normalizer2* icu_normalizer(NormalForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::kNFC:
      n = icu::Normalizer2::getNFCInstance(status);
      break;
    case NormalForm::kNFD:
      n = icu::Normalizer2::getNFDInstance(status);
      break;
    case NormalForm::kNFKC:
      n = icu::Normalizer2::getNFKCInstance(status);
      break;
    case NormalForm::kNFKD:
      n = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  STRATA_CHECK(U_SUCCESS(status) && n != nullptr,
               "ICU normalizer unavailable: " << u_errorName(status));
  return n;
}

}  // namespace

Normalizer::Normalizer(std::vector<NormalForm> forms) {
  for (NormalForm f : forms) {
    icu_normalizer(f);  // fail early if ICU lacks its data
    NormalizerStage st;
    st.form = f;
    stages_.push_back(st);
  }
}

Normalizer::Normalizer(std::vector<NormalizerStage> stages) : stages_(std::move(stages)) {
  for (const NormalizerStage& st : stages_) {
    if (st.kind == NormalizerStage::Kind::kForm) icu_normalizer(st.form);
  }
}

namespace {

std::string apply_form(std::string_view text, NormalForm form) {
  std::string out;
  out.reserve(text.size());
  for_each_utf8_run(text, [&](size_t b, size_t e, bool valid) {
    std::string_view run = text.substr(b, e - b);
    if (!valid) {
      out.append(run);
      return;
    }
    // Pure ASCII is already in every normal form.
    bool ascii = true;
    for (char c : run) ascii = ascii && static_cast<uint8_t>(c) < 0x80;
    if (ascii) {
      out.append(run);
      return;
    }
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(
        icu::StringPiece(run.data(), static_cast<int32_t>(run.size())));
    UErrorCode status = U_ZERO_ERROR;
    u = icu_normalizer(form)->normalize(u, status);
    STRATA_CHECK(U_SUCCESS(status), "Unicode normalization failed: " << u_errorName(status));
    u.toUTF8String(out);
  });
  return out;
}

}  // namespace

std::string Normalizer::apply(std::string_view text) const {
  std::string cur(text);
  for (const NormalizerStage& st : stages_) {
    switch (st.kind) {
      case NormalizerStage::Kind::kForm:
        cur = apply_form(cur, st.form);
        break;
      case NormalizerStage::Kind::kBert:
        cur = bert_normalize(cur, st.bert);
        break;
      case NormalizerStage::Kind::kLowercase:
        cur = lowercase_normalize(cur);
        break;
      case NormalizerStage::Kind::kStripAccents:
        cur = strip_accents_normalize(cur);
        break;
    }
  }
  return cur;
}

PreTokenizer::PreTokenizer(std::vector<PreTokenizerStage> stages) : stages_(std::move(stages)) {
  for (size_t i = 0; i + 1 < stages_.size(); ++i) {
    STRATA_ASSERT(stages_[i].kind != PreTokenizerStage::Kind::kByteLevel,
                  "ByteLevel must be the last pre-tokenizer stage");
  }
}

void PreTokenizer::run(std::string_view text, std::vector<std::string>& out) const {
  struct Piece {
    std::string text;
    bool valid;  // valid UTF-8 (invalid runs skip the regex stages)
  };
  std::vector<Piece> pieces, next;
  for_each_utf8_run(text, [&](size_t b, size_t e, bool valid) {
    pieces.push_back(Piece{std::string(text.substr(b, e - b)), valid});
  });
  std::vector<std::pair<size_t, size_t>> matches;
  std::vector<std::string> words;
  for (const PreTokenizerStage& stage : stages_) {
    next.clear();
    if (stage.kind == PreTokenizerStage::Kind::kBert ||
        stage.kind == PreTokenizerStage::Kind::kWhitespaceSplit) {
      for (Piece& p : pieces) {
        if (!p.valid) {
          next.push_back(std::move(p));
          continue;
        }
        words.clear();
        if (stage.kind == PreTokenizerStage::Kind::kBert) {
          bert_pre_tokenize(p.text, words);
        } else {
          whitespace_split(p.text, words);
        }
        for (std::string& w : words) next.push_back(Piece{std::move(w), true});
      }
      pieces.swap(next);
      continue;
    }
    for (Piece& p : pieces) {
      if (stage.kind == PreTokenizerStage::Kind::kByteLevel && stage.add_prefix_space &&
          (p.text.empty() || p.text[0] != ' ')) {
        p.text.insert(p.text.begin(), ' ');
      }
      if (!stage.regex || !p.valid) {
        next.push_back(std::move(p));
        continue;
      }
      stage.regex->find_all(p.text, matches);
      size_t done = 0;
      for (const auto& [b, e] : matches) {
        if (b > done) next.push_back(Piece{p.text.substr(done, b - done), true});
        if (stage.behavior == SplitBehavior::kIsolated) {
          next.push_back(Piece{p.text.substr(b, e - b), true});
        }
        done = e;
      }
      if (done < p.text.size()) next.push_back(Piece{p.text.substr(done), true});
    }
    pieces.swap(next);
  }
  if (stages_.empty() || stages_.back().kind != PreTokenizerStage::Kind::kByteLevel) {
    for (Piece& p : pieces) {
      if (!p.text.empty()) out.push_back(std::move(p.text));
    }
    return;
  }
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  for (const Piece& p : pieces) {
    if (!p.text.empty()) out.push_back(alphabet.encode(p.text));
  }
}

}  // namespace strata::agent::impl
