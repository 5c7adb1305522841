// What one step (F, B, W or BW of one micro-batch on one stage) does to a
// rank's memory over its duration, computed once per stage and step kind.
// Ops inside a step run back to back, so the engine only needs one SimGrid
// activity per step; the ledger replays the profile at the step's start
// time: each op's allocations at its start, its frees at its end.
#ifndef STEPSIM_SIM_STEP_PROFILE_H_
#define STEPSIM_SIM_STEP_PROFILE_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/op.h"
#include "graph/stage_dag.h"
#include "graph/status.h"
#include "sim/cost_model.h"
#include "sim/schedule.h"

namespace stepsim::sim {

using Bytes = std::array<int64_t, graph::kNumCategories>;

// The sum over categories.
inline int64_t Total(const Bytes& bytes) {
  int64_t total = 0;
  for (int64_t b : bytes) total += b;
  return total;
}

struct Phase {
  int32_t op = -1;        // index into the stage DAG's ops
  double start = 0;       // seconds from the step's start
  double end = 0;         // the last phase ends exactly at the step's duration
  Bytes alloc{}, free{};  // by category
  // Of those, ZeRO-3's gathered weights (no tensor of the DAG), in bytes:
  // allocated, the group's own (when no op before prefetched them) and the
  // next group's (prefetched); freed, the group's after its last op.
  std::array<int64_t, 2> gathered_alloc{};
  int64_t gathered_free = 0;
  // Of those, ZeRO-2/3's unsharded gradients (no tensor of the DAG), in
  // bytes: allocated, a group's at its first weight-gradient op; freed, once
  // their reduce-scatter completed, the previous group's at a group's last
  // weight-gradient op, and at the step's last op whatever is left.
  int64_t reduced_alloc = 0;
  int64_t reduced_free = 0;
};

// ZeRO-2/3: one group's reduce-scatter on the DP stream, in seconds from
// the step's start (as Phase::start and end).
struct ReduceScatter {
  double start = 0, end = 0;
  int64_t bytes = 0;
  std::string group;  // "L3" (decoder layer), "M0" (MTP), "embedding", "loss"
};

struct StepProfile {
  std::vector<Phase> phases;
  std::vector<ReduceScatter> reduce_scatters;  // in issue order, one after another
  double duration = 0;
  double comm_seconds = 0;  // of the duration, in EP all-to-alls (forward and backward)
  double gather_seconds = 0;  // of the duration, waiting for ZeRO-3's gathered weights
  // Of the duration, waiting for ZeRO-2/3's gradient reduce-scatters.
  double reduce_seconds = 0;
  double flops = 0;
  Bytes net{};  // allocations minus frees over the whole step
  // The highest point of the cumulative change during the step: after the
  // allocations of phase `peak_phase` (-1: at the start, nothing higher).
  int64_t peak = 0;
  int peak_phase = -1;
  Bytes at_peak{};
};

// Everything the engine needs to run one stage.
struct StageProfile {
  int64_t stage = 0;
  // The stage's ops, tensors and execution orders. Its edges (dag.graph) are
  // left empty: they were validated when the DAG was built, nothing after
  // needs them, and copying a Boost graph costs more than building profiles.
  graph::StageDag dag;
  StepProfile forward, backward, weight, backward_weight;
  int64_t activation_bytes = 0;  // sent to the next stage per micro-batch
  int64_t gradient_bytes = 0;    // sent to the previous stage per micro-batch

  const StepProfile& For(StepKind kind) const;
};

// Whether a rank keeps only its shard of the gradients between
// micro-batches, and so reduce-scatters each micro-batch's gradients as its
// backward produces them (ZeRO-2 and 3): there is no full-size buffer to
// accumulate them in. FSDP2 does this by default (pytorch/pytorch#126166:
// "reduce-scatter ... incurs the collective per microbatch backward but
// saves gradient memory (storing the sharded gradients)"), as do DeepSpeed's
// ZeRO-2 and Megatron-FSDP's optim_grads. ZeRO-0/1 reduce once, after the
// step (Megatron's distributed optimizer accumulates into its full
// gradient buffer).
inline bool ReducesPerMicrobatch(const graph::Config& c) { return c.zero_stage >= 2; }

// Whether the ZeRO stage reaches the stage profiles: ZeRO-2 and 3
// reduce-scatter each micro-batch's gradients inside its backward, and
// ZeRO-3 gathers weights inside every step; below them, sharding changes the
// static memory and the end-of-step reduction's time, which lie outside the
// profiles. Profiles built for ZeRO-0 serve ZeRO-1 as they are.
inline bool ProfilesDependOnZero(const graph::Config& c) {
  return ReducesPerMicrobatch(c) || c.zero_stage >= 3;
}

// Builds every stage's profiles. Durations come from the cost model unless
// the config's `timing` fixes them (then ops share the fixed time in
// proportion to their modelled time). Under ZeRO-3 each layer's gathered
// weights are a comm allocation from the start of the layer before it (a
// prefetch, FSDP-style) to the layer's last op, and a layer waits for the
// part of its gather the layer before it did not hide. Under ZeRO-2 and 3,
// the steps that compute weight gradients (W, BW) hold each group's
// unsharded gradients from its first weight-gradient op until their
// reduce-scatter completes; one is in flight at a time (FSDP2), and the
// compute waits for it before issuing the next, and at the step's end.
StatusOr<std::vector<StageProfile>> BuildStageProfiles(const graph::Config& config,
                                                       const CostModel& cost);
// The profiles of `stages` only, each built as a stage of `config`'s layout
// (its index and placement decide what it receives and, under ZeRO-3, which
// shared weights its rank gathers).
StatusOr<std::vector<StageProfile>> BuildStageProfiles(const graph::Config& config,
                                                       const CostModel& cost,
                                                       const std::vector<graph::Stage>& stages);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_STEP_PROFILE_H_
