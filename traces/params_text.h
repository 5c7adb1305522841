// The terminal summary of `stepsim params`.
#ifndef STEPSIM_TRACES_PARAMS_TEXT_H_
#define STEPSIM_TRACES_PARAMS_TEXT_H_

#include <string>

#include "graph/config.h"
#include "report.pb.h"

namespace stepsim::traces {

// A header line, a per-stage table, the module breakdown of each distinct
// stage device, and per-rank static memory when ranks hold several chunks.
std::string FormatParams(const graph::Config& config, const ParamsReport& report);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_PARAMS_TEXT_H_
