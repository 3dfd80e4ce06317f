// train_tokenizer: trains a byte-level BPE tokenizer (Qwen2-style pre-tokenizer) on text files
// and writes a Hugging Face tokenizer.json (+ tokenizer_config.json beside it).
//
//   train_tokenizer --input /tmp/w/corpus.jsonl --vocab-size 4096 --out tok/tokenizer.json
//   train_tokenizer --input a.txt b.jsonl --vocab-size 8000 --out t.json
//                   --special '<|endoftext|>,<|im_start|>,<|im_end|>' --min-frequency 2
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/tokenizer/bpe_trainer.h"
#include "agent/tokenizer/tokenizer.h"
#include "core/cli.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Train a byte-level BPE tokenizer and write tokenizer.json (loadable by strata and by "
      "Hugging Face `tokenizers`) plus tokenizer_config.json in the same folder.",
      "train_tokenizer"};
  strata::cli::CommonOptions common;
  strata::cli::add_common(app, common);
  strata::agent::BpeTrainerOptions opts;
  std::vector<std::string> inputs;
  std::string out_path;
  std::string format = "auto";
  std::string specials = "<|endoftext|>,<|im_start|>,<|im_end|>";
  bool no_nfc = false;
  app.add_option("-i,--input", inputs, "training files (JSONL corpus/questions or plain text)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--format", format,
                 "input format: auto (.jsonl/.json are JSONL, others text), text, jsonl")
      ->capture_default_str();
  app.add_option("--vocab-size", opts.vocab_size,
                 "total vocabulary: 256 bytes + merges + special tokens")
      ->capture_default_str();
  app.add_option("-o,--out", out_path, "tokenizer.json to write (the folder is created)")
      ->required();
  app.add_option("--special", specials,
                 "comma-separated special tokens, added after the merges; the first is eos/pad "
                 "(empty: none)")
      ->capture_default_str();
  app.add_option("--min-frequency", opts.min_frequency, "never merge a pair seen fewer times")
      ->capture_default_str();
  app.add_option("--model-max-length", opts.model_max_length,
                 "model_max_length in tokenizer_config.json")
      ->capture_default_str();
  app.add_flag("--no-nfc", no_nfc, "no NFC normalizer");
  return strata::cli::run_main(app, argc, argv, [&] {
    strata::cli::apply_common(common);
    opts.nfc = !no_nfc;
    opts.special_tokens.clear();
    size_t start = 0;
    while (start <= specials.size() && !specials.empty()) {
      const size_t comma = specials.find(',', start);
      const std::string tok =
          specials.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!tok.empty()) opts.special_tokens.push_back(tok);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    const auto fmt = strata::agent::parse_train_text_format(format);
    const auto t0 = std::chrono::steady_clock::now();
    strata::agent::BpeTrainer trainer(opts);
    for (const std::string& in : inputs) {
      STRATA_LOG_INFO("reading {}", in);
      trainer.add_file(in, fmt);
    }
    const auto t1 = std::chrono::steady_clock::now();
    const strata::agent::TrainedBpe bpe = trainer.train();
    const auto t2 = std::chrono::steady_clock::now();
    strata::agent::write_tokenizer_files(bpe, opts, out_path);
    // Read it back: the file we ship must load.
    const auto tok = strata::agent::Tokenizer::from_file(out_path);
    const double count_s = std::chrono::duration<double>(t1 - t0).count();
    const double merge_s = std::chrono::duration<double>(t2 - t1).count();
    STRATA_LOG_INFO("counted {} words ({} distinct) in {:.2f}s; {} merges in {:.2f}s",
                    bpe.words_seen, bpe.distinct_words, count_s, bpe.merges.size(), merge_s);
    std::printf("wrote %s: %d tokens (%zu bytes+merges, %zu special)\n", out_path.c_str(),
                tok.vocab_size(), bpe.vocab.size(), bpe.special_tokens.size());
    return 0;
  });
}
