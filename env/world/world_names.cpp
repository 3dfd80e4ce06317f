#include "env/world/world_names.h"

#include <algorithm>
#include <vector>

namespace strata::env::names {

namespace {

using Words = std::vector<std::string_view>;

// Syllable parts. Repeated entries weight the draw.
const Words kFirstOnsets = {"",   "b",  "d",  "f",  "g",  "h",  "k",  "l",  "m",  "n",
                            "p",  "r",  "s",  "t",  "v",  "z",  "br", "dr", "gr", "kr",
                            "tr", "st", "th", "sh", "fr", "bl", "kl", "j",  "w",  "m"};
const Words kMiddleOnsets = {"b", "d", "f", "g", "k", "l",  "m",  "n",  "p",
                             "r", "s", "t", "v", "z", "th", "sh", "dr", "st"};
const Words kVowels = {"a", "e", "i", "o", "u", "a",  "e",  "o", "a",
                       "i", "e", "o", "u", "a", "ai", "ei", "ou"};
// A consonant closing an inner syllable ("Vel-mor"); the next onset is then a single letter.
const Words kInnerCodas = {"l", "n", "r", "s", "m"};
const Words kFinalCodas = {"n", "r", "l", "s", "k", "th", "nd", "rn", "sk", "m", "x", "t", "v"};

const Words kSurnameSuffixes = {"son", "ova", "ez", "ini", "berg", "ski", "ard", "ley"};
const Words kCitySuffixes = {"ton",  "burg", "vik",  "grad", "mouth",
                             "holm", "dal",  "ford", "stad", "ville"};
const Words kCityPrefixes = {"Port", "New", "East", "Upper", "Lake"};
const Words kCountrySuffixes = {"ia", "land", "ova", "aria", "istan", "ador", "ora", "enia"};
const Words kLanguageSuffixes = {"ish", "ese", "ian", "ic"};

enum class Coda { kMaybe, kAlways, kNever };

std::string_view pick(Rng& rng, const Words& words) { return words[rng.below(words.size())]; }

bool is_vowel(char c) {
  switch (c) {
    case 'a':
    case 'e':
    case 'i':
    case 'o':
    case 'u':
    case 'A':
    case 'E':
    case 'I':
    case 'O':
    case 'U':
      return true;
    default:
      return false;
  }
}

std::string syllables(Rng& rng, int count, Coda coda) {
  std::string s;
  s += pick(rng, kFirstOnsets);
  s += pick(rng, kVowels);
  for (int i = 1; i < count; ++i) {
    if (rng.bernoulli(0.25)) {
      s += pick(rng, kInnerCodas);
      std::string_view onset = pick(rng, kMiddleOnsets);
      while (onset.size() > 1) onset = pick(rng, kMiddleOnsets);
      s += onset;
    } else {
      s += pick(rng, kMiddleOnsets);
    }
    s += pick(rng, kVowels);
  }
  if (coda == Coda::kAlways || (coda == Coda::kMaybe && rng.bernoulli(0.55)))
    s += pick(rng, kFinalCodas);
  return s;
}

std::string capitalised(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string invented(Rng& rng, int lo, int hi, int stretch, Coda coda = Coda::kMaybe) {
  const int count = static_cast<int>(rng.range(lo, hi)) + stretch;
  return capitalised(syllables(rng, count, coda));
}

// Replaces every "{A}", "{N}" and "{X}" in `pattern` with a fresh draw.
std::string fill_pattern(Rng& rng, std::string_view pattern, int stretch) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{' && i + 2 < pattern.size() && pattern[i + 2] == '}') {
      switch (pattern[i + 1]) {
        case 'A':
          out += pick(rng, vocab::title_adjectives());
          break;
        case 'N':
          out += pick(rng, vocab::title_nouns());
          break;
        default:
          out += invented(rng, 2, 3, stretch);
          break;
      }
      i += 2;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

std::vector<std::string> split_words(const std::string& name) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t sp = name.find(' ', start);
    if (sp == std::string::npos) sp = name.size();
    out.push_back(name.substr(start, sp - start));
    start = sp + 1;
  }
  return out;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) out += ' ';
    out += words[i];
  }
  return out;
}

// Fixed words of names ("The", "of", "University", "Port"): never edited.
bool is_fixed_word(std::string_view w) {
  static const Words kFixed = [] {
    Words out = {"The", "A", "of", "at", "in"};
    out.insert(out.end(), kCityPrefixes.begin(), kCityPrefixes.end());
    for (const auto& t : vocab::org_types()) {
      for (std::string_view p : t.patterns) {
        size_t start = 0;
        while (start < p.size()) {
          size_t sp = p.find(' ', start);
          if (sp == std::string_view::npos) sp = p.size();
          const auto w = p.substr(start, sp - start);
          if (w.find('{') == std::string_view::npos) out.push_back(w);
          start = sp + 1;
        }
      }
    }
    return out;
  }();
  return std::find(kFixed.begin(), kFixed.end(), w) != kFixed.end();
}

