#include "core/config.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace strata::config {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '.' || c == '[') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else if (c != ']') {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

Json& node_at(Json& root, const std::string& path) {
  Json* node = &root;
  std::string sofar;
  for (const auto& part : split_path(path)) {
    if (!node->is_object())
      throw Error((sofar.empty() ? std::string("the document") : sofar) + " is " + describe(*node) +
                  ", not an object, so it has no key \"" + part + "\"");
    sofar = join_path(sofar, part);
    node = &(*node)[part];  // creates a null that the next step turns into an object
    if (node->is_null() && sofar != path) *node = Json::object();
  }
  return *node;
}

std::vector<std::string> diff_paths(const Json& a, const Json& b, const std::string& prefix) {
  std::vector<std::string> out;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
    for (const auto& k : keys) {
      const std::string p = join_path(prefix, k);
      if (!a.contains(k) || !b.contains(k)) {
        out.push_back(p);
      } else {
        auto sub = diff_paths(a[k], b[k], p);
        out.insert(out.end(), sub.begin(), sub.end());
      }
    }
  } else if (a != b) {
    out.push_back(prefix);
  }
  return out;
}

std::string prefix_leaf(const std::string& key, const std::string& message) {
  const size_t colon = message.find(": ");
  const bool names_key = colon != std::string::npos && colon > 0 &&
                         message.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.[]") == colon;
  return key + (names_key ? "." : ": ") + message;
}

namespace {

// 1-based line of byte offset `pos` in `text`.
size_t line_of(const std::string& text, size_t pos) {
  size_t line = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

}  // namespace

void Source::add_override(const std::string& path, const std::string& origin) {
  overrides_[path] = origin;
}

std::string Source::locate(const std::string& path) const {
  // The most specific override that covers the path wins.
  std::string best;
  for (const auto& [p, origin] : overrides_) {
    const bool covers = path == p || (path.size() > p.size() && path.compare(0, p.size(), p) == 0 &&
                                      (path[p.size()] == '.' || path[p.size()] == '['));
    if (covers && p.size() >= best.size()) best = origin;
  }
  if (!best.empty()) return best;
  if (text_.empty()) return file_;
  // Find the key in the text: each component of the path, as a quoted key followed by ':',
  // searched after the previous one. Array indices are skipped. This is exact for the usual
  // one-key-per-line config files and a good guess otherwise.
  size_t pos = 0;
  bool found_any = false;
  for (const auto& part : split_path(path)) {
    if (!part.empty() && std::isdigit(static_cast<unsigned char>(part[0]))) continue;
    const std::string needle = "\"" + part + "\"";
    size_t at = pos;
    size_t hit = std::string::npos;
    while ((at = text_.find(needle, at)) != std::string::npos) {
      size_t k = at + needle.size();
      while (k < text_.size() && std::isspace(static_cast<unsigned char>(text_[k]))) ++k;
      if (k < text_.size() && text_[k] == ':') {
        hit = at;
        break;
      }
      at += needle.size();
    }
    if (hit == std::string::npos) break;
    pos = hit;
    found_any = true;
  }
  if (!found_any) return file_;
  return file_ + ":" + std::to_string(line_of(text_, pos));
}

std::string describe(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "a list";
    case Json::value_t::string: {
      std::string s = j.dump();
      if (s.size() > 60) s = s.substr(0, 57) + "...\"";
      return s;
    }
    default: return j.dump();
  }
}

void fail_at(const Source& src, const std::string& path, const std::string& message) {
  const std::string where = src.locate(path);
  throw Error((where.empty() ? "" : where + ": ") + (path.empty() ? "(top level)" : path) + ": " +
              message);
}

Document parse_document(const std::string& text, const std::string& name) {
  Document doc;
  try {
    doc.json = Json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const Json::parse_error& e) {
    // e.byte is the 1-based offset of the error.
    size_t line = 1, col = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string msg = e.what();
    // nlohmann's message starts with "[json.exception.parse_error.101] parse error at ...".
    if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
    throw Error(name + ":" + std::to_string(line) + ":" + std::to_string(col) + ": invalid JSON: " +
                msg);
  } catch (const Json::out_of_range& e) {
    // A number beyond a double ("number overflow parsing '1e400'"): name its line and key.
    const std::string what = e.what();
    const size_t q1 = what.find('\''), q2 = what.rfind('\'');
    const std::string token = q1 != std::string::npos && q2 > q1 ? what.substr(q1 + 1, q2 - q1 - 1) : "";
    const size_t at = token.empty() ? std::string::npos : text.find(token);
    if (at == std::string::npos) throw Error(name + ": a number out of range (" + what + ")");
    const size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
    std::string key;
    const size_t colon = text.rfind(':', at);
    const size_t close = colon == std::string::npos ? std::string::npos : text.rfind('"', colon);
    const size_t open = close == std::string::npos || close == 0 ? std::string::npos : text.rfind('"', close - 1);
    if (open != std::string::npos) key = text.substr(open + 1, close - open - 1) + ": ";
    throw Error(name + ":" + std::to_string(line) + ": " + key + "number out of range: " + token +
                " (a double holds at most about 1.8e308)");
  }
  if (!doc.json.is_object())
    throw Error(name + ": a config file must hold a JSON object, got " + describe(doc.json));
  doc.source = Source(name, text);
  return doc;
}

Document load_document(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_document(ss.str(), path);
}

void set_value(Document& doc, const std::string& path, Json value, const std::string& origin) {
  try {
    node_at(doc.json, path) = std::move(value);
  } catch (const Error& e) {
    throw Error(origin + ": " + e.what());
  }
  doc.source.add_override(path, origin);
}

void apply_overrides(Document& doc, const std::vector<std::string>& sets) {
  for (const auto& set : sets) {
    const auto eq = set.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("--set " + set + ": expected KEY=VALUE, e.g. --set rollout.temperature=0.7");
    const std::string key = set.substr(0, eq);
    const std::string raw = set.substr(eq + 1);
    Json value;
    try {
      value = Json::parse(raw);
    } catch (const Json::parse_error&) {
      value = raw;  // not JSON: a bare string
    } catch (const Json::out_of_range&) {
      throw Error("--set " + set + ": " + key + ": number out of range: " + raw +
                  " (a double holds at most about 1.8e308)");
    }
    set_value(doc, key, std::move(value), "--set " + set);
  }
}

}  // namespace strata::config
