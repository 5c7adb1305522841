// `stepsim sweep`, `fit` and `merge` on the terminal and as CSV: one row per
// configuration (SweepConfig), the varied values first.
#ifndef STEPSIM_TRACES_SWEEP_TABLE_H_
#define STEPSIM_TRACES_SWEEP_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "report.pb.h"

namespace stepsim::traces {

// The table's columns: the paths the report's `space` lists ("path=values"
// lines) that some configuration overrides, in that order.
std::vector<std::string> VariedPaths(const SweepReport& report);

// The table of simulated configurations (at most `top` rows, all when
// negative): varied values, fits, max peak GiB and its rank, step time,
// tokens/s per GPU, bubble; then the skipped, failed and invalid ones, each
// with the first line of its reason (at most `top` of them too).
std::string FormatSweepTable(const SweepReport& report, int64_t top = -1);

// The rows of the simulated configurations (the report's first ones), at
// most `top`, with the varied values and the figures.
std::string SimulatedTable(const SweepReport& report, int64_t top);

// `stepsim fit`: the K fastest configurations that fit (all simulated
// ones when none fits, at most `top`), then the count of candidates per
// reason, then the --set overrides that reproduce the fastest.
std::string FormatFitTable(const SweepReport& report, int64_t top);

// Every configuration as CSV, in the report's order: index, one column per
// varied path, valid, simulated, fits, max_peak_bytes, peak_rank,
// step_time_us, tokens_per_s_per_gpu, bubble_fraction, capacity_bytes,
// gpus, schedule, microbatches, skipped, error (RFC 4180 quoting).
std::string SweepCsv(const SweepReport& report);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_SWEEP_TABLE_H_
