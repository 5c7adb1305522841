// The rows of a sweep or fit (SweepConfig in proto/report.proto): made from
// a run's report, put in order, and shards merged back into one result.
#ifndef STEPSIM_SIM_SWEEP_ROWS_H_
#define STEPSIM_SIM_SWEEP_ROWS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "graph/config.h"
#include "graph/status.h"
#include "report.pb.h"
#include "sim/sweep_space.h"

namespace stepsim::sim {

// A simulated configuration: fits when every rank's report fits; the
// highest peak and its rank (the lowest rank on ties); tokens per second
// per GPU from b*s*m*DP tokens per step over all DP*TP*PP*CP GPUs.
SweepConfig RowFromRun(int64_t index, const Point& point, const graph::Config& config,
                       const RunReport& run);

// A configuration that could not be simulated: `valid` is false when the
// error is the configuration's (kInvalidInput), true for a failed run.
SweepConfig RowWithError(int64_t index, const Point& point, const Status& error);

// A configuration a search did not simulate, and why.
SweepConfig RowSkipped(int64_t index, const Point& point, const std::string& why);

// Orders rows as SweepReport documents: fitting ones by step time, then
// simulated ones that do not fit by step time, then skipped, failed and
// invalid ones; ties by index.
void SortConfigs(SweepReport* report);

// Merges the shard files of one search (each named for error messages) into
// the report the whole search gives: same command, scenario, space and
// total; shards 1..N of one N, each once; every index once. Sums `reasons`.
StatusOr<SweepReport> MergeShards(const std::vector<std::pair<std::string, SweepReport>>& shards);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_SWEEP_ROWS_H_
