// `stepsim check-trace`: checks a Chrome trace (Trace Event Format JSON)
// against the rules of the two importers that show it, streaming it in
// constant memory (nlohmann-json's SAX parser over 1 MiB reads).
//
// Perfetto's JSON importer (src/trace_processor/importers/json and
// importers/common/slice_tracker.cc, flow_tracker.cc):
//   - pid and tid are integers from 1 (a tid of 0 is read as "no thread"
//     and becomes the pid, merging two threads);
//   - timestamps are read as whole nanoseconds (llround(ts * 1000)); on each
//     thread an X slice that starts inside another and ends after it is an
//     overlap, spilled to a separate track;
//   - a flow start binds to the innermost slice open on its thread when it
//     is read, a flow end too with "bp":"e" (without it, to the next slice).
// Chrome DevTools' trace engine (npm @paulirish/trace_engine, the
// Performance panel's: TreeHelpers.treify, FlowsHandler, RendererHandler):
//   - a slice ends at ts + dur in floating point; one that starts inside its
//     parent and ends after it is dropped;
//   - a flow event binds to the first event with its ts, pid, tid and cat;
//   - instant events must be "ph":"I" ("i" is ignored).
// And what a streaming check needs of stepsim's traces: each thread's X
// slices in start order (longest first at one start), each flow event after
// the slice it binds to, which must be the last slice started on its thread
// and the only one there with its ts and cat; a flow's end after its start.
// Also: every event an object with a one-letter "ph" and a "name", numeric
// ts (but metadata), non-negative dur, counters with numeric args, instants
// with a scope, only the phases X, C, I, s, f and M, nesting at most 32
// deep.
#ifndef STEPSIM_TRACES_TRACE_CHECK_H_
#define STEPSIM_TRACES_TRACE_CHECK_H_

#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <vector>

namespace stepsim::traces {

struct TraceCheck {
  // "line 12: event 10 \"F3\": ..." for the first 50 problems; empty: fine.
  std::vector<std::string> problems;
  int64_t problem_count = 0;  // all of them
  // Problems by rule: "structure", "syntax", "ids", "order", "Perfetto
  // overlaps", "DevTools drops", "flow binding", "flow pairing", "counters",
  // "instants".
  std::map<std::string, int64_t> by_rule;
  int64_t events = 0;
  int64_t slices = 0;
  int64_t counters = 0;
  int64_t instants = 0;
  int64_t flows = 0;  // start and end paired
};

// Reads `in` to its end (or to the first syntax error, which is a problem
// with its line and column).
TraceCheck CheckChromeTrace(std::istream& in);
TraceCheck CheckChromeTrace(const std::string& json);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_TRACE_CHECK_H_
