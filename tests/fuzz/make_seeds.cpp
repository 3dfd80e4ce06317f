// Writes the generated seeds of tests/fuzz/corpus with strata's own writers (the rest of the
// corpus is hand-written): GGUF files (write_gguf, every decodable tensor type, tokenizer
// metadata), tokenizer.json files (the BPE trainer), a safetensors file and the tiny index's
// manifest.json. Deterministic; rerun after a format change:
//   build-fuzz/bin/fuzz_make_seeds tests/fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/gguf/gguf.h"
#include "agent/gguf/gguf_tokenizer.h"
#include "agent/tokenizer/bpe_trainer.h"
#include "core/error.h"
#include "tests/fuzz/tiny_index.h"

namespace fs = std::filesystem;
using namespace strata::agent;
using namespace strata::agent::gguf;

namespace {

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  STRATA_CHECK(out.good(), "cannot write " << path);
  std::cout << path.string() << " (" << bytes.size() << " bytes)\n";
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Deterministic filler bytes (a 32-bit LCG), so that quantised blocks hold varied scales.
std::vector<uint8_t> filler(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  for (auto& b : out) {
    seed = seed * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(seed >> 24);
  }
  return out;
}

TrainedBpe train_tiny(BpeTrainerOptions& opt) {
  opt.vocab_size = 256 + 40 + 3;
  opt.min_frequency = 2;
  opt.show_progress = false;
  BpeTrainer trainer(opt);
  for (int i = 0; i < 20; ++i)
    trainer.add_text("the search agent asks the retriever about the river town of Setofa 1901; "
                     "\xC3\xBC ber caf\xC3\xA9 answers <answer>Alpha Kreimex</answer>\n");
  return trainer.train();
}

void gguf_seeds(const fs::path& dir, const TrainedBpe& bpe, const BpeTrainerOptions& opt) {
  // Every tensor type the reader decodes, 256 elements each (one K-quant super-block).
  std::vector<WriteTensor> tensors;
  std::vector<float> values(256);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.01f * float(i) - 1.0f;
  for (uint32_t code : {0u, 1u, 30u, 8u}) {  // F32, F16, BF16, Q8_0 through quantize()
    WriteTensor t{"t." + tensor_type_name(code), {256}, code, quantize(code, values.data(), 256)};
    tensors.push_back(std::move(t));
  }
  for (uint32_t code : {2u, 3u, 6u, 7u, 10u, 11u, 12u, 13u, 14u}) {  // raw blocks
    int64_t be = 0, bb = 0;
    tensor_type_layout(code, be, bb);
    tensors.push_back({"t." + tensor_type_name(code), {256}, code, filler(size_t(256 / be * bb), code)});
  }
  std::vector<std::pair<std::string, Value>> meta = {
      {"general.architecture", Value::of_string("llama")},
      {"general.name", Value::of_string("fuzz seed")},
      {"llama.block_count", Value::of_u32(1)},
      {"llama.rope.freq_base", Value::of_f32(10000.0f)},
      {"llama.context_length", Value::of_u64(2048)},
      {"llama.use_parallel_residual", Value::of_bool(false)},
      {"general.file_type", Value::of_i32(7)},
      {"nested", Value::of_array(ValueType::kArray,
                                 {Value::of_array(ValueType::kUint32, {Value::of_u32(1), Value::of_u32(2)}),
                                  Value::of_array(ValueType::kUint32, {})})},
  };
  write_gguf((dir / "tensors.gguf").string(), meta, tensors);
  std::cout << (dir / "tensors.gguf").string() << "\n";

  // Tokenizer metadata only (what import_gguf turns into tokenizer.json), one small tensor.
  auto tok_meta = tokenizer_to_gguf(tokenizer_json(bpe, opt), tokenizer_config_json(bpe, opt), "seed");
  tok_meta.insert(tok_meta.begin(), {"general.architecture", Value::of_string("llama")});
  const std::vector<float> one(32, 0.5f);
  write_gguf((dir / "tokenizer.gguf").string(), tok_meta,
             {{"token_embd.weight", {32, 1}, 8u, quantize(8u, one.data(), 32)}});
  std::cout << (dir / "tokenizer.gguf").string() << "\n";

  // Damaged copies: truncated inside the tensor infos, and a bad magic.
  const std::string whole = read_file(dir / "tensors.gguf");
  write_file(dir / "truncated.gguf", whole.substr(0, 200));
  write_file(dir / "bad_magic.gguf", "GGUX" + whole.substr(4, 60));
}

// A safetensors file by hand (the torch writer is not linked here): header length, JSON, data.
std::string safetensors(const nlohmann::json& header, size_t data_bytes) {
  std::string text = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t(text.size()) >> (8 * i)) & 0xff);
  const auto data = filler(data_bytes, 7);
  return out + text + std::string(data.begin(), data.end());
}

