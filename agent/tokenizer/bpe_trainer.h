// Trains a byte-level BPE tokenizer (Qwen2-style: NFC, the Qwen2 split regex, ByteLevel) and
// writes it as a Hugging Face tokenizer.json that both strata's Tokenizer and the Python
// `tokenizers` library load and encode the same way.
//
//   BpeTrainerOptions opt;  opt.vocab_size = 4096;
//   BpeTrainer trainer(opt);
//   trainer.add_file("corpus.jsonl");
//   TrainedBpe bpe = trainer.train();
//   write_tokenizer_files(bpe, opt, "out/tokenizer.json");  // + out/tokenizer_config.json
//
// Ids: 0..255 are the 256 bytes (in GPT-2's byte order), then one id per merge, then the
// special tokens (added tokens, special=true, in the order given). Training is deterministic:
// the most frequent pair is merged first and ties go to the pair whose (left, right) token
// strings are smallest bytewise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace strata::agent {

enum class TrainTextFormat {
  kAuto,   // .jsonl / .json -> kJsonl, anything else -> kText
  kText,   // plain text, line by line
  kJsonl,  // one JSON object per line: `contents`, else `title`+`text`, else `question` (+
           // `golden_answers`)
};

// "auto", "text", "jsonl"; anything else is a strata::Error.
TrainTextFormat parse_train_text_format(std::string_view name);

struct BpeTrainerOptions {
  int vocab_size = 4096;  // total ids: 256 bytes + merges + special tokens
  int min_frequency = 2;  // pairs seen fewer times than this are never merged
  // Added as special tokens after the merges; the first is the eos and pad token.
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  std::string pattern;           // pre-tokenizer Split regex; empty = Qwen2's
  bool nfc = true;               // NFC normalizer (as Qwen2)
  int model_max_length = 32768;  // written to tokenizer_config.json
  bool show_progress = true;     // progress bar on stderr while merging
};

struct TrainedBpe {
  std::vector<std::string> vocab;                           // id -> byte-level token
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<std::string> special_tokens;                  // ids vocab.size(), +1, ...
  uint64_t words_seen = 0;  // pre-tokenized words counted (with repeats)
  uint64_t distinct_words = 0;
};

class BpeTrainer {
 public:
  // Checks the options (vocab_size must leave room for the 256 bytes and the specials).
  explicit BpeTrainer(BpeTrainerOptions options);
  ~BpeTrainer();
  BpeTrainer(const BpeTrainer&) = delete;
  BpeTrainer& operator=(const BpeTrainer&) = delete;

  // Counts the words of `text` (special tokens in it are taken out first).
  void add_text(std::string_view text);
  // Reads a training file; a JSONL line without usable text is a strata::Error (file:line).
  void add_file(const std::string& path, TrainTextFormat format = TrainTextFormat::kAuto);

  TrainedBpe train();

  const BpeTrainerOptions& options() const { return options_; }

 private:
  struct Counter;
  BpeTrainerOptions options_;
  std::unique_ptr<Counter> counter_;
};

// tokenizer.json text for a trained model.
std::string tokenizer_json(const TrainedBpe& bpe, const BpeTrainerOptions& options);
// tokenizer_config.json text: eos/pad token, model_max_length, a ChatML chat_template when
// <|im_start|>/<|im_end|> are among the specials, and "strata_chat_style".
std::string tokenizer_config_json(const TrainedBpe& bpe, const BpeTrainerOptions& options);
// Writes tokenizer.json to `json_path` and tokenizer_config.json beside it (creating the folder).
void write_tokenizer_files(const TrainedBpe& bpe, const BpeTrainerOptions& options,
                           const std::string& json_path);

}  // namespace strata::agent
