// The CSV timeline of `stepsim run --timeline FILE`:
//   rank,seq,time_us,step,op,weights,gradients,optimizer,activations,
//   recompute,output_grads,comm,workspace,framework,total[,reserved]
// (the memory columns are MemorySeriesFor(), in bytes), rank by rank: a row
// for the static state at time 0 (op "static state"), one per change of the
// rank's live bytes (after it: the op that allocated or freed, or the single
// buffer, e.g. "recv activation 3"; step "BW0", empty outside steps), and an
// end row at the step's end (op "end"). `seq` numbers a rank's rows from 0,
// so (rank, seq) is unique and the file pivots in pandas:
//   df.pivot(index="seq", columns="rank", values="total").
// Times are whole nanoseconds printed as microseconds with three decimals.
// With a resolution, each rank keeps one row per window, the one with the
// highest total, so the peak survives coarsening (and the end row).
// `reserved` is there only when `allocators` holds the caching allocator's
// replay of every rank (allocator.kind CACHING; sim::ReplayAllocators): the
// bytes it has reserved from the device after the row's change (at the
// static row, after the static state), so reserved >= total on every row.
// Without an allocator (allocator.kind NONE) the column is absent.
#ifndef STEPSIM_TRACES_TIMELINE_CSV_H_
#define STEPSIM_TRACES_TIMELINE_CSV_H_

#include <ostream>
#include <span>
#include <string>

#include "sim/engine.h"
#include "sim/memory_stream.h"

namespace stepsim::traces {

void WriteTimelineCsv(const sim::SimResult& result, double resolution_us, std::ostream& out,
                      std::span<const sim::AllocatorRun> allocators = {});
std::string TimelineCsv(const sim::SimResult& result, double resolution_us = 0,
                        std::span<const sim::AllocatorRun> allocators = {});

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_TIMELINE_CSV_H_
