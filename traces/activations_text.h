// The terminal summary of `stepsim activations`.
#ifndef STEPSIM_TRACES_ACTIVATIONS_TEXT_H_
#define STEPSIM_TRACES_ACTIVATIONS_TEXT_H_

#include <string>

#include "report.pb.h"

namespace stepsim::traces {

// A per-stage table (kept bytes per micro-batch, forward and backward
// peaks) and the kept bytes by module of each distinct stage.
std::string FormatActivations(const ActivationsReport& report);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_ACTIVATIONS_TEXT_H_
