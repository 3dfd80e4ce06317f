// A progress line for long work: count, rate, elapsed time and ETA, on stderr.
//
//   Progress bar("indexing", total_passages, "passages");
//   for (...) { ...; bar.add(1); }
//   bar.finish();
//
// On a terminal it redraws one line at most ~10 times a second; when stderr is not a terminal
// (CI, a log file) it prints a plain line every `log_every_s` seconds so logs stay readable.
// Thread-safe: add() may be called from several threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace strata {

class Progress {
 public:
  // total = 0 means unknown (no percentage or ETA, only count and rate).
  Progress(std::string label, uint64_t total, std::string unit = "items",
           double log_every_s = 10.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t n = 1);
  void set_total(uint64_t total) { total_ = total; }
  uint64_t count() const { return count_.load(); }
  // Prints the final line (once) with the total time.
  void finish();

  // "1h02m", "3m05s", "12.3s": exposed for tests.
  static std::string format_duration(double seconds);
  // The line that would be shown for `done` of `total` after `elapsed_s` seconds.
  static std::string render(const std::string& label, const std::string& unit, uint64_t done,
                            uint64_t total, double elapsed_s, bool final_line);

 private:
  void draw(bool final_line);

  std::string label_;
  std::string unit_;
  std::atomic<uint64_t> total_;
  std::atomic<uint64_t> count_{0};
  double log_every_s_;
  bool tty_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::atomic<int64_t> next_draw_ns_{0};
  std::mutex draw_mu_;
};

}  // namespace strata
