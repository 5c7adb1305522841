// Command-line overrides of scenario fields: `--set parallel.ep=16`.
#ifndef STEPSIM_GRAPH_OVERRIDES_H_
#define STEPSIM_GRAPH_OVERRIDES_H_

#include <string>
#include <string_view>
#include <vector>

#include "graph/scenario_text.h"
#include "graph/status.h"
#include "scenario.pb.h"

namespace stepsim::graph {

// Applies one "path=value" assignment to `scenario`. The path names fields
// from Scenario down, separated by dots (`zero.stage`, `model.hidden_size`).
// Values: integers, decimals, `true`/`false`, enum names in any letter case
// (graph/names.h: the same vocabulary as scenario files), UTF-8 strings as
// written. A repeated field takes a comma-separated list that replaces its
// contents (`recompute.modules=core_attn,mla_up_proj`; empty clears it).
// Returns kInvalidInput naming the path for an unknown field, a path that
// stops at a message, or a value that does not fit the field; echoed values
// are cut to a readable length. A failed assignment changes nothing.
Status ApplyOverride(std::string_view assignment, Scenario* scenario);
// The same, except that a failed assignment may leave part of it made: for
// callers that throw the scenario away then (a sweep's or fit's points).
Status ApplyOverrideOrDiscard(std::string_view assignment, Scenario* scenario);

// Applies `assignments` in order and records in `places` (when given) that
// each path was set by "--set path=value".
//
// A policy change drops what only the old policy used: when an assignment
// sets recompute.policy, the scenario's recompute.modules (SELECTIVE only),
// recompute.method and recompute.num_layers (FULL only) are cleared if the
// new policy does not use them and no assignment sets them. Likewise
// allocator.kind=NONE clears the caching allocator's settings
// (max_split_size_mb, max_non_split_rounding_mb, roundup_power2_divisions,
// expandable_segments) that no assignment sets. Each field so cleared is
// described in `notes` (when given), for the command to print.
Status ApplyOverrides(const std::vector<std::string>& assignments, Scenario* scenario,
                      FieldPlaces* places = nullptr, std::vector<std::string>* notes = nullptr);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_OVERRIDES_H_
