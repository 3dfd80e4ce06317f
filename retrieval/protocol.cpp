#include "retrieval/protocol.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include <nlohmann/json.hpp>

namespace strata::retrieval {

using nlohmann::json;

namespace {

std::string type_name(const json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number_float()) return "number";
  return j.type_name();  // "null", "boolean", "string", "array", "object"
}

// How deep arrays and objects nest in `body` (outside strings), without parsing it; stops
// counting once past `limit`. Bodies nested deeper are refused before they reach the parser, whose
// error paths (and nlohmann's dump) recurse once per level.
int nesting_depth(std::string_view body, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') --depth;
  }
  return deepest;
}

std::string dump_safe(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A value for an error message: compact JSON, cut to 120 bytes so that a huge bad value is not
// echoed back whole.
std::string brief(const json& j) {
  std::string s = dump_safe(j);
  constexpr size_t kMax = 120;
  if (s.size() > kMax) {
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 chars
    s = s.substr(0, cut) + "... (" + std::to_string(s.size()) + " bytes)";
  }
  return s;
}

bool fail(RequestError& err, const char* kind, std::string message) {
  err.kind = kind;
  err.message = std::move(message);
  return false;
}

}  // namespace

bool valid_utf8(std::string_view s, size_t* bad_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    if (i + len > n) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        if (bad_offset) *bad_offset = i;
        return false;
      }
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    if (overlong || surrogate || cp > 0x10FFFF) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

