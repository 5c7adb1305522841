// Command-line overrides of scenario fields: `--set parallel.ep=16`.
#ifndef STEPSIM_GRAPH_OVERRIDES_H_
#define STEPSIM_GRAPH_OVERRIDES_H_

#include <string_view>

#include "graph/status.h"
#include "scenario.pb.h"

namespace stepsim::graph {

// Applies one "path=value" assignment to `scenario`. The path names fields
// from Scenario down, separated by dots (`zero.stage`, `model.hidden_size`).
// Values: integers, decimals, true/false, enum names (any case) or numbers,
// strings as written. A repeated field takes a comma-separated list that
// replaces its contents (`recompute.modules=core_attn,mla_up_proj`).
// Returns kInvalidInput naming the path for an unknown field, a path that
// stops at a message, or a value that does not fit the field.
Status ApplyOverride(std::string_view assignment, Scenario* scenario);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_OVERRIDES_H_
