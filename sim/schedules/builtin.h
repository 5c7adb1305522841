// Built-in schedule generators. Each returns the per-rank step lists (and,
// where it differs from Megatron's round robin, the placement); the memory
// and bubble they lead to emerge from simulating them, never from formulas.
#ifndef STEPSIM_SIM_SCHEDULES_BUILTIN_H_
#define STEPSIM_SIM_SCHEDULES_BUILTIN_H_

#include <cstdint>

#include "sim/schedule.h"

namespace stepsim::sim {

// GPipe: every forward of every chunk, then every backward (with W).
Schedule GPipe(int64_t pp, int64_t chunks, int64_t microbatches);

// Megatron's non-interleaved 1F1B: rank r runs min(pp - r - 1, m) warm-up
// forwards, then alternates one forward and one backward, then cools down.
Schedule OneFOneB(int64_t pp, int64_t microbatches);

// Megatron's interleaved 1F1B with `chunks` virtual chunks per rank and
// micro-batch groups of pp: rank r warms up with 2(pp - r - 1) +
// (chunks - 1) pp forwards. Needs microbatches a multiple of pp.
Schedule Interleaved(int64_t pp, int64_t chunks, int64_t microbatches);

// Zero-bubble ZB-H1 and ZB-H2 (arXiv 2401.10241): backward split into B and
// W; on stage i, B of micro-batch x runs lag_b slots after its F and W
// lag_w slots after it: ZB-H1 lag_b = pp-1-i, lag_w = pp-1; ZB-H2 doubles
// both (more warm-up forwards, no bubble for m >= 2pp - 1).
Schedule ZeroBubble(int64_t pp, int64_t microbatches, bool h2);

// DeepSeek's DualPipe (two directions; pp even, m even and >= 2pp; micro-
// batches 0..m/2-1 take route 0, the rest route 1) and DualPipeV (one V-
// shaped route over 2pp stages; m >= 2pp), following the eight phases of
// deepseek-ai/DualPipe. An overlapped forward-backward pair runs as its F
// then its BW.
Schedule DualPipe(int64_t pp, int64_t microbatches);
Schedule DualPipeV(int64_t pp, int64_t microbatches);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_SCHEDULES_BUILTIN_H_
