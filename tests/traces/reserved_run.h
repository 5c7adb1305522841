// A one-rank run of single buffers whose caching-allocator replay is worked
// out by hand, for the writers' reserved series (timeline_csv_test,
// chrome_trace_test). PyTorch's rules (c10/cuda/CUDACachingAllocator.cpp):
// sizes round up to 512 B; requests up to 1 MiB come from 2 MiB segments;
// larger ones below 10 MiB from a 20 MiB segment, from 10 MiB on a segment
// of the request rounded up to 2 MiB; a block is split when more than
// 1 MiB would remain; blocks freed on one stream serve only that stream.
// "DP ..." buffers are on the DP stream, the others on the pipeline stream
// (sim/memory_stream.h). MiB = 2^20 bytes.
//
//   change  time  event                              reserved after it
//   static  0     weights 1000 B: a small segment     2 MiB
//   0       1 us  + recv activation 0, 1 MiB + 1 B    22 MiB: it rounds to 1 MiB + 512 B,
//                   a 20 MiB segment; the rest (19 MiB - 512 B) is split off
//   1       2 us  + recv activation 1, 4 MiB          22 MiB: split from that rest
//   2       3 us  + DP bucket 0, 10 MiB               32 MiB: the pipeline stream's free
//                   15 MiB - 512 B is not the DP stream's; a 10 MiB segment
//   3       5 us  - recv activation 0                 32 MiB: cached (a hole of 1 MiB + 512 B)
//   4       5 us  + recv activation 2, 16 MiB         48 MiB: neither the hole nor the
//                   15 MiB - 512 B at the end holds 16 MiB; a 16 MiB segment
//   5..7    7 us  - recv activation 2, - DP bucket 0, - recv activation 1: 48 MiB, cached
//   the step ends at 8 us.
#ifndef STEPSIM_TESTS_TRACES_RESERVED_RUN_H_
#define STEPSIM_TESTS_TRACES_RESERVED_RUN_H_

#include <string>
#include <utility>
#include <vector>

#include "sim/engine.h"
#include "sim/memory_stream.h"

namespace stepsim::testing {

constexpr int64_t kMiB = int64_t{1} << 20;

inline sim::SimResult ReservedRun() {
  sim::Bytes initial{};
  initial[static_cast<int>(graph::Category::kWeights)] = 1000;
  sim::SimResult s;
  sim::RankRun first{.rank = 0, .ledger = sim::Ledger(initial)};
  s.ranks.push_back(std::move(first));
  sim::RankRun& run = s.ranks.back();
  run.static_bytes = initial;
  auto add = [&](double us, int64_t bytes, const std::string& what) {
    run.ledger.AddDelta({us * 1e-6, graph::Category::kComm, bytes, what, -1, 2});
  };
  add(1, kMiB + 1, "recv activation 0");
  add(2, 4 * kMiB, "recv activation 1");
  add(3, 10 * kMiB, "DP bucket 0");
  add(5, -(kMiB + 1), "recv activation 0");
  add(5, 16 * kMiB, "recv activation 2");
  add(7, -16 * kMiB, "recv activation 2");
  add(7, -10 * kMiB, "DP bucket 0");
  add(7, -4 * kMiB, "recv activation 1");
  run.memory = run.ledger.Replay();
  run.compute_end = run.end = 8e-6;
  s.step_time = s.compute_end = 8e-6;
  return s;
}

// Reserved after the static state and after each of the run's 8 changes.
inline std::vector<int64_t> ReservedByHand() {
  return {2 * kMiB,  22 * kMiB, 22 * kMiB, 32 * kMiB, 32 * kMiB,
          48 * kMiB, 48 * kMiB, 48 * kMiB, 48 * kMiB};
}

inline std::vector<sim::AllocatorRun> ReplayedReserved(const sim::SimResult& s) {
  StatusOr<sim::AllocatorRun> a = sim::ReplayAllocator(sim::AllocatorOptions{}, s.ranks[0]);
  std::vector<sim::AllocatorRun> out;
  if (a.ok()) out.push_back(std::move(*a));
  return out;
}

}  // namespace stepsim::testing

#endif  // STEPSIM_TESTS_TRACES_RESERVED_RUN_H_
