// One simulation in a child process: SimGrid allows one engine per
// process, so commands that simulate several configurations (compare,
// validate) fork a child for each and read its report back over a pipe.
#ifndef STEPSIM_TOOLS_CHILD_SIMULATION_H_
#define STEPSIM_TOOLS_CHILD_SIMULATION_H_

#include "graph/config.h"
#include "graph/status.h"
#include "report.pb.h"

namespace stepsim::tools {

// Builds the config's schedule, simulates it in a child and returns the
// run report; the child's error as the status (its code kept), or kFailed
// when the child dies.
StatusOr<RunReport> SimulateInChild(const graph::Config& config);

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_CHILD_SIMULATION_H_
