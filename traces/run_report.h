// The report of `stepsim run`: a RunReport proto built from a simulation,
// and its terminal summary.
#ifndef STEPSIM_TRACES_RUN_REPORT_H_
#define STEPSIM_TRACES_RUN_REPORT_H_

#include <string>

#include "graph/config.h"
#include "report.pb.h"
#include "sim/engine.h"
#include "sim/memory_stream.h"

namespace stepsim::traces {

// `allocators` (one per rank, from sim::ReplayAllocators) fill the
// reserved-memory fields; without them (or with allocator.kind NONE)
// reserved is the peak of live bytes. Either way `fits` compares reserved
// plus hardware.runtime_overhead_bytes with the device's memory.
RunReport BuildRunReport(const graph::Config& config, const sim::SimResult& result,
                         const std::vector<sim::AllocatorRun>* allocators = nullptr);

// The report of a finished simulation as `stepsim run` gives it: each
// rank's ledger replayed through the caching allocator the config asks for
// (sim::ReplayAllocators), then BuildRunReport. kFailed if the allocator's
// stream is inconsistent (a stepsim bug).
StatusOr<RunReport> ReportRun(const graph::Config& config, const sim::SimResult& result);

// Per rank: peak GiB, reserved GiB and fragmentation, when, during what,
// the breakdown, fits or not, and the bubble; then step time and any OOM.
std::string FormatRunSummary(const RunReport& report);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_RUN_REPORT_H_
