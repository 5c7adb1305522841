// Reading scenario files: protobuf text format with located error messages.
#ifndef STEPSIM_GRAPH_SCENARIO_TEXT_H_
#define STEPSIM_GRAPH_SCENARIO_TEXT_H_

#include <string>
#include <string_view>

#include "graph/status.h"
#include "scenario.pb.h"

namespace stepsim::graph {

// Parses `text` (the contents of the file called `filename`) as a Scenario.
// On a syntax error, unknown field or bad enum value returns kInvalidInput
// with "filename:line:col: message" (1-based), the offending line and a caret
// under the column.
StatusOr<Scenario> ParseScenario(std::string_view text, std::string_view filename);

// The same for any message type (model presets, schedule files).
Status ParseTextMessage(std::string_view text, std::string_view filename,
                        google::protobuf::Message* message);

// Formats "filename:line:col: message" followed by the 1-based `line` of
// `text` and a caret under `col`. Used for every located input error.
std::string LocatedError(std::string_view text, std::string_view filename,
                         int line, int col, std::string_view message);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_SCENARIO_TEXT_H_
