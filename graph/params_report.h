// The `stepsim params` report: parameter counts and static memory as a proto.
#ifndef STEPSIM_GRAPH_PARAMS_REPORT_H_
#define STEPSIM_GRAPH_PARAMS_REPORT_H_

#include "graph/config.h"
#include "graph/status.h"
#include "report.pb.h"

namespace stepsim::graph {

// kInvalidInput if a count would overflow.
StatusOr<ParamsReport> BuildParamsReport(const Config& config);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_PARAMS_REPORT_H_
