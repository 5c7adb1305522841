// Built-in model presets (scenarios/models/*.textproto, compiled in).
#ifndef STEPSIM_GRAPH_PRESETS_H_
#define STEPSIM_GRAPH_PRESETS_H_

#include <string>
#include <string_view>
#include <vector>

#include "graph/status.h"
#include "preset.pb.h"

namespace stepsim::graph {

// The preset called `name`, or kInvalidInput listing the known names.
StatusOr<ModelPreset> FindModelPreset(std::string_view name);

// Every preset's name, sorted.
std::vector<std::string> ModelPresetNames();

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_PRESETS_H_
