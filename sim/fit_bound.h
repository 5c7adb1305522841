// Lower bounds for `stepsim fit`, computed without simulating: what a
// candidate needs at least in memory and in step time. A candidate whose
// memory bound exceeds the device cannot fit; one whose time bound exceeds
// the K-th fastest step time found cannot be among the K fastest.
//
// From the static memory of every rank (graph/static_memory.h) and the step
// profiles of every stage (sim/step_profile.h):
//  - memory: each rank walks its steps in order; the micro-batches whose
//    forward on a stage is done and whose backward is not still hold what
//    that forward kept, and each step adds its own peak on top:
//    static + workspace + max over steps (kept in flight + the step's peak).
//  - time: a rank cannot start before a micro-batch's forward has crossed
//    the stages before its first one; it then runs all its steps; then its
//    gradient reduction (under ZeRO 0-1), and, after its last backward,
//    that micro-batch's backward must still cross the stages before (less
//    the steps the rank runs after it). Under ZeRO-2/3 its steps last at
//    least its backwards' reduce-scatters, one after another. Overlapped
//    forward-backward pairs (DualPipe) last at least the longer of their
//    compute and their all-to-alls, and their waits; a step in one at
//    least half its time alone. Transfers, waits and contention only add
//    to it.
//
// The ops of a step run back to back, so a stage's step lasts the sum of
// its slots' steps and its waits for ZeRO-3's gathered weights and
// ZeRO-2/3's reduce-scatters: Quick takes
// the durations from profiles of single-slot stages without those waits,
// which depend on the slot's kind but not on the pipeline size nor the ZeRO
// stage, and gets Bound's time bound (to the last bits of the sums; below
// it under ZeRO-2/3) from a few builds of one layer each
// (tests/sim/fit_test.cc checks it against Bound).
//
// Step profiles depend on a stage's shape (the kinds of its slots in order:
// embedding, dense or MoE layer, MTP, loss), not on which layers it holds,
// and not on ZeRO stages 0-1 (only ZeRO-2/3 reduce-scatter and ZeRO-3
// gathers inside a step):
// stages of one shape share one profile build (tests/sim/fit_test.cc checks
// both).
#ifndef STEPSIM_SIM_FIT_BOUND_H_
#define STEPSIM_SIM_FIT_BOUND_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "graph/config.h"
#include "graph/params.h"
#include "graph/static_memory.h"
#include "graph/status.h"
#include "scenario.pb.h"
#include "sim/schedule.h"

namespace stepsim::sim {

struct FitBound {
  enum Kind { kInvalid, kStaticMemory, kMemoryBound, kCandidate };
  Kind kind = kInvalid;
  Status error;        // kInvalid: why (kFailed for a stepsim defect)
  std::string reason;  // kStaticMemory, kMemoryBound: which rank, how much
  double time_us = 0;  // kCandidate: the step takes at least this long
  int64_t memory_bytes = 0;  // kCandidate, kMemoryBound: the highest rank's bound
};

// Bounds candidates against a device of `capacity_bytes`, remembering static
// memory, schedules and stage profiles between calls (candidates share
// them). Not thread-safe.
class FitBounder {
 public:
  // Each cache is emptied when it holds more than `max_cached` entries.
  explicit FitBounder(int64_t capacity_bytes, size_t max_cached = 65536)
      : capacity_(capacity_bytes), max_cached_(max_cached) {}
  // Static memory, then the memory and time bounds from the stages' step
  // profiles.
  FitBound Bound(const Scenario& scenario);
  // Static memory, then a time bound from step profiles of single slots (a
  // stage's step lasts the sum of its slots'), built once per slot kind and
  // shared across pipeline sizes: at most Bound's time, far cheaper, and
  // no memory bound (kMemoryBound never).
  FitBound Quick(const Scenario& scenario);

  // A stage's four steps, in StepKind order: duration, peak, net.
  struct StageSteps {
    Status status;
    std::array<double, 4> duration{};
    // Of each duration, the EP all-to-alls, and the waits for ZeRO-2/3's
    // reduce-scatters and ZeRO-3's gathers: what an overlapped pair
    // (plan.cc OverlappedPairSeconds) hides and what it does not.
    std::array<double, 4> comm{};
    std::array<double, 4> waits{};
    std::array<int64_t, 4> peak{};
    int64_t kept = 0;  // what a forward leaves allocated for the backward
  };

 private:
  // `base_key`: ProfileKeyBase of the candidate (fit_bound.cc).
  const StageSteps& Steps(const std::string& base_key, const graph::Config& config,
                          const graph::Stage& stage);
  // `slot` of `stage`, as a stage of its own in the same place: durations
  // only (peak and kept 0), without ZeRO-2/3's waits, shared across ZeRO
  // stages.
  const StageSteps& SlotSteps(const std::string& base_key, const graph::Config& config,
                              const graph::Stage& stage, const graph::Slot& slot);
  // What of a stage's place its durations depend on (Position), and its
  // whole profile (Context).
  static std::string Position(const graph::Config& config, const graph::Stage& stage);
  static std::string Context(const graph::Config& config, const graph::Stage& stage);
  // The steps of `stage` alone, from `cache` or built into it.
  static const StageSteps& Build(std::unordered_map<std::string, StageSteps>& cache,
                                 const std::string& key, const graph::Config& config,
                                 const graph::Stage& stage, bool durations_only);
  // A resolved candidate past its static-memory check (schedule set), or
  // the bound that ends it (schedule null).
  // A rank's steps for the time bound: how many of each (stage, kind), and
  // those after its last backward (-1: none).
  struct RankSummary {
    // (stage, kind, steps alone, steps in overlapped pairs).
    std::vector<std::tuple<int64_t, int, int64_t, int64_t>> counts;
    std::vector<std::pair<int64_t, int>> tail;  // (stage, kind)
    int64_t last_backward_stage = -1;
  };
  struct ScheduleEntry {
    StatusOr<Schedule> schedule;
    std::vector<RankSummary> ranks;
  };
  static std::vector<RankSummary> Summarize(const Schedule& schedule, const graph::Config& c);
  // ZeRO-2/3: the least time rank `rank`'s steps spend in reduce-scatters,
  // from `whole`, one reduce-scatter of all its gradients.
  static double ReduceScatters(const graph::Config& c, double whole, const RankSummary& summary,
                               int64_t rank);
  struct Prepared {
    FitBound bound;
    graph::Config config;
    const Schedule* schedule = nullptr;
    const std::vector<RankSummary>* summary = nullptr;
    const std::vector<graph::RankStatic>* statics = nullptr;
  };
  Prepared Prepare(const Scenario& scenario);
  FitBound Walk(const Prepared& prepared, const std::vector<const StageSteps*>& steps,
                bool memory_bound) const;

  int64_t capacity_;
  size_t max_cached_;
  // Keyed by whole serialized scenarios (kilobytes that share long
  // prefixes): hashed, not ordered.
  std::unordered_map<std::string, StatusOr<graph::ModelParams>> params_;
  std::unordered_map<std::string, StatusOr<std::vector<graph::RankStatic>>> statics_;
  std::unordered_map<std::string, ScheduleEntry> schedules_;
  std::unordered_map<std::string, StageSteps> stages_;
  std::unordered_map<std::string, StageSteps> slots_;
};

// The shape of a stage: "E D M M L" (embedding, dense layer, MoE layer,
// MTP module, loss), what its step profiles depend on.
std::string StageShape(const graph::Config& config, const graph::Stage& stage);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_FIT_BOUND_H_