bool parse_retrieve_request(std::string_view body, const RequestLimits& limits,
                            RetrieveRequest& out, RequestError& err) {
  size_t bad = 0;
  if (!valid_utf8(body, &bad))
    return fail(err, "invalid_utf8",
                "request body is not valid UTF-8 (bad byte at offset " + std::to_string(bad) + ")");
  constexpr int kMaxDepth = 32;  // a request needs 2 (the object and its list of queries)
  if (nesting_depth(body, kMaxDepth) > kMaxDepth)
    return fail(err, "bad_json", "JSON nested more than " + std::to_string(kMaxDepth) + " levels deep");
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double (`"topk": 1e400`), which
    // used to escape as an exception (a 500 instead of a 400). nlohmann's message quotes the
    // token it read, which may be the whole body: cut it like a bad value.
    std::string what = e.what();
    if (constexpr size_t kMax = 240; what.size() > kMax) {
      size_t cut = kMax;
      while (cut > 0 && (static_cast<unsigned char>(what[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 chars
      what = what.substr(0, cut) + "... (" + std::to_string(what.size()) + " bytes)";
    }
    return fail(err, "bad_json", "malformed JSON: " + what);
  }
  if (!j.is_object())
    return fail(err, "bad_field", "request body must be a JSON object, got " + type_name(j));

  auto q = j.find("queries");
  if (q == j.end() || q->is_null())
    return fail(err, "missing_queries", "missing \"queries\": expected a list of strings");
  if (!q->is_array())
    return fail(err, "bad_field", "\"queries\" must be a list of strings, got " + type_name(*q));
  if (q->empty()) return fail(err, "missing_queries", "\"queries\" is empty");
  if (q->size() > static_cast<size_t>(limits.max_queries))
    return fail(err, "too_many_queries",
                "too many queries: " + std::to_string(q->size()) + " (at most " +
                    std::to_string(limits.max_queries) + " per request)");
  out.queries.clear();
  out.queries.reserve(q->size());
  for (size_t i = 0; i < q->size(); ++i) {
    const json& item = (*q)[i];
    if (!item.is_string())
      return fail(err, "bad_field",
                  "\"queries[" + std::to_string(i) + "]\" must be a string, got " + type_name(item));
    const auto& s = item.get_ref<const std::string&>();
    if (s.size() > limits.max_query_bytes)
      return fail(err, "query_too_long",
                  "\"queries[" + std::to_string(i) + "]\" is " + std::to_string(s.size()) +
                      " bytes long (at most " + std::to_string(limits.max_query_bytes) + ")");
    // JSON escapes such as \u0000 are valid; invalid UTF-8 cannot survive the check above, but
    // the decoded string is checked again in case of future parser changes.
    if (!valid_utf8(s))
      return fail(err, "invalid_utf8",
                  "\"queries[" + std::to_string(i) + "]\" is not valid UTF-8");
    out.queries.push_back(s);
  }

  out.topk = limits.default_topk;
  if (auto t = j.find("topk"); t != j.end() && !t->is_null()) {
    if (!t->is_number_integer())
      return fail(err, "bad_field", "\"topk\" must be an integer, got " + type_name(*t) + " " +
                                        brief(*t));
    int64_t k = 0;
    if (t->is_number_unsigned()) {
      const uint64_t u = t->get<uint64_t>();
      k = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
              ? std::numeric_limits<int64_t>::max()
              : static_cast<int64_t>(u);
    } else {
      k = t->get<int64_t>();
    }
    if (k <= 0 || k > limits.max_topk)
      return fail(err, "bad_topk",
                  "\"topk\" must be between 1 and " + std::to_string(limits.max_topk) + ", got " +
                      brief(*t));
    out.topk = static_cast<int>(k);
  }

  out.return_scores = false;
  if (auto r = j.find("return_scores"); r != j.end() && !r->is_null()) {
    if (!r->is_boolean())
      return fail(err, "bad_field", "\"return_scores\" must be true or false, got " +
                                        type_name(*r) + " " + brief(*r));
    out.return_scores = r->get<bool>();
  }
  return true;
}

std::string render_retrieve_response(const Searcher& searcher,
                                     const std::vector<std::vector<Hit>>& hits,
                                     bool return_scores) {
  // ordered_json keeps Search-R1's key order ("id" before "contents", "document" before "score").
  using ojson = nlohmann::ordered_json;
  ojson result = ojson::array();
  for (const auto& per_query : hits) {
    ojson list = ojson::array();
    for (const Hit& h : per_query) {
      const DocumentView d = searcher.document(h.doc);
      ojson doc = {{"id", std::string(d.id)}, {"contents", std::string(d.contents)}};
      if (return_scores) {
        list.push_back({{"document", std::move(doc)}, {"score", h.score}});
      } else {
        list.push_back(std::move(doc));
      }
    }
    result.push_back(std::move(list));
  }
  ojson body = {{"result", std::move(result)}};
  return body.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

std::string render_error(std::string_view message) {
  json body = {{"error", std::string(message)}};
  return dump_safe(body);
}

std::string make_retrieve_body(const RetrieveRequest& req) {
  json body = {{"queries", req.queries}, {"return_scores", req.return_scores}};
  if (req.topk > 0) body["topk"] = req.topk;
  return dump_safe(body);
}

namespace {

bool parse_document(const json& d, Document& doc, std::string& error) {
  if (!d.is_object()) {
    error = "a document must be an object, got " + type_name(d);
    return false;
  }
  auto id = d.find("id");
  if (id == d.end()) {
    error = "a document has no \"id\"";
    return false;
  }
  if (id->is_string()) {
    doc.id = id->get<std::string>();
  } else if (id->is_number_integer()) {
    doc.id = dump_safe(*id);
  } else {
    error = "a document \"id\" must be a string or an integer, got " + type_name(*id);
    return false;
  }
  auto c = d.find("contents");
  if (c == d.end() || !c->is_string()) {
    error = "document " + doc.id + " has no string \"contents\"";
    return false;
  }
  doc.contents = c->get<std::string>();
  return true;
}

}  // namespace

bool parse_retrieve_response(std::string_view body, long expected_queries,
                             std::vector<std::vector<Document>>& out, std::string& error) {
  out.clear();
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    error = std::string("response is not JSON: ") + e.what();
    return false;
  }
  if (!j.is_object()) {
    error = "response must be a JSON object, got " + type_name(j);
    return false;
  }
  auto r = j.find("result");
  if (r == j.end() || !r->is_array()) {
    error = "response has no \"result\" list";
    return false;
  }
  if (expected_queries >= 0 && r->size() != static_cast<size_t>(expected_queries)) {
    error = "response has " + std::to_string(r->size()) + " result lists for " +
            std::to_string(expected_queries) + " queries";
    return false;
  }
  out.resize(r->size());
  for (size_t i = 0; i < r->size(); ++i) {
    const json& list = (*r)[i];
    if (!list.is_array()) {
      error = "result[" + std::to_string(i) + "] must be a list, got " + type_name(list);
      return false;
    }
    out[i].reserve(list.size());
    for (const json& entry : list) {
      Document doc;
      if (!entry.is_object()) {
        error = "result[" + std::to_string(i) + "] holds a " + type_name(entry) + ", not an object";
        return false;
      }
      auto d = entry.find("document");
      if (d != entry.end()) {  // {"document": {...}, "score": x}
        if (!parse_document(*d, doc, error)) return false;
        auto s = entry.find("score");
        if (s != entry.end()) {
          if (!s->is_number()) {
            error = "a \"score\" must be a number, got " + type_name(*s);
            return false;
          }
          doc.score = s->get<float>();
        }
      } else if (!parse_document(entry, doc, error)) {  // bare {"id", "contents"}
        return false;
      }
      out[i].push_back(std::move(doc));
    }
  }
  return true;
}

std::string error_message_from_body(std::string_view body) {
  try {
    json j = json::parse(body.begin(), body.end());
    if (j.is_object()) {
      auto e = j.find("error");
      if (e != j.end() && e->is_string()) return e->get<std::string>();
      if (e != j.end()) return dump_safe(*e);
    }
  } catch (const json::exception&) {
  }
  constexpr size_t kMax = 300;
  std::string s(body.substr(0, kMax));
  if (body.size() > kMax) s += "...";
  return s;
}

}  // namespace strata::retrieval
