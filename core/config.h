// Typed configuration: JSON files are turned into plain structs once, at the edge.
//
// A config struct lists its fields in one `visit` member; the same list drives parsing,
// validation of unknown keys, dumping and --help text:
//
//   struct OptimOptions {
//     double lr = 1e-6;   // learning rate
//     int warmup = 0;     // warm-up steps
//     template <class V> void visit(V& v) {
//       v("lr", lr, "learning rate");
//       v("warmup", warmup, "warm-up steps");
//     }
//     void validate() const { STRATA_CHECK(lr > 0, "lr: must be > 0, got " << lr); }
//   };
//
// Supported field types: bool, integers, float/double, std::string, std::vector<T>,
// std::map<std::string, T>, std::optional<T>, nested structs with a visit() member, and enums
// with a name table (see "Enums" below: read from and written as their names).
// validate() is optional; when present it runs after the struct is filled. It names the leaf
// key ("lr: ..."), never the path to the struct: the loader adds that path (and the file:line of
// the leaf) when the message starts with one of the struct's keys. A struct that validates a
// nested struct itself uses validate_nested("key", value), which prefixes "key.".
//
// Errors name the key's dotted path and where the value came from:
//   configs/demo.json:12: lr: expected number, got "abc"
//   --set rollout.temperature=abc: rollout.temperature: expected number, got "abc"
//   configs/demo.json:3: optim.lrr: unknown key (known keys: lr, warmup)
//   configs/demo.json:7: advantage.estimator: expected grpo or stratified, got "ppo"
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"

namespace strata::config {

using Json = nlohmann::json;

// Where a JSON document came from, to turn a key path into "file:line" or "--set k=v".
class Source {
 public:
  Source() = default;
  Source(std::string file, std::string text) : file_(std::move(file)), text_(std::move(text)) {}

  // Records that `path` (dotted) was set on the command line by `origin` ("--set a.b=c").
  void add_override(const std::string& path, const std::string& origin);
  // "file:line" of the key at `path`, the override that set it, or the file name alone.
  std::string locate(const std::string& path) const;

 private:
  std::string file_;
  std::string text_;
  std::map<std::string, std::string> overrides_;
};

// ---- dotted paths ---------------------------------------------------------------------------
// The one walker of dotted key paths ("rollout.env.topk", "data[1]"): --set overrides, flags that
// set a key, error locations, --list-keys and config diffs all go through these.

// "a.b[2].c" -> {"a", "b", "2", "c"}.
std::vector<std::string> split_path(const std::string& path);
// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string join_path(const std::string& prefix, const std::string& key);
// The node at `path` under `root`, creating missing objects on the way; throws strata::Error
// ("a.b is 3, not an object, so it has no key \"c\"") when a step is not an object.
Json& node_at(Json& root, const std::string& path);
// Dotted paths where two documents differ (a key present on one side only counts), sorted.
std::vector<std::string> diff_paths(const Json& a, const Json& b, const std::string& prefix = "");

// ---- enums ---------------------------------------------------------------------------------
// An enum takes part in configs when a function `enum_names(E)` in its namespace returns its
// name table (found by argument-dependent lookup):
//
//   enum class Schedule { kConstant, kCosine };
//   inline constexpr config::EnumName<Schedule> kScheduleNames[] = {
//       {Schedule::kConstant, "constant"}, {Schedule::kCosine, "cosine"}};
//   inline config::EnumTable<Schedule> enum_names(Schedule) { return kScheduleNames; }
//
// A config file holds the name; a name not in the table is an error naming the key, where it
// came from and the allowed names ("expected constant or cosine, got \"linear\"").
template <class E>
struct EnumName {
  E value;
  const char* name;
};
template <class E>
class EnumTable {
 public:
  template <size_t N>
  constexpr EnumTable(const EnumName<E> (&names)[N]) : begin_(names), size_(N) {}  // NOLINT
  const EnumName<E>* begin() const { return begin_; }
  const EnumName<E>* end() const { return begin_ + size_; }

