// The names the sweep commands take on the command line, parsed in one
// place: schedule kinds (ONE_F_ONE_B, ZB_H1, ...) and the
// recomputation settings of `fit --recompute`.
#ifndef STEPSIM_TOOLS_SWEEP_NAMES_H_
#define STEPSIM_TOOLS_SWEEP_NAMES_H_

#include <string>
#include <vector>

#include "graph/status.h"
#include "scenario.pb.h"
#include "sim/fit_space.h"

namespace stepsim::tools {

// A schedule kind's name as scenario.proto spells it, in any letter case
// ("one_f_one_b", "ZB_H1": graph/names.h, one vocabulary everywhere).
// `flag` names the option in the error, which lists the known names.
StatusOr<ScheduleKind> ScheduleByName(const std::string& name, const std::string& flag);

// All seven kinds, in the order compare and fit list them.
const std::vector<ScheduleKind>& AllSchedules();

// "none", "full", or selective modules joined by '+'
// ("layernorm+mla_up_proj"), each one of Megatron's module names.
StatusOr<sim::RecomputeChoice> RecomputeByName(const std::string& name);

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_SWEEP_NAMES_H_