// Changes one vowel of `w` to another vowel (same case); false if `w` has none.
bool change_vowel(Rng& rng, std::string& w) {
  std::vector<size_t> at;
  for (size_t i = 0; i < w.size(); ++i)
    if (is_vowel(w[i])) at.push_back(i);
  if (at.empty()) return false;
  const size_t i = at[rng.below(at.size())];
  static const char kLower[] = "aeiou";
  const bool upper = w[i] >= 'A' && w[i] <= 'Z';
  char c = w[i];
  while (c == w[i]) {
    c = kLower[rng.below(5)];
    if (upper) c = static_cast<char>(c - 'a' + 'A');
  }
  w[i] = c;
  return true;
}

std::string person_look_alike(Rng& rng, std::vector<std::string> words) {
  // Person names are "First Last".
  switch (rng.below(4)) {
    case 0:
      words.front() = first_name(rng);
      break;  // shared surname
    case 1:
      words.back() = last_name(rng);
      break;  // shared first name
    case 2:
      change_vowel(rng, words.back());
      break;
    default:
      change_vowel(rng, words.front());
      break;
  }
  return join_words(words);
}

// One edit of a non-person name: a sibling word or one changed vowel in an invented word.
std::string other_look_alike(Rng& rng, std::vector<std::string> words, Kind kind) {
  std::vector<size_t> editable;
  for (size_t i = 0; i < words.size(); ++i) {
    const bool sibling =
        (kind == Kind::kWork && vocab::title_siblings(words[i])) ||
        (kind == Kind::kOrg && i + 1 == words.size() && vocab::org_closing_siblings(words[i]));
    if (sibling || !is_fixed_word(words[i])) editable.push_back(i);
  }
  if (editable.empty()) editable.push_back(words.size() - 1);
  std::string& w = words[editable[rng.below(editable.size())]];
  const Words* siblings = kind == Kind::kWork  ? vocab::title_siblings(w)
                          : kind == Kind::kOrg ? vocab::org_closing_siblings(w)
                                               : nullptr;
  if (siblings != nullptr) {
    std::string_view other = pick(rng, *siblings);
    while (other == w) other = pick(rng, *siblings);
    w = std::string(other);
  } else if (!change_vowel(rng, w)) {
    w += pick(rng, kVowels);
  }
  return join_words(words);
}

}  // namespace

bool Registry::claim(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the lower-cased name, then mixed
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  return hashes_.insert(mix64(h)).second;
}

std::string word(Rng& rng, int min_syllables, int max_syllables, int stretch) {
  return invented(rng, min_syllables, max_syllables, stretch);
}

std::string first_name(Rng& rng, int stretch) { return invented(rng, 2, 2, stretch); }

std::string last_name(Rng& rng, int stretch) {
  if (rng.bernoulli(0.25))
    return invented(rng, 1, 2, stretch, Coda::kAlways) + std::string(pick(rng, kSurnameSuffixes));
  return invented(rng, 2, 3, stretch);
}

std::string person_name(Rng& rng, int stretch) {
  std::string first = first_name(rng, 0);
  return first + " " + last_name(rng, stretch);
}

std::string city_name(Rng& rng, int stretch) {
  const double u = rng.uniform();
  if (u < 0.5) return invented(rng, 2, 3, stretch);
  if (u < 0.85)
    return invented(rng, 1, 2, stretch, Coda::kAlways) + std::string(pick(rng, kCitySuffixes));
  std::string prefix(pick(rng, kCityPrefixes));
  return prefix + " " + invented(rng, 2, 3, stretch);
}

std::string country_name(Rng& rng, int stretch) {
  return invented(rng, 1, 2, stretch, Coda::kAlways) + std::string(pick(rng, kCountrySuffixes));
}

std::string continent_name(Rng& rng, int stretch) {
  return invented(rng, 2, 3, stretch, Coda::kAlways) + "ia";
}

std::string currency_name(Rng& rng, int stretch) {
  return syllables(rng, static_cast<int>(rng.range(1, 2)) + stretch, Coda::kAlways);
}

std::string language_name(Rng& rng, int stretch) {
  return invented(rng, 1, 2, stretch, Coda::kAlways) + std::string(pick(rng, kLanguageSuffixes));
}

std::string org_name(Rng& rng, const vocab::OrgType& type, int stretch) {
  return fill_pattern(rng, pick(rng, type.patterns), stretch);
}

std::string work_title(Rng& rng, int stretch) {
  std::string_view pattern = pick(rng, vocab::title_patterns());
  // "The {A} {N}" has a small space; once names collide, prefer patterns with invented words.
  while (stretch > 0 && pattern.find("{X}") == std::string_view::npos)
    pattern = pick(rng, vocab::title_patterns());
  return fill_pattern(rng, pattern, stretch);
}

std::string look_alike(Registry& registry, Rng& rng, const std::string& name, Kind kind) {
  const std::vector<std::string> words = split_words(name);
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::string candidate = kind == Kind::kPerson && words.size() == 2
                                ? person_look_alike(rng, words)
                                : other_look_alike(rng, words, kind);
    if (attempt >= 32) candidate = other_look_alike(rng, split_words(candidate), kind);  // 2 edits
    if (registry.claim(candidate)) return candidate;
  }
  // Every nearby name is taken (tiny names only): fall back to a longer edit of the name.
  return unique(registry, [&](int stretch) { return name + " " + invented(rng, 1, 1, stretch); });
}

}  // namespace strata::env::names
