#include "tools/progress.h"

#include <unistd.h>

#include <cstdio>

namespace stepsim::tools {
namespace {

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
}

}  // namespace

ProgressBar::ProgressBar(std::string label, Kind kind)
    : label_(std::move(label)), kind_(kind), enabled_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
}

void ProgressBar::Update(int64_t done, int64_t total) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!started_) {  // a phase's clock starts with its first news, not with the command
    started_ = true;
    start_ = now;
  }
  if (done < total && drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r%s\033[K", Line(label_, done, total, seconds, 30, kind_).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

std::string ProgressBar::Line(const std::string& label, int64_t done, int64_t total,
                              double seconds, int width, Kind kind) {
  std::string rate;
  if (seconds > 0 && done > 0) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "  %.1f/s", static_cast<double>(done) / seconds);
    rate = buffer;
  }
  if (kind == kOpen) {
    return label + " " + std::to_string(done) + " of at most " + std::to_string(total) + rate;
  }
  const double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1;
  const int filled = static_cast<int>(fraction * width);
  std::string bar(static_cast<size_t>(width), ' ');
  for (int i = 0; i < filled && i < width; ++i) bar[static_cast<size_t>(i)] = '=';
  if (filled < width) bar[static_cast<size_t>(filled)] = '>';
  std::string line = label + " [" + bar + "] " + std::to_string(done) + "/" + std::to_string(total);
  line += rate;
  if (!rate.empty() && done < total) {
    line += "  ETA " + Duration(static_cast<double>(total - done) * seconds /
                                static_cast<double>(done));
  }
  return line;
}

}  // namespace stepsim::tools