 private:
  const EnumName<E>* begin_;
  size_t size_;
};

template <class T, class = void>
struct has_enum_names : std::false_type {};
template <class T>
struct has_enum_names<T, std::void_t<decltype(enum_names(std::declval<T>()))>> : std::is_enum<T> {};

// The name of `value` ("cosine").
template <class E>
const char* name_of(E value) {
  static_assert(has_enum_names<E>::value, "name_of: the enum has no enum_names() table");
  for (const auto& n : enum_names(E{}))
    if (n.value == value) return n.name;
  STRATA_ASSERT(false, "enum value " << static_cast<long long>(value) << " has no name");
  return "";
}
// The value named `name`, or nothing.
template <class E>
std::optional<E> parse_enum(std::string_view name) {
  static_assert(has_enum_names<E>::value, "parse_enum: the enum has no enum_names() table");
  for (const auto& n : enum_names(E{}))
    if (name == n.name) return n.value;
  return std::nullopt;
}
// The allowed names as prose: "grpo or stratified", "k1, k2, k3 or off".
template <class E>
std::string enum_choices() {
  std::vector<const char*> names;
  for (const auto& n : enum_names(E{})) names.push_back(n.name);
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += std::string(i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return out;
}
// The value named `name`; otherwise throws strata::Error "<key>: expected a, b or c, got "x"".
template <class E>
E enum_from_name(std::string_view name, const std::string& key) {
  if (auto v = parse_enum<E>(name)) return *v;
  throw Error(key + ": expected " + enum_choices<E>() + ", got \"" + std::string(name) + "\"");
}

// ---- removed keys ---------------------------------------------------------------------------
// A struct may list keys it no longer has, each with what to do instead:
//   static constexpr config::RemovedKey kRemovedKeys[] = {{"temperature", "set rollout.temperature"}};
// Such a key in a document is the error "update.temperature: removed: set rollout.temperature"
// rather than "unknown key".
struct RemovedKey {
  const char* key;
  const char* instead;
};
template <class T, class = void>
struct has_removed_keys : std::false_type {};
template <class T>
struct has_removed_keys<T, std::void_t<decltype(T::kRemovedKeys)>> : std::true_type {};

// Short human description of a JSON value's type and value: `"abc"`, `1.5`, `an object`.
std::string describe(const Json& j);
// Throws strata::Error: "<where>: <path>: <message>".
[[noreturn]] void fail_at(const Source& src, const std::string& path, const std::string& message);

template <class T, class = void>
struct is_struct : std::false_type {};

namespace detail {
struct NullVisitor {
  template <class U>
  void operator()(const char*, U&, const char*) {}
};
}  // namespace detail

template <class T>
struct is_struct<T, std::void_t<decltype(std::declval<T&>().visit(
                        std::declval<detail::NullVisitor&>()))>> : std::true_type {};

template <class T, class = void>
struct has_validate : std::false_type {};
template <class T>
struct has_validate<T, std::void_t<decltype(std::declval<const T&>().validate())>>
    : std::true_type {};

template <class T>
void read_value(const Json& j, T& out, const Source& src, const std::string& path);
template <class T>
void read_container(const Json& j, std::vector<T>& out, const Source& src, const std::string& path);
template <class T>
void read_container(const Json& j, std::map<std::string, T>& out, const Source& src,
                    const std::string& path);
template <class T>
void read_container(const Json& j, std::optional<T>& out, const Source& src,
                    const std::string& path);

// Visitor that fills a struct from a JSON object and remembers which keys it consumed.
class Reader {
 public:
  Reader(const Json& obj, const Source& src, std::string path)
      : obj_(obj), src_(src), path_(std::move(path)) {}

  template <class T>
  void operator()(const char* key, T& value, const char* /*doc*/) {
    known_.push_back(key);
    auto it = obj_.find(key);
    if (it == obj_.end()) return;  // keep the default
    read_value(*it, value, src_, join(key));
  }

  // A validate() failure: "key: message" (or "key.sub: message") names a key of this struct,
  // so the error gets that key's full path and location; any other message gets the struct's.
  [[noreturn]] void fail_validation(const std::string& message) const {
    const size_t colon = message.find(": ");
    if (colon != std::string::npos && colon > 0) {
      const std::string key = message.substr(0, colon);
      const bool word = key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.[]") == std::string::npos;
      const std::string first = key.substr(0, key.find_first_of(".["));
      bool known = false;
      for (const auto& k : known_) known = known || k == first;
      if (word && known) fail_at(src_, join(key), message.substr(colon + 2));
    }
    fail_at(src_, path_, message);
  }

  // Every key of the object must have been visited.
  void reject_unknown() const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      bool ok = false;
      for (const auto& k : known_) ok = ok || (k == it.key());
      if (!ok) {
        std::string list;
        for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
        fail_at(src_, join(it.key()), "unknown key (known keys: " + list + ")");
      }
    }
  }

