// Reading validation cases (proto/validation.proto): a measured run, its
// scenario and the measurements. Errors name file:line:col; the case keeps
// the places of its fields so later checks (a rank outside the pipeline,
// a metric the scenario cannot produce) can name them too.
#ifndef STEPSIM_GRAPH_VALIDATION_CASE_H_
#define STEPSIM_GRAPH_VALIDATION_CASE_H_

#include <string>
#include <string_view>
#include <vector>

#include "graph/status.h"
#include "validation.pb.h"

namespace stepsim::graph {

struct TextPlace {
  int line = 1, col = 1;  // 1-based
};

struct ParsedCase {
  ValidationCase value;
  std::string text, filename;
  TextPlace name;                     // where "name" is (or 1:1)
  std::vector<TextPlace> measured;    // each measured { ... }
  std::vector<TextPlace> pp_rank;     // each measured's pp_rank (or the measured block)
  std::vector<TextPlace> metric;      // each measured's metric

  // "filename:line:col: message", the line and a caret.
  Status ErrorAt(const TextPlace& place, const std::string& message) const;
};

// Parses and checks a case: a name, a source, a tolerance in (0, 1], a
// scenario or a scenario_file (not both), at least one measurement, each
// with a metric, a pp_rank >= 0 and bytes > 0. kInvalidInput otherwise.
StatusOr<ParsedCase> ParseValidationCase(std::string_view text, std::string_view filename);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_VALIDATION_CASE_H_
