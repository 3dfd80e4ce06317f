// The pieces of the endpoint agent that need no server: stop-string restoration, the word codec
// and the completions URL.
#include <gtest/gtest.h>

#include "eval/chat_client.h"
#include "eval/endpoint_agent.h"
#include "eval/text_codec.h"
#include "tests/test_util.h"

namespace strata::eval {
namespace {

ChatResponse reply(std::string content, std::string finish, std::string stop = "") {
  ChatResponse r;
  r.content = std::move(content);
  r.finish_reason = std::move(finish);
  r.stop_string = std::move(stop);
  return r;
}

TEST(RestoreStop, PutsBackTheStopStringTheServerDropped) {
  // OpenAI style: no stop_reason; the open tag says which stop string it was.
  EXPECT_EQ(restore_stop(reply("<think>x</think><search> q ", "stop")),
            "<think>x</think><search> q </search>");
  EXPECT_EQ(restore_stop(reply("<answer> Paris", "stop")), "<answer> Paris</answer>");
  // vLLM style: stop_reason names it.
  EXPECT_EQ(restore_stop(reply("<search>q", "stop", "</search>")), "<search>q</search>");
  // Already there (servers that keep it), EOS without an open tag, and a length cut stay as is.
  EXPECT_EQ(restore_stop(reply("<answer>x</answer>\n", "stop")), "<answer>x</answer>\n");
  EXPECT_EQ(restore_stop(reply("I do not know.", "stop")), "I do not know.");
  EXPECT_EQ(restore_stop(reply("<search> long", "length")), "<search> long");
  // A closed search followed by an open answer: the answer's closing tag.
  EXPECT_EQ(restore_stop(reply("<search>a</search> <answer>b", "stop")),
            "<search>a</search> <answer>b</answer>");
}

TEST(WordCodec, RoundTripsAndCountsWords) {
  WordCodec c;
  const std::string text = "  Doc 1(Title: \"Paris\") Paris is\n\nthe capital. \xC3\xA9t\xC3\xA9  ";
  const auto ids = c.encode(text);
  EXPECT_EQ(c.decode(ids), text);
  EXPECT_EQ(ids.size(), 9u);                                 // 8 words + the trailing spaces
  EXPECT_EQ(c.encode(" is"), std::vector<int32_t>{ids[4]});  // interned once
  EXPECT_TRUE(c.encode("").empty());
}

TEST(ChatClient, CompletionsUrlAndOptions) {
  EXPECT_EQ(chat_completions_url("http://h:8001"), "http://h:8001/v1/chat/completions");
  EXPECT_EQ(chat_completions_url("http://h:8001/"), "http://h:8001/v1/chat/completions");
  EXPECT_EQ(chat_completions_url("http://h:8001/v1"), "http://h:8001/v1/chat/completions");
  EXPECT_EQ(chat_completions_url("https://api.x/v1/chat/completions"),
            "https://api.x/v1/chat/completions");
  ChatClientOptions o;
  o.url = "h:8001";
  o.model = "m";
  EXPECT_NE(testing::error_of([&] { o.validate(); }).find("expected an http:// or https:// URL"),
            std::string::npos);
  o.url = "http://h";
  o.model = "";
  EXPECT_NE(testing::error_of([&] { o.validate(); }).find("--endpoint-model"), std::string::npos);
}

}  // namespace
}  // namespace strata::eval
