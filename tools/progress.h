// A progress bar on standard error for long sweeps and fits: done/total,
// rate and time left, redrawn at most ten times a second. Quiet unless
// standard error is a terminal, so logs and captured output never hold it.
// (Debian has no C++ progress-bar library; this is the small one needed.)
//
// Wall-clock time is what it shows; it never reaches stepsim's outputs.
#ifndef STEPSIM_TOOLS_PROGRESS_H_
#define STEPSIM_TOOLS_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace stepsim::tools {

class ProgressBar {
 public:
  // kBounded: the work has a known size; a bar and the time left.
  // kOpen: only an upper bound on it is known (a fit's simulations stop
  // once the K fastest are settled); a count and a rate, no bar, no ETA.
  enum Kind { kBounded, kOpen };
  // `label` starts the line ("sweep", "fit").
  explicit ProgressBar(std::string label, Kind kind = kBounded);
  ~ProgressBar();  // clears the line if one was drawn

  // The first call starts the clock the rate and ETA are measured from.
  void Update(int64_t done, int64_t total);

  // The line for `done` of `total` after `seconds`, at `width` bar
  // characters: "sweep [=====>     ] 120/400  310.2/s  ETA 1s", or for
  // open work "fit: simulating 12 of at most 400  3.1/s".
  static std::string Line(const std::string& label, int64_t done, int64_t total,
                          double seconds, int width = 30, Kind kind = kBounded);

 private:
  std::string label_;
  Kind kind_;
  bool enabled_ = false;
  bool drawn_ = false;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_PROGRESS_H_
