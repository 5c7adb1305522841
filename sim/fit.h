// `stepsim fit`: which candidates of the search space (sim/fit_space.h) fit
// the device, and which of those are fastest. Exact for the K fastest:
//
//  1. In worker processes, every candidate is resolved (invalid ones are
//     counted by the field their first problem names), its static memory
//     checked against the device, and given a quick time bound from the
//     step profiles of single slots (FitBounder::Quick), which are shared
//     across pipeline sizes.
//  2. In order of the quick bound, candidates are bounded in full (stage
//     profiles: a memory bound, and a time bound at least the quick one) in
//     batches of kFitBoundBatch, and simulated in rounds of kFitRound in
//     order of their full bound, once no candidate still to be bounded in
//     full can come before them. Once K configurations fit, a candidate
//     whose bound (full, or quick when it has none) exceeds the K-th fastest
//     step time cannot be among the K fastest: it and all later ones are
//     skipped, and a simulation slower than that skips the caching
//     allocator's replay. Batches and rounds have fixed sizes, so the candidates
//     bounded and simulated do not depend on the number of workers.
#ifndef STEPSIM_SIM_FIT_H_
#define STEPSIM_SIM_FIT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "report.pb.h"
#include "scenario.pb.h"
#include "sim/fit_space.h"
#include "sim/sweep.h"
#include "sim/sweep_space.h"

namespace stepsim::sim {

constexpr int64_t kFitRound = 16;        // simulations per round
constexpr int64_t kFitBoundBatch = 512;  // full bounds per batch

struct FitOptions {
  int jobs = 1;
  Shard shard;
  std::vector<std::string> context;  // first lines of SweepReport.space
  // Called in the caller while candidates are bounded quickly ("bounds"),
  // bounded in full ("profiles") and simulated ("simulating"), once as
  // each batch of a phase starts and as its items come back; `total` is
  // exact for "bounds", an upper bound for the others.
  std::function<void(const std::string& phase, int64_t done, int64_t total)> progress;
  // A report without the caching allocator's replay (its step time is the
  // full report's): a simulation whose step is slower than the K fastest
  // found before its round is not replayed further. Empty: every
  // simulation gets the full report.
  Reporter timing_reporter;
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