void safetensors_seeds(const fs::path& dir) {
  nlohmann::json h;
  h["__metadata__"] = {{"format", "pt"}};
  h["model.embed_tokens.weight"] = {{"dtype", "BF16"}, {"shape", {4, 2}}, {"data_offsets", {0, 16}}};
  h["model.norm.weight"] = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {16, 24}}};
  h["ids"] = {{"dtype", "I64"}, {"shape", {1, 1}}, {"data_offsets", {24, 32}}};
  h["mask"] = {{"dtype", "BOOL"}, {"shape", {0}}, {"data_offsets", {32, 32}}};
  write_file(dir / "valid.safetensors", safetensors(h, 32));
  nlohmann::json bad = h;
  bad["model.norm.weight"]["data_offsets"] = {16, 4096};
  write_file(dir / "offset_past_end.safetensors", safetensors(bad, 32));
  nlohmann::json big;
  big["x"] = {{"dtype", "F16"}, {"shape", {65536, 65536, 65536, 65536}}, {"data_offsets", {0, 0}}};
  write_file(dir / "huge_shape.safetensors", safetensors(big, 0));
}

void tokenizer_seeds(const fs::path& dir, const TrainedBpe& bpe, const BpeTrainerOptions& opt) {
  write_file(dir / "trained_qwen2_style.json", tokenizer_json(bpe, opt));
  // The same vocabulary with GPT-2's pipeline (no normaliser, ByteLevel with its own regex), a
  // post-processor and an added non-special token.
  auto j = nlohmann::json::parse(tokenizer_json(bpe, opt));
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                        {"use_regex", true}};
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<|im_start|>"}, {"type_id", 0}}}},
                                     {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                         {"pair", nlohmann::json::array()},
                         {"special_tokens", {{"<|im_start|>", {{"id", "<|im_start|>"},
                                                               {"ids", {bpe.vocab.size() + 1}},
                                                               {"tokens", {"<|im_start|>"}}}}}}};
  write_file(dir / "gpt2_style.json", j.dump(1));
  write_file(dir / "empty_object.json", "{}");
  const std::string whole = tokenizer_json(bpe, opt);
  write_file(dir / "truncated.json", whole.substr(0, whole.size() / 2));
}

void manifest_seeds(const fs::path& dir) {
  const fs::path tmp = fs::temp_directory_path() / ("strata-make-seeds-" + std::to_string(::getpid()));
  strata::fuzz::build_tiny_index(tmp.string());
  const std::string manifest = read_file(tmp / "manifest.json");
  fs::remove_all(tmp);
  write_file(dir / "valid.json", manifest);
  auto j = nlohmann::json::parse(manifest);
  j.erase("files");  // an index from before checksums: opens with a warning
  write_file(dir / "no_checksums.json", j.dump(1));
  j["analyzer"]["stemmer"] = "klingon";
  write_file(dir / "unknown_stemmer.json", j.dump(1));
  write_file(dir / "not_an_object.json", "[1, 2, 3]");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_seeds CORPUS_DIR   (tests/fuzz/corpus)\n";
    return 2;
  }
  try {
    const fs::path root = argv[1];
    BpeTrainerOptions opt;
    const TrainedBpe bpe = train_tiny(opt);
    fs::create_directories(root / "fuzz_gguf");
    gguf_seeds(root / "fuzz_gguf", bpe, opt);
    safetensors_seeds(root / "fuzz_safetensors");
    tokenizer_seeds(root / "fuzz_tokenizer_json", bpe, opt);
    manifest_seeds(root / "fuzz_bm25_manifest");
  } catch (const strata::Error& e) {
    std::cerr << "fuzz_make_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
