// Built-in schedule generators. Each returns the per-rank step lists; the
// memory and bubble they lead to emerge from simulating them.
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

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_SCHEDULES_BUILTIN_H_
