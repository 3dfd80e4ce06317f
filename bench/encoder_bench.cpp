// encoder_bench: strata's side of scripts/bench/encoder.sh. Encodes the first --n passages of a
// corpus JSONL ("contents", else "text") with agent::TextEncoder (float32 or --bf16) in batches
// of --batch, after one warm-up batch, and prints one JSON line: passages, tokens limit,
// seconds and passages/s.
#include <chrono>
#include <cstdio>
#include <fstream>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "agent/encoder.h"
#include "core/cli.h"
#include "core/error.h"

int main(int argc, char** argv) {
  using namespace strata::agent;
  CLI::App app{"Time strata's BERT text encoder (passages/s)."};
  app.name("encoder_bench");
  std::string model_dir, in_path, device = "cpu";
  int n = 512, batch = 64, threads = 0, max_length = 256;
  bool bf16 = false;
  app.add_option("--model", model_dir, "encoder folder (config.json, model.safetensors, tokenizer.json)")
      ->required();
  app.add_option("--in", in_path, "corpus JSONL")->required();
  app.add_option("--n", n, "passages to encode")->capture_default_str();
  app.add_option("--batch", batch, "passages per forward")->capture_default_str();
  app.add_option("--max-length", max_length, "tokens per passage incl. [CLS]/[SEP]")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (0 = default)")->capture_default_str();
  app.add_option("--device", device, "cpu, cuda, cuda:N")->capture_default_str();
  app.add_flag("--bf16", bf16, "bf16 weights and matmuls");
  return strata::cli::run_main(app, argc, argv, [&] {
    if (threads > 0) at::set_num_threads(threads);
    std::vector<std::string> texts;
    std::ifstream in(in_path);
    STRATA_CHECK(in.good(), "--in: cannot open " << in_path);
    std::string line;
    while (static_cast<int>(texts.size()) < n && std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line);
      texts.push_back(j.contains("contents") ? j["contents"].get<std::string>() : j["text"].get<std::string>());
    }
    EncoderOptions o;
    o.batch_size = batch;
    o.max_length = max_length;
    o.bf16 = bf16;
    o.device = device;
    auto enc = TextEncoder::load(model_dir, o);
    enc->encode_passages(std::vector<std::string>(texts.begin(), texts.begin() + std::min<size_t>(texts.size(), batch)));
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<float> v = enc->encode_passages(texts);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s\n", nlohmann::json({{"side", "strata"},
                                        {"dtype", bf16 ? "bf16" : "fp32"},
                                        {"passages", texts.size()},
                                        {"batch", batch},
                                        {"max_length", max_length},
                                        {"threads", at::get_num_threads()},
                                        {"seconds", s},
                                        {"passages_per_s", texts.size() / s}})
                            .dump()
                            .c_str());
    return 0;
  });
}
