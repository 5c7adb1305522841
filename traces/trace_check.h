// Checks a Chrome trace against the rules Perfetto's JSON importer relies
// on: a traceEvents array; every event with a name, a phase and a pid;
// every X slice with a numeric, non-negative dur; slices on one thread
// properly nested; counter values numeric; flow starts and ends paired by
// id, each inside a slice of its thread, the end not before the start;
// instant events with a scope.
#ifndef STEPSIM_TRACES_TRACE_CHECK_H_
#define STEPSIM_TRACES_TRACE_CHECK_H_

#include <string>
#include <vector>

namespace stepsim::traces {

struct TraceCheck {
  std::vector<std::string> problems;  // empty: the trace is fine
  int64_t events = 0;
  int64_t slices = 0;
  int64_t counters = 0;
  int64_t flows = 0;  // pairs
};

TraceCheck CheckChromeTrace(const std::string& json);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_TRACE_CHECK_H_
