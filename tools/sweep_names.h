// The names the sweep commands take on the command line, parsed in one
// place: schedule kinds ("1f1b", "zb-h1", "DualPipeV", ...) and the
// recomputation settings of `fit --recompute`.
#ifndef STEPSIM_TOOLS_SWEEP_NAMES_H_
#define STEPSIM_TOOLS_SWEEP_NAMES_H_

#include <string>
#include <vector>

#include "graph/status.h"
#include "scenario.pb.h"
#include "sim/fit_space.h"

namespace stepsim::tools {

// Case, '-' and '_' do not matter: "1f1b", "one_f_one_b", "zb-h1",
// "interleaved", "DualPipe-V". `flag` names the option in the error, which
// lists the known names.
StatusOr<ScheduleKind> ScheduleByName(const std::string& name, const std::string& flag);

// All seven kinds, in the order compare and fit list them.
const std::vector<ScheduleKind>& AllSchedules();

// "none", "full", or selective modules joined by '+'
// ("layernorm+mla_up_proj"), each one of Megatron's module names.
StatusOr<sim::RecomputeChoice> RecomputeByName(const std::string& name);

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_SWEEP_NAMES_H_
