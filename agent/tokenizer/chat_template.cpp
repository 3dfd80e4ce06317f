#include "agent/tokenizer/chat_template.h"

#include <algorithm>

#include "agent/tokenizer/tokenizer.h"
#include "core/error.h"

namespace strata::agent {

const char* const kQwen25DefaultSystem =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

void chatml_turn(std::string& out, const std::string& role, const std::string& content) {
  out += "<|im_start|>";
  out += role;
  out += '\n';
  out += content;
  out += "<|im_end|>\n";
}

void llama3_header(std::string& out, const std::string& role) {
  out += "<|start_header_id|>";
  out += role;
  out += "<|end_header_id|>\n\n";
}

}  // namespace

ChatStyle parse_chat_style(std::string_view name) {
  if (name == "chatml") return ChatStyle::kChatml;
  if (name == "llama3") return ChatStyle::kLlama3;
  if (name == "plain") return ChatStyle::kPlain;
  STRATA_FAIL("unknown chat style \"" << name << "\" (expected chatml, llama3 or plain)");
}

const char* chat_style_name(ChatStyle style) {
  switch (style) {
    case ChatStyle::kChatml:
      return "chatml";
    case ChatStyle::kLlama3:
      return "llama3";
    case ChatStyle::kPlain:
      return "plain";
  }
  return "?";
}

ChatStyle detect_chat_style(const Tokenizer& tok) {
  if (tok.token_to_id("<|im_start|>") >= 0 && tok.token_to_id("<|im_end|>") >= 0) {
    return ChatStyle::kChatml;
  }
  if (tok.token_to_id("<|start_header_id|>") >= 0 && tok.token_to_id("<|eot_id|>") >= 0) {
    return ChatStyle::kLlama3;
  }
  return ChatStyle::kPlain;
}

std::string format_chat(const std::vector<ChatMessage>& messages, ChatStyle style,
                        bool add_generation_prompt) {
  ChatFormatOptions options;
  options.add_generation_prompt = add_generation_prompt;
  return format_chat(messages, style, options);
}

std::string format_chat(const std::vector<ChatMessage>& messages, ChatStyle style,
                        const ChatFormatOptions& options) {
  std::string out;
  switch (style) {
    case ChatStyle::kChatml:
      if (!options.default_system.empty() &&
          (messages.empty() || messages.front().role != "system")) {
        chatml_turn(out, "system", options.default_system);
      }
      for (const ChatMessage& m : messages) chatml_turn(out, m.role, m.content);
      if (options.add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    case ChatStyle::kLlama3:
      out += "<|begin_of_text|>";
      for (const ChatMessage& m : messages) {
        llama3_header(out, m.role);
        out += trim(m.content);
        out += "<|eot_id|>";
      }
      if (options.add_generation_prompt) llama3_header(out, "assistant");
      break;
    case ChatStyle::kPlain:
      for (size_t i = 0; i < messages.size(); ++i) {
        if (i > 0) out += "\n\n";
        out += messages[i].content;
      }
      break;
  }
  return out;
}

std::vector<int32_t> chat_stop_ids(const Tokenizer& tok, ChatStyle style) {
  std::vector<int32_t> ids;
  const char* marker = style == ChatStyle::kChatml   ? "<|im_end|>"
                       : style == ChatStyle::kLlama3 ? "<|eot_id|>"
                                                     : nullptr;
  if (marker != nullptr && tok.token_to_id(marker) >= 0) ids.push_back(tok.token_to_id(marker));
  if (tok.eos_id()) ids.push_back(*tok.eos_id());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace strata::agent
