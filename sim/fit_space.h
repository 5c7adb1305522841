// The search space of `stepsim fit`: layouts of N GPUs that keep the global
// batch. PP x TP (with sequence parallelism) x CP, DP = N / (PP*TP*CP), x EP
// x ETP x ZeRO stage x micro-batch size (the micro-batch count follows from
// the global batch) x recomputation x schedule (x VPP chunks for the
// interleaved one). Each candidate is a list of --set overrides of the
// scenario, so `stepsim run SCENARIO --set ...` reproduces it.
#ifndef STEPSIM_SIM_FIT_SPACE_H_
#define STEPSIM_SIM_FIT_SPACE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/status.h"
#include "scenario.pb.h"
#include "sim/sweep_space.h"

namespace stepsim::sim {

// One recomputation setting of the search.
struct RecomputeChoice {
  RecomputePolicy policy = NONE;
  std::vector<std::string> modules;  // SELECTIVE: Megatron's module names
  bool operator==(const RecomputeChoice&) const = default;
};
// "none", "full", or the modules joined by '+' ("layernorm+mla_up_proj").
std::string RecomputeName(const RecomputeChoice& choice);

struct FitSpace {
  int64_t gpus = 0;            // N, at least 1
  int64_t global_batch = 0;    // sequences per step; 0: the scenario's b*m*DP
  int64_t headroom_bytes = 0;  // kept free on every device
  int64_t top = 10;            // K: the fastest that fit
  // The values searched; empty: the defaults.
  std::vector<int64_t> pp;   // powers of two dividing N, at most the layer count
  std::vector<int64_t> tp;   // powers of two up to hardware.gpus_per_node
  std::vector<int64_t> cp;   // 1, 2
  std::vector<int64_t> ep;   // powers of two dividing the routed experts (1: dense)
  std::vector<int64_t> etp;  // 1 and TP; values above TP are dropped
  std::vector<int64_t> mbs;  // 1, 2, 4
  std::vector<int64_t> vpp;  // INTERLEAVED_ONE_F_ONE_B chunks: 2
  std::vector<int64_t> zero;               // 0, 1, 2, 3
  std::vector<ScheduleKind> schedules;     // all seven kinds
  std::vector<RecomputeChoice> recompute;  // none, the scenario's modules, full
};

// One candidate, compactly (a search may hold millions).
struct FitCandidate {
  int64_t pp = 1, tp = 1, cp = 1, dp = 1, ep = 1, etp = 1, zero = 0;
  int64_t mbs = 1, microbatches = 1, vpp = 1;
  ScheduleKind schedule = ONE_F_ONE_B;
  int32_t recompute = 0;     // into FitCandidates::recompute
  bool clear_layout = false;  // the scenario's layout is for another PP or VPP
};

constexpr int64_t kMaxFitCandidates = 5'000'000;

struct FitCandidates {
  std::vector<FitCandidate> candidates;  // in enumeration order
  std::vector<RecomputeChoice> recompute;
  int64_t global_batch = 0;
  int64_t capacity_bytes = 0;  // hardware.hbm_bytes less the headroom
  bool set_capacity = false;   // headroom given: every point sets hardware.hbm_bytes
  // "parallel.pp=1,2,4", ...: one line per dimension, for SweepReport.space.
  std::vector<std::string> space;

  // The overrides that make the candidate from the fit's base scenario.
  Point PointOf(const FitCandidate& candidate) const;
  // ApplyPoint(base, PointOf(candidate)), made by setting the fields
  // directly: what the bounds of a fit's many candidates start from.
  Scenario ScenarioOf(const Scenario& base, const FitCandidate& candidate) const;
};

// The scenario a fit starts from: `scenario` without the settings the
// search replaces or that cannot follow it: schedule.file, recompute.method
// and recompute.num_layers.
Scenario FitBase(const Scenario& scenario);

// Every candidate, the last dimension varying fastest: PP, TP, CP, EP, ETP,
// ZeRO, micro-batch size, recompute, schedule (with VPP). Candidates that do
// not use N GPUs or do not keep the global batch are not in the space.
// `config` is the base scenario resolved. kInvalidInput naming the flag
// for bad space values and for more than kMaxFitCandidates candidates.
StatusOr<FitCandidates> EnumerateFit(const Scenario& base, const graph::Config& config,
                                     const FitSpace& space);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_FIT_SPACE_H_
