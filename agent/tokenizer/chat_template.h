// Chat prompts as text, in the formats the policy models were tuned on:
//   chatml  Qwen / Qwen2 / Qwen2.5:  <|im_start|>role\ncontent<|im_end|>\n ...
//   llama3  Llama-3 instruct:        <|begin_of_text|><|start_header_id|>role<|end_header_id|>
//                                    \n\ncontent<|eot_id|> ...   (content trimmed, as Meta's
//                                    template does)
//   plain   base models: the contents joined by a blank line, no roles, no special tokens.
// The text is then tokenized with allow_special=true so the markers become their special ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::agent {

class Tokenizer;

enum class ChatStyle { kChatml, kLlama3, kPlain };

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (any name is passed through)
  std::string content;
};

struct ChatFormatOptions {
  bool add_generation_prompt = true;  // open an assistant turn at the end
  // chatml only: when the first message is not a system message, insert this system prompt
  // first (empty: none). Qwen2.5's own template uses kQwen25DefaultSystem.
  std::string default_system;
};

// Qwen2.5's default system prompt.
extern const char* const kQwen25DefaultSystem;

// "chatml", "llama3", "plain"; anything else is a strata::Error listing these.
ChatStyle parse_chat_style(std::string_view name);
const char* chat_style_name(ChatStyle style);
// chatml when the tokenizer has <|im_start|>, llama3 when it has <|start_header_id|>, else plain.
ChatStyle detect_chat_style(const Tokenizer& tok);

std::string format_chat(const std::vector<ChatMessage>& messages, ChatStyle style,
                        bool add_generation_prompt);
std::string format_chat(const std::vector<ChatMessage>& messages, ChatStyle style,
                        const ChatFormatOptions& options);

// Ids that end an assistant turn in `style`: the end-of-turn marker (<|im_end|>, <|eot_id|>)
// when the tokenizer has it, and its eos token. Sorted, without duplicates.
std::vector<int32_t> chat_stop_ids(const Tokenizer& tok, ChatStyle style);

}  // namespace strata::agent
