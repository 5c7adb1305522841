// The workload of the benchmark's bare SimGrid floor (tools/bench_floor.cc):
// a plan (sim/plan.h) flattened into plain arrays, which stepsim_bench
// writes to a temporary file and stepsim_floor reads back. It never leaves
// one benchmark run, so it is raw native-endian bytes rather than a file
// format: the floor must link nothing but SimGrid, and reading it must cost
// next to nothing.
//
// Layout: FloorHeader, then `links` PlatformLink, then `channels`
// FloorChannel each followed by its name's bytes, then per rank a
// FloorRank followed by its `steps` FloorStep.
#ifndef STEPSIM_TOOLS_BENCH_FLOOR_H_
#define STEPSIM_TOOLS_BENCH_FLOOR_H_

#include <cstdint>

namespace stepsim::tools {

struct FloorHeader {
  int64_t ranks = 0;
  int64_t channels = 0;  // channel indices run 0..channels-1
  int64_t wire_channels = 0;  // how many FloorChannel records follow
  int64_t links = 0;
  int64_t fixed_p2p = 0;  // payloads of no bytes
  double host_speed = 0;
};

struct FloorChannel {
  int64_t channel = 0;
  int64_t receiver = 0;  // rank
  int64_t name_bytes = 0;
};

struct FloorRank {
  int64_t steps = 0;
  // The gradient reduction, the optimizer step and the weights' all-gather
  // after the last step.
  double tail_seconds = 0;
};

struct FloorStep {
  int64_t input = -1;   // channel to wait on over the wire, or -1
  int64_t output = -1;  // channel to send on over the wire, or -1
  double duration = 0;
  double bytes = 0;
};

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_BENCH_FLOOR_H_
