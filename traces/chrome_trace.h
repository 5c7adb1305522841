// The Chrome trace of `stepsim run --chrome-trace FILE` (Trace Event Format
// JSON), written so that the Perfetto UI and Chrome DevTools' Performance
// panel both show it as it is (tools/check-trace enforces their importers'
// rules; tests/viewers loads it in the DevTools trace engine):
//   - a process per pipeline rank (pid = rank + 1), with threads (tid >= 1,
//     as Perfetto reads a tid of 0 as "no thread"): "compute" (tid 1),
//     "pipeline comm N" (tid 2 + N, as many as overlapping transfers need)
//     and "data-parallel comm" after them;
//   - on compute, an X slice per step (F3, BW0, ...) holding one per op,
//     with args micro-batch, layer, bytes allocated and freed;
//   - per transfer a send slice (on the wire) and a receive slice (from
//     delivery until the step that takes it), joined by a flow from the
//     send's start to the receive's start (where both viewers bind it); a
//     hand-off between two chunks of one rank (DualPipeV's turn) is a flow
//     from the step that produces it to the step that consumes it;
//   - the data-parallel gradient reduction as a slice;
//   - per rank the counters "memory (GiB)" (the total) and "memory by
//     category (GiB)" (one series per category; memory_series.h), at every
//     change; with the caching allocator's replay (`allocators`, one per
//     rank; empty when allocator.kind is NONE) a counter "reserved (GiB)"
//     beside them, the bytes the allocator holds from the device, at every
//     instant they change;
//   - an instant event ("ph":"I") at each rank's peak.
// Timestamps are whole nanoseconds printed as microseconds with three
// decimals; each duration is printed so that a viewer adding it to the
// printed start in floating point lands on the printed end (ViewerDuration).
#ifndef STEPSIM_TRACES_CHROME_TRACE_H_
#define STEPSIM_TRACES_CHROME_TRACE_H_

#include <cstdint>
#include <ostream>
#include <span>
#include <string>

#include "report.pb.h"
#include "sim/engine.h"
#include "sim/memory_stream.h"

namespace stepsim::traces {

// Writes the trace to `out` as it goes (traces of long runs are large).
void WriteChromeTrace(const sim::SimResult& result, const RunReport& report, std::ostream& out,
                      std::span<const sim::AllocatorRun> allocators = {});

// The same as a string, for tests and small runs.
std::string ChromeTrace(const sim::SimResult& result, const RunReport& report,
                        std::span<const sim::AllocatorRun> allocators = {});

// The duration in microseconds to print for a slice from `start_ns` to
// `end_ns` (start printed with three decimals): the double d for which
// start + d, in IEEE double arithmetic on the values a JSON parser reads,
// equals the printed end, or the largest d that stays below it when no
// double does. 112.159 + 15.881 is 128.04000000000002, past a next slice
// starting at 128.040; 112.159 + 15.880999999999993 is 128.04.
double ViewerDuration(int64_t start_ns, int64_t end_ns);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_CHROME_TRACE_H_
