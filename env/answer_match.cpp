#include "env/answer_match.h"

#include <unicode/unistr.h>

#include <algorithm>
#include <map>
#include <sstream>

namespace strata::env {

namespace {

std::string to_lower_utf8(std::string_view text) {
  bool ascii = true;
  for (unsigned char c : text) ascii = ascii && c < 0x80;
  if (ascii) {
    std::string out(text);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }
  // ICU lower-cases the whole Unicode range (Python's str.lower() does the same for SQuAD).
  // Invalid UTF-8 becomes U+FFFD, which the comparison then treats as an ordinary character.
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  u.toLower();
  std::string out;
  u.toUTF8String(out);
  return out;
}

bool is_ascii_punct(unsigned char c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
         (c >= 123 && c <= 126);
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::vector<std::string> tokens(std::string_view text) { return split_ws(normalize_answer(text)); }

}  // namespace

std::string normalize_answer(std::string_view text) {
  std::string lower = to_lower_utf8(text);
  std::string no_punct;
  no_punct.reserve(lower.size());
  for (unsigned char c : lower)
    if (!is_ascii_punct(c)) no_punct.push_back(static_cast<char>(c));
  std::string out;
  for (const auto& w : split_ws(no_punct)) {
    if (w == "a" || w == "an" || w == "the") continue;
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

double exact_match(std::string_view prediction, const std::vector<std::string>& golds) {
  const std::string p = normalize_answer(prediction);
  for (const auto& g : golds)
    if (normalize_answer(g) == p) return 1.0;
  return 0.0;
}

double cover_exact_match(std::string_view prediction, const std::vector<std::string>& golds) {
  const std::string p = " " + normalize_answer(prediction) + " ";
  for (const auto& g : golds) {
    const std::string n = normalize_answer(g);
    if (!n.empty() && p.find(" " + n + " ") != std::string::npos) return 1.0;
  }
  return 0.0;
}

double f1_score(std::string_view prediction, const std::vector<std::string>& golds) {
  const auto pred = tokens(prediction);
  const std::string pn = normalize_answer(prediction);
  double best = 0.0;
  for (const auto& g : golds) {
    const std::string gn = normalize_answer(g);
    const bool special = pn == "yes" || pn == "no" || pn == "noanswer" || gn == "yes" ||
                         gn == "no" || gn == "noanswer";
    if (special && pn != gn) continue;
    const auto gold = tokens(g);
    if (pred.empty() || gold.empty()) {
      if (pred.empty() && gold.empty()) best = std::max(best, 1.0);
      continue;
    }
    std::map<std::string, int> counts;
    for (const auto& t : gold) counts[t]++;
    int common = 0;
    for (const auto& t : pred) {
      auto it = counts.find(t);
      if (it != counts.end() && it->second > 0) {
        --it->second;
        ++common;
      }
    }
    if (common == 0) continue;
    const double precision = static_cast<double>(common) / static_cast<double>(pred.size());
    const double recall = static_cast<double>(common) / static_cast<double>(gold.size());
    best = std::max(best, 2 * precision * recall / (precision + recall));
  }
  return best;
}

std::optional<std::string> extract_answer(std::string_view response) {
  const std::string_view open = "<answer>";
  const std::string_view close = "</answer>";
  const size_t end = response.rfind(close);
  if (end == std::string_view::npos) return std::nullopt;
  const size_t start = response.rfind(open, end);
  if (start == std::string_view::npos) return std::nullopt;
  std::string_view inner = response.substr(start + open.size(), end - start - open.size());
  const auto first = inner.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return std::string();
  const auto last = inner.find_last_not_of(" \t\r\n");
  return std::string(inner.substr(first, last - first + 1));
}

bool valid_format(std::string_view r) {
  enum State { kStart, kThink, kSearch, kInformation, kAnswer };
  static const char* const kTags[] = {"think", "search", "information", "answer"};
  State state = kStart;
  size_t pos = 0;
  while (true) {
    const size_t lt = r.find('<', pos);
    // Only whitespace may stand between blocks.
    const std::string_view gap = r.substr(pos, lt == std::string_view::npos ? r.size() - pos : lt - pos);
    if (gap.find_first_not_of(" \t\r\n") != std::string_view::npos) return false;
    if (lt == std::string_view::npos) break;
    int tag = -1;
    for (int t = 0; t < 4; ++t) {
      const std::string open = std::string("<") + kTags[t] + ">";
      if (r.compare(lt, open.size(), open) == 0) tag = t;
    }
    if (tag < 0) return false;  // a stray '<' or a closing tag without its opening
    const std::string open = std::string("<") + kTags[tag] + ">";
    const std::string close = std::string("</") + kTags[tag] + ">";
    const size_t body = lt + open.size();
    const size_t end = r.find(close, body);
    if (end == std::string_view::npos) return false;  // left open
    // No other protocol tag may appear inside the block (no nesting).
    const std::string_view inner = r.substr(body, end - body);
    for (const char* t : kTags) {
      if (inner.find(std::string("<") + t + ">") != std::string_view::npos ||
          inner.find(std::string("</") + t + ">") != std::string_view::npos)
        return false;
    }
    const State next = static_cast<State>(tag + 1);
    bool ok = false;
    switch (state) {
      case kStart: ok = next == kThink || next == kSearch || next == kAnswer; break;
      case kThink: ok = next == kSearch || next == kAnswer; break;
      case kSearch: ok = next == kInformation; break;
      case kInformation: ok = next == kThink || next == kSearch || next == kAnswer; break;
      case kAnswer: ok = false; break;
    }
    if (!ok) return false;
    state = next;
    pos = end + close.size();
  }
  return state == kAnswer;
}

}  // namespace strata::env
