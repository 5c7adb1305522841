// The Chrome trace of `stepsim run --chrome-trace FILE` (Trace Event Format
// JSON, timestamps in microseconds; opens in Perfetto and chrome://tracing):
//   - one process per pipeline rank, with a "compute" thread and as many
//     "pipeline comm" threads as overlapping transfers need;
//   - an X slice per step (F3, BW0, ...) and, nested in it, one per op, with
//     args micro-batch, layer, bytes allocated and freed;
//   - a "memory (GiB)" counter per rank with one series per category, at
//     every change;
//   - X slices for sends and receives joined by flow arrows;
//   - an instant event at each rank's peak.
#ifndef STEPSIM_TRACES_CHROME_TRACE_H_
#define STEPSIM_TRACES_CHROME_TRACE_H_

#include <ostream>
#include <string>

#include "report.pb.h"
#include "sim/engine.h"

namespace stepsim::traces {

// Writes the trace to `out` as it goes (traces of long runs are large).
void WriteChromeTrace(const sim::SimResult& result, const RunReport& report, std::ostream& out);

// The same as a string, for tests and small runs.
std::string ChromeTrace(const sim::SimResult& result, const RunReport& report);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_CHROME_TRACE_H_
