// `stepsim fit`: which candidates of the search space (sim/fit_space.h) fit
// the device, and which of those are fastest. Exact for the K fastest:
//
//  1. In worker processes, every candidate is resolved (invalid ones are
//     counted by the field their first problem names) and bounded cheaply:
//     the static memory of every rank (weights, gradients, optimizer,
//     communication workspace) against the device; then, from the step
//     profiles of one stage (the one with the most layers), a lower bound
//     on the peak of the ranks that run it (static + the highest point of
//     one step) and on the step time (the busy time of that stage's steps
//     on its rank, plus the rank's gradient reduction; or any rank's
//     gradient reduction).
//  2. The survivors are simulated in rounds of kFitRound, in order of their
//     time bound. Once K configurations fit, a candidate whose time bound
//     exceeds the K-th fastest step time cannot be in the top K: it and all
//     later ones are skipped. Rounds have a fixed size, so the candidates
//     simulated do not depend on the number of workers.
#ifndef STEPSIM_SIM_FIT_H_
#define STEPSIM_SIM_FIT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/params.h"
#include "graph/static_memory.h"
#include "graph/status.h"
#include "report.pb.h"
#include "scenario.pb.h"
#include "sim/fit_space.h"
#include "sim/schedule.h"
#include "sim/step_profile.h"
#include "sim/sweep.h"

namespace stepsim::sim {

constexpr int64_t kFitRound = 64;

// What the cheap bounds say of one candidate.
struct FitBound {
  enum Kind { kInvalid, kStaticMemory, kMemoryBound, kCandidate };
  Kind kind = kInvalid;
  Status error;        // kInvalid: why (kFailed for a stepsim defect)
  std::string reason;  // kStaticMemory, kMemoryBound: which rank, how much
  double time_us = 0;  // kCandidate: the step takes at least this long
};

// Bounds candidates, remembering static memory and stage profiles between
// calls (candidates often share them).
class FitBounder {
 public:
  explicit FitBounder(int64_t capacity_bytes) : capacity_(capacity_bytes) {}
  FitBound Bound(const Scenario& scenario);

 private:
  struct StageSteps {
    Status status;
    std::vector<StepProfile> steps;  // forward, backward, weight, backward_weight
  };
  int64_t capacity_;
  std::map<std::string, StatusOr<graph::ModelParams>> params_;
  std::map<std::string, StatusOr<std::vector<graph::RankStatic>>> statics_;
  std::map<std::string, StatusOr<Schedule>> schedules_;
  std::map<std::string, StageSteps> stages_;
};

struct FitOptions {
  int jobs = 1;
  Shard shard;
  std::vector<std::string> context;  // first lines of SweepReport.space
  // Called in the caller while candidates are bounded ("bounds") and
  // simulated ("simulating").
  std::function<void(const std::string& phase, int64_t done, int64_t total)> progress;
};

// Runs the search over the shard's candidates. The report holds every
// candidate of the shard, sorted, and `reasons` counts them: "fits", "does
// not fit (simulated)", "static memory exceeds the device", "memory bound
// exceeds the device", "not in the top K (time bound)", "failed", and
// "invalid: FIELD" per field. kInvalidInput for bad space values, a base
// scenario that does not resolve, an empty space or a shard past its size.
StatusOr<SweepReport> RunFit(const Scenario& scenario, const FitSpace& space,
                             const Reporter& reporter, const FitOptions& options);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_FIT_H_