 private:
  std::string join(const std::string& key) const { return join_path(path_, key); }
  const Json& obj_;
  const Source& src_;
  std::string path_;
  std::vector<std::string> known_;
};

template <class T>
void read_value(const Json& j, T& out, const Source& src, const std::string& path) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) fail_at(src, path, "expected true or false, got " + describe(j));
    out = j.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!j.is_number_integer() && !(j.is_number_float() && j.get<double>() == static_cast<double>(
                                                              static_cast<int64_t>(j.get<double>()))))
      fail_at(src, path, "expected integer, got " + describe(j));
    const long double v = j.is_number_unsigned()  ? static_cast<long double>(j.get<uint64_t>())
                          : j.is_number_integer() ? static_cast<long double>(j.get<int64_t>())
                                                  : static_cast<long double>(j.get<double>());
    if (v < static_cast<long double>(std::numeric_limits<T>::min()) ||
        v > static_cast<long double>(std::numeric_limits<T>::max()))
      fail_at(src, path, "integer out of range, got " + describe(j));
    out = static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!j.is_number()) fail_at(src, path, "expected number, got " + describe(j));
    out = j.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) fail_at(src, path, "expected string, got " + describe(j));
    out = j.get<std::string>();
  } else if constexpr (has_enum_names<T>::value) {
    const auto v = j.is_string() ? parse_enum<T>(j.get<std::string>()) : std::nullopt;
    if (!v) fail_at(src, path, "expected " + enum_choices<T>() + ", got " + describe(j));
    out = *v;
  } else if constexpr (is_struct<T>::value) {
    if (!j.is_object()) fail_at(src, path, "expected an object, got " + describe(j));
    Reader r(j, src, path);
    out.visit(r);
    if constexpr (has_removed_keys<T>::value)
      for (const auto& rk : T::kRemovedKeys)
        if (j.contains(rk.key)) fail_at(src, join_path(path, rk.key), std::string("removed: ") + rk.instead);
    r.reject_unknown();
    if constexpr (has_validate<T>::value) {
      try {
        out.validate();
      } catch (const Error& e) {
        r.fail_validation(e.what());
      }
    }
  } else {
    read_container(j, out, src, path);
  }
}

template <class T>
void read_container(const Json& j, std::vector<T>& out, const Source& src, const std::string& path) {
  if (!j.is_array()) fail_at(src, path, "expected a list, got " + describe(j));
  out.clear();
  for (size_t i = 0; i < j.size(); ++i) {
    T v{};
    read_value(j[i], v, src, path + "[" + std::to_string(i) + "]");
    out.push_back(std::move(v));
  }
}

template <class T>
void read_container(const Json& j, std::map<std::string, T>& out, const Source& src,
                    const std::string& path) {
  if (!j.is_object()) fail_at(src, path, "expected an object, got " + describe(j));
  out.clear();
  for (auto it = j.begin(); it != j.end(); ++it) {
    T v{};
    read_value(it.value(), v, src, join_path(path, it.key()));
    out.emplace(it.key(), std::move(v));
  }
}

template <class T>
void read_container(const Json& j, std::optional<T>& out, const Source& src,
                    const std::string& path) {
  if (j.is_null()) {
    out.reset();
    return;
  }
  T v{};
  read_value(j, v, src, path);
  out = std::move(v);
}

// ---- struct -> JSON ------------------------------------------------------------------------

template <class T>
Json to_json(const T& value);
template <class T>
Json container_to_json(const std::vector<T>& v);
template <class T>
Json container_to_json(const std::map<std::string, T>& m);
template <class T>
Json container_to_json(const std::optional<T>& o);

