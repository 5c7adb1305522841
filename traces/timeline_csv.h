// The CSV timeline of `stepsim run --timeline FILE`:
//   time_us,rank,weights,gradients,optimizer,activations,recompute,comm,workspace,framework,total
// one row per change of a rank's live bytes (after the change), rank by
// rank, starting with the static state at time 0. With a resolution, each
// rank keeps one row per window: the one with the highest total, so the
// peak survives coarsening.
#ifndef STEPSIM_TRACES_TIMELINE_CSV_H_
#define STEPSIM_TRACES_TIMELINE_CSV_H_

#include <ostream>
#include <string>

#include "sim/engine.h"

namespace stepsim::traces {

void WriteTimelineCsv(const sim::SimResult& result, double resolution_us, std::ostream& out);
std::string TimelineCsv(const sim::SimResult& result, double resolution_us = 0);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_TIMELINE_CSV_H_
