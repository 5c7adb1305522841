// The report of `stepsim run`: a RunReport proto built from a simulation,
// and its terminal summary.
#ifndef STEPSIM_TRACES_RUN_REPORT_H_
#define STEPSIM_TRACES_RUN_REPORT_H_

#include <string>

#include "graph/config.h"
#include "report.pb.h"
#include "sim/engine.h"

namespace stepsim::traces {

RunReport BuildRunReport(const graph::Config& config, const sim::SimResult& result);

// Per rank: peak GiB, when, during what, the breakdown, fits or not, and
// the bubble; then step time.
std::string FormatRunSummary(const RunReport& report);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_RUN_REPORT_H_
