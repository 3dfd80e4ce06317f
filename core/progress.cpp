#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace strata {

namespace {
std::string human_count(double v) {
  if (v >= 1e9) return fmt::format("{:.2f}G", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}
}  // namespace

Progress::Progress(std::string label, uint64_t total, std::string unit, double log_every_s)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      log_every_s_(log_every_s),
      tty_(isatty(STDERR_FILENO) != 0),
      enabled_(std::getenv("STRATA_NO_PROGRESS") == nullptr),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const auto total = static_cast<int64_t>(s + 0.5);
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
}

std::string Progress::render(const std::string& label, const std::string& unit, uint64_t done,
                             uint64_t total, double elapsed_s, bool final_line) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  std::string line = label + ": ";
  if (total > 0) {
    const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth);
    line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    line += fmt::format("{:5.1f}% {}/{} {}", 100.0 * frac, human_count(done), human_count(total),
                        unit);
  } else {
    line += human_count(static_cast<double>(done)) + " " + unit;
  }
  line += fmt::format(", {}/s, {}", human_count(rate), format_duration(elapsed_s));
  if (final_line) {
    line += " total";
  } else if (total > 0 && rate > 0 && done < total) {
    line += ", ETA " + format_duration(static_cast<double>(total - done) / rate);
  }
  return line;
}

void Progress::add(uint64_t n) {
  count_.fetch_add(n, std::memory_order_relaxed);
  if (!enabled_) return;
  const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - start_)
                          .count();
  int64_t due = next_draw_ns_.load(std::memory_order_relaxed);
  if (now_ns < due) return;
  const int64_t interval = tty_ ? 100'000'000 : static_cast<int64_t>(log_every_s_ * 1e9);
  if (next_draw_ns_.compare_exchange_strong(due, now_ns + interval)) {
    // The first call only arms the timer off a terminal, so short jobs print one final line.
    if (tty_ || due != 0) draw(false);
  }
}

void Progress::draw(bool final_line) {
  std::lock_guard<std::mutex> lock(draw_mu_);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string line = render(label_, unit_, count_.load(), total_.load(), elapsed, final_line);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

}  // namespace strata
