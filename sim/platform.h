// The SimGrid platform one step runs on, and the engine's settings: one host
// per pipeline rank and a split-duplex link per pair of ranks that hand
// micro-batches to each other, under the CM02 network model without
// cross-traffic or TCP window limits, so that a transfer takes exactly
// latency + size / bandwidth. It depends on SimGrid alone, so that the
// benchmark's bare SimGrid floor (tools/bench_floor.cc) builds the very same
// platform as the engine.
#ifndef STEPSIM_SIM_PLATFORM_H_
#define STEPSIM_SIM_PLATFORM_H_

#include <cstdint>
#include <memory>
#include <vector>

namespace simgrid::s4u {
class Engine;
class Host;
}  // namespace simgrid::s4u

namespace stepsim::sim {

struct PlatformLink {
  int64_t a = 0, b = 0;  // ranks, a < b
  double bandwidth = 0;  // bytes per second
  double latency = 0;    // seconds
};

// The process's SimGrid engine (SimGrid allows one per process), quiet
// unless `verbose`. Under AddressSanitizer actors run on threads.
std::unique_ptr<simgrid::s4u::Engine> StartEngine(bool verbose);

// Hosts "rank0".. of `host_speed` FLOP/s, and the links; returns the hosts
// by rank.
std::vector<simgrid::s4u::Host*> BuildPlatform(int64_t ranks, double host_speed,
                                               const std::vector<PlatformLink>& links);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_PLATFORM_H_
