// Sentence templates with one-letter slots: "{N} was born in {C}." Upper-case letters name
// facts, lower-case letters filler words. Expansion appends to a reused string, so rendering a
// million passages allocates almost nothing.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "core/error.h"

namespace strata::env {

class Slots {
 public:
  void set(char key, std::string_view value) { values_[index(key)] = value; }

  // Appends `tmpl` to `out` with every "{k}" replaced by slot k, which must have been set.
  void expand(std::string& out, std::string_view tmpl) const {
    size_t i = 0;
    while (i < tmpl.size()) {
      const size_t open = tmpl.find('{', i);
      if (open == std::string_view::npos) {
        out.append(tmpl.data() + i, tmpl.size() - i);
        return;
      }
      out.append(tmpl.data() + i, open - i);
      STRATA_ASSERT(open + 2 < tmpl.size() && tmpl[open + 2] == '}',
                    "bad slot in template \"" << tmpl << "\"");
      const std::string_view value = values_[index(tmpl[open + 1])];
      STRATA_ASSERT(value.data() != nullptr,
                    "slot {" << tmpl[open + 1] << "} unset in \"" << tmpl << "\"");
      out.append(value.data(), value.size());
      i = open + 3;
    }
  }

 private:
  static size_t index(char key) {
    if (key >= 'A' && key <= 'Z') return static_cast<size_t>(key - 'A');
    STRATA_ASSERT(key >= 'a' && key <= 'z', "slot keys are letters, got '" << key << "'");
    return static_cast<size_t>(26 + key - 'a');
  }

  std::array<std::string_view, 52> values_{};
};

}  // namespace strata::env