class Writer {
 public:
  explicit Writer(Json& obj) : obj_(obj) {}
  template <class T>
  void operator()(const char* key, const T& value, const char* /*doc*/) {
    obj_[key] = to_json(value);
  }

 private:
  Json& obj_;
};

template <class T>
Json to_json(const T& value) {
  if constexpr (is_struct<T>::value) {
    Json obj = Json::object();
    Writer w(obj);
    T copy = value;  // visit() is non-const; configs are small, a copy keeps this honest
    copy.visit(w);
    return obj;
  } else if constexpr (std::is_same_v<T, bool> || std::is_arithmetic_v<T> ||
                       std::is_same_v<T, std::string>) {
    return Json(value);
  } else if constexpr (has_enum_names<T>::value) {
    return Json(name_of(value));
  } else {
    return container_to_json(value);
  }
}
template <class T>
Json container_to_json(const std::vector<T>& v) {
  Json a = Json::array();
  for (const auto& x : v) a.push_back(to_json(x));
  return a;
}
template <class T>
Json container_to_json(const std::map<std::string, T>& m) {
  Json o = Json::object();
  for (const auto& [k, x] : m) o[k] = to_json(x);
  return o;
}
template <class T>
Json container_to_json(const std::optional<T>& o) {
  return o ? to_json(*o) : Json(nullptr);
}

// ---- documents -----------------------------------------------------------------------------

// A parsed config document plus its provenance.
struct Document {
  Json json = Json::object();
  Source source;
};

// Reads and parses a JSON file; a syntax error names file:line:column.
Document load_document(const std::string& path);
// Parses JSON text (for tests and embedded defaults); `name` is used in messages.
Document parse_document(const std::string& text, const std::string& name);
// Sets the key at dotted `path` to `value` and records `origin` (e.g. "--temperature 0.7") as
// where it came from; a step through a non-object is an error that starts with `origin`.
void set_value(Document& doc, const std::string& path, Json value, const std::string& origin);
// Applies `a.b.c=value` overrides. `value` is parsed as JSON when it is valid JSON
// (numbers, true/false, null, lists, objects, quoted strings) and taken as a string otherwise.
void apply_overrides(Document& doc, const std::vector<std::string>& sets);

// Fills a T from a document: unknown keys, mistyped values and failed validation throw
// strata::Error naming the key path and where its value came from.
template <class T>
T from_document(const Document& doc) {
  T out{};
  read_value(doc.json, out, doc.source, "");
  return out;
}

// Defaults, then the file (if any), then the overrides.
template <class T>
T load(const std::string& file, const std::vector<std::string>& sets) {
  Document doc = file.empty() ? parse_document("{}", "(defaults)") : load_document(file);
  apply_overrides(doc, sets);
  return from_document<T>(doc);
}

// Writes one "key  (default)  doc" line per leaf field, for --help style listings.
template <class T>
std::string describe_fields(T defaults);

namespace detail {
class DocWriter {
 public:
  DocWriter(std::string& out, std::string prefix) : out_(out), prefix_(std::move(prefix)) {}
  template <class T>
  void operator()(const char* key, const T& value, const char* doc) {
    const std::string path = join_path(prefix_, key);
    if constexpr (is_struct<T>::value) {
      DocWriter sub(out_, path);
      T copy = value;
      copy.visit(sub);
    } else {
      out_ += "  " + path + " = " + to_json(value).dump() + "\n      " + doc + "\n";
    }
  }

 private:
  std::string& out_;
  std::string prefix_;
};
}  // namespace detail

// Validates a nested struct from its parent's validate(): the message's leaf key gets the
// prefix "key." ("max_turns: ..." -> "env.max_turns: ..."); a message that names no key gets
// "key: " (prefix_leaf).
std::string prefix_leaf(const std::string& key, const std::string& message);
template <class T>
void validate_nested(const char* key, const T& value) {
  try {
    value.validate();
  } catch (const Error& e) {
    throw Error(prefix_leaf(key, e.what()));
  }
}

template <class T>
std::string describe_fields(T defaults) {
  std::string out;
  detail::DocWriter w(out, "");
  defaults.visit(w);
  return out;
}

}  // namespace strata::config
