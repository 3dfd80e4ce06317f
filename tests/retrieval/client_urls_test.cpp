// The `retriever` option's URL list: a string (one URL or a comma-separated list) or a JSON list
// in configs, written back as it was given; bad lists name the key and where the value came from.
#include "retrieval/client_urls.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"

namespace strata::retrieval {
namespace {

struct Cfg {
  RetrieverUrls retriever = "http://127.0.0.1:8000/retrieve";
  template <class V>
  void visit(V& v) {
    v("retriever", retriever, "retrieval endpoint");
  }
};

Cfg parse(const std::string& text, const std::vector<std::string>& sets = {}) {
  auto doc = config::parse_document(text, "cfg.json");
  config::apply_overrides(doc, sets);
  return config::from_document<Cfg>(doc);
}

std::string error_of(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    parse(text, sets);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(RetrieverUrls, SplitsTrimsAndRefusesBadLists) {
  EXPECT_EQ(split_urls("http://a/retrieve"), std::vector<std::string>{"http://a/retrieve"});
  EXPECT_EQ(split_urls(" http://a/retrieve , http://b/retrieve"),
            (std::vector<std::string>{"http://a/retrieve", "http://b/retrieve"}));
  EXPECT_THROW(split_urls(""), Error);
  EXPECT_THROW(split_urls("http://a,,http://b"), Error);
  EXPECT_THROW(split_urls("http://a,http://a"), Error);
}

TEST(RetrieverUrls, ConfigTakesAStringOrAListAndWritesItBackAsGiven) {
  // One URL: read and written exactly as a plain string key was.
  Cfg one = parse(R"({"retriever": "http://n0:8000/retrieve"})");
  EXPECT_EQ(one.retriever.urls(), std::vector<std::string>{"http://n0:8000/retrieve"});
  EXPECT_EQ(config::to_json(one)["retriever"], config::Json("http://n0:8000/retrieve"));
  const std::string& as_string = one.retriever;  // what ClientOptions::url takes
  EXPECT_EQ(as_string, "http://n0:8000/retrieve");
  EXPECT_EQ(config::to_json(Cfg{})["retriever"], config::Json("http://127.0.0.1:8000/retrieve"));

  Cfg list = parse(R"({"retriever": ["http://n0:8000/retrieve", "http://n1:8000/retrieve"]})");
  EXPECT_EQ(list.retriever.str(), "http://n0:8000/retrieve,http://n1:8000/retrieve");
  EXPECT_EQ(config::to_json(list)["retriever"],
            config::Json::parse(R"(["http://n0:8000/retrieve", "http://n1:8000/retrieve"])"));
  // The command line's comma-separated form is the same list.
  Cfg set = parse("{}", {"retriever=http://n0:8000/retrieve,http://n1:8000/retrieve"});
  EXPECT_EQ(set.retriever, list.retriever);
}

TEST(RetrieverUrls, BadValuesNameTheKeyAndWhere) {
  EXPECT_NE(error_of("{\n\"retriever\": 3}").find("cfg.json:2: retriever: expected a URL or a list of URLs, got 3"),
            std::string::npos)
      << error_of("{\n\"retriever\": 3}");
  EXPECT_NE(error_of(R"({"retriever": []})").find("retriever: an empty list"), std::string::npos);
  const std::string twice = error_of(R"({"retriever": ["http://a/retrieve", "http://a/retrieve"]})");
  EXPECT_NE(twice.find("retriever[1]: the URL http://a/retrieve is listed twice"), std::string::npos) << twice;
  const std::string empty_item = error_of("{}", {"retriever=http://a/retrieve,"});
  EXPECT_NE(empty_item.find("retriever: an empty item in the URL list"), std::string::npos) << empty_item;
  EXPECT_NE(empty_item.find("--set retriever="), std::string::npos) << empty_item;
}

}  // namespace
}  // namespace strata::retrieval
