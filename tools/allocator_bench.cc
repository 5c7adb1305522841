// stepsim_allocator_bench: what replaying the caching allocator costs, in
// process: simulate a scenario once, then replay every rank's ledger through
// the allocator as often as asked, and print the CPU time per replay (the
// best run) beside the simulation's own, and the memory events replayed per
// second.
//
//   cmake --build build --target stepsim_allocator_bench
//   build/stepsim_allocator_bench [--runs N] [--threads T] SCENARIO [--set path=value ...]
//
// --threads 0 replays on a thread per core (as `stepsim run` does); the
// default is one thread, whose CPU time is the replay's cost.
//
// CPU time is what a benchmark measures; it never reaches stepsim's outputs.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sim/engine.h"
#include "sim/memory_stream.h"
#include "sim/schedule.h"
#include "tools/cli_io.h"
#include "tools/cpu_time.h"
#include "traces/format.h"

namespace {

using stepsim::tools::CpuSeconds;

int Usage() {
  std::fprintf(stderr,
               "usage: stepsim_allocator_bench [--runs N] [--threads T] SCENARIO "
               "[--set path=value ...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5, threads = 1;
  stepsim::tools::ScenarioArgs args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::max(0, std::atoi(argv[++i]));
    } else if (a == "--set" && i + 1 < argc) {
      args.sets.emplace_back(argv[++i]);
    } else if (args.path.empty() && !a.starts_with("-")) {
      args.path = a;
    } else {
      return Usage();
    }
  }
  if (args.path.empty()) return Usage();
  auto config = stepsim::tools::LoadConfig(args);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return 1;
  }
  if (config->allocator.kind == stepsim::Allocator::NONE) {
    std::fprintf(stderr, "the scenario's allocator.kind is NONE: nothing to replay\n");
    return 1;
  }
  auto schedule = stepsim::sim::BuildSchedule(*config);
  if (!schedule.ok()) {
    std::fprintf(stderr, "%s\n", schedule.status().message().c_str());
    return 1;
  }
  stepsim::sim::SimOptions options;
  options.max_events = INT64_MAX;
  const double started = CpuSeconds();
  auto result = stepsim::sim::Simulate(*config, *schedule, options);
  const double simulated = CpuSeconds() - started;
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.status().message().c_str());
    return 1;
  }
  double best = 1e300;
  int64_t reserved = 0;
  for (int r = 0; r < runs; ++r) {
    const double start = CpuSeconds();
    auto allocators = stepsim::sim::ReplayAllocators(*config, *result, -1, threads);
    best = std::min(best, CpuSeconds() - start);
    if (!allocators.ok()) {
      std::fprintf(stderr, "%s\n", allocators.status().message().c_str());
      return 1;
    }
    reserved = 0;
    for (const auto& a : *allocators) reserved = std::max(reserved, a.reserved_peak);
  }
  int64_t events = 0;
  for (const auto& rank : result->ranks) events += rank.memory.events;
  std::printf("simulation: %.1f ms CPU\n", 1e3 * simulated);
  const std::string on = threads == 0   ? "a thread per core"
                         : threads == 1 ? "1 thread"
                                        : std::to_string(threads) + " threads";
  std::printf("allocator replay (best of %d, %s): %.1f ms CPU, %.2fx the simulation\n", runs,
              on.c_str(), 1e3 * best, best / simulated);
  std::printf("memory events: %lld, %.1f M/s replayed\n", static_cast<long long>(events),
              1e-6 * static_cast<double>(events) / best);
  std::printf("max reserved peak: %s GiB (%s B)\n", stepsim::traces::Gib(reserved).c_str(),
              stepsim::traces::Thousands(reserved).c_str());
  return 0;
}
