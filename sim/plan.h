// What the simulation of one step runs, worked out before it runs: the
// platform (one host per pipeline rank, a link per pair of ranks a route
// hands micro-batches between), and for every rank its steps in order, each
// with its stage, its duration, the input it waits for and the output it
// hands on, and the rank's static memory and final gradient reduction.
//
// Inputs and outputs go through channels, one per (direction, receiving
// stage, micro-batch): a SimGrid mailbox when the two stages sit on
// different ranks, a local hand-off (no wire, no time) when one rank holds
// both (DualPipeV's turn). The engine (engine.h) runs a plan with the
// memory model; the benchmark's bare SimGrid floor runs the same plan
// without it.
#ifndef STEPSIM_SIM_PLAN_H_
#define STEPSIM_SIM_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/status.h"
#include "sim/cost_model.h"
#include "sim/platform.h"
#include "sim/schedule.h"
#include "sim/step_profile.h"

namespace stepsim::sim {

struct PlanStep {
  Step step;
  int64_t stage = 0;
  double duration = 0;  // seconds
  // An overlapped forward-backward pair (config.overlap_forward_backward):
  // the forward is `first`, the backward right after it `second`. Both run
  // at `scale` times their profiles' durations, so that the pair takes its
  // overlapped time (OverlappedPairSeconds).
  enum class Pair { kNone, kFirst, kSecond } pair = Pair::kNone;
  double scale = 1;
  // The channel this step waits on before it starts (-1: none) and the rank
  // that sends it (this rank: a local hand-off).
  int64_t input = -1;
  int64_t input_from = -1;
  // The channel it hands its result to when it ends (-1: none), the
  // receiving rank and the payload's bytes.
  int64_t output = -1;
  int64_t output_to = -1;
  int64_t output_bytes = 0;
};

struct RankPlan {
  std::vector<PlanStep> steps;
  Bytes static_bytes{};  // weights, gradients, optimizer, workspaces: live before the step
  std::vector<std::pair<std::string, int64_t>> buffers;  // its named parts
  bool loads_batches = false;  // keeps each micro-batch's input batch (retain_batches)
  int64_t dense_params = 0, expert_params = 0;  // held, before ZeRO sharding
  // The optimizer step's gradient copies (graph::OptimizerGradientCopyBytes).
  int64_t gradient_copy_bytes = 0;
  double grad_sync_seconds = 0;  // the DP gradient reduction after the last step
  int64_t grad_bucket_bytes = 0;  // the bucket it holds meanwhile
  // The all-gather of the updated weights after the optimizer step
  // (GathersWeightsAfterStep): into the weights' own buffer, so it holds
  // no memory of its own.
  double param_gather_seconds = 0;
  double optimizer_seconds = 0;  // the optimizer step (CostModel::OptimizerStepSeconds)
};

struct Plan {
  int64_t stages = 0;
  int64_t microbatches = 0;
  double host_speed = 0;  // FLOP/s of one rank's host
  bool fixed_p2p = false;  // timing.p2p_us: transfers take the link latency only
  int64_t batch_bytes = 0;  // an input batch the training loop keeps, or 0
  std::vector<PlatformLink> links;
  std::vector<RankPlan> ranks;
  std::vector<std::vector<int64_t>> stage_of;  // [rank][chunk] -> stage
  // Per channel: the rank that receives it over the wire, or -1 (unused, or
  // a local hand-off).
  std::vector<int64_t> wire_receiver;

  int64_t Channel(bool gradient, int64_t receiving_stage, int32_t microbatch) const {
    return (static_cast<int64_t>(gradient) * stages + receiving_stage) * microbatches +
           microbatch;
  }
  // "a3.17" (activation into stage 3 of micro-batch 17) or "g3.17".
  std::string ChannelName(int64_t channel) const;
};

// Which stage each (rank, chunk) runs, from the schedule's routes:
// [rank][chunk] -> stage. kInvalidInput when a route does not match the
// layout's `num_stages` stages or a rank runs a chunk that holds no stage.
StatusOr<std::vector<std::vector<int64_t>>> PlaceStages(const Schedule& schedule,
                                                        int64_t num_stages);

// How long a forward step and a backward step of another chunk take run as
// one overlapped pair: each one's EP all-to-all runs beside the other's
// computation, which keeps `communication_sms` of the device's `sm_count`
// SMs free for the all-to-all:
//   max((Fc + Bc) * sms / (sms - communication_sms), Fa + Ba) + Fg + Bg
// with c the computation, a the all-to-all seconds of each and g its waits
// for ZeRO-3's gathered weights and ZeRO-2/3's reduce-scatters.
double OverlappedPairSeconds(const StepProfile& forward, const StepProfile& backward,
                             int64_t sm_count, int64_t communication_sms);
// Of that, the computation's slowdown: sms / (sms - communication_sms), 1
// when no SMs are kept for communication.
double OverlapSlowdown(int64_t sm_count, int64_t communication_sms);
// Whether `first` and the step right after it, `second`, run as one
// overlapped pair (config.overlap_forward_backward; dualpipe.py
// _forward_backward_chunk): a forward, then a backward of the other chunk.
inline bool FormsOverlappedPair(const Step& first, const Step& second) {
  return first.kind == StepKind::kForward &&
         (second.kind == StepKind::kBackward || second.kind == StepKind::kBackwardWeight) &&
         first.chunk != second.chunk;
}

// Whether the optimizer step is followed by an all-gather of the updated
// weights: under ZeRO-1/2 each rank updates only its shard of them, and
// every rank needs them all for the next step. Megatron-Core's distributed
// optimizer gathers them right after the step unless overlap_param_gather
// is set (DistributedOptimizer.step_with_ready_grads, the
// "params-all-gather" timer), as DeepSpeed's ZeRO-1/2 do; ZeRO-3 keeps
// them sharded and gathers each layer in the next step's forwards.
inline bool GathersWeightsAfterStep(const graph::Config& c) {
  return c.zero_stage == 1 || c.zero_stage == 2;
}

// kInvalidInput when the schedule's routes do not match the layout's stages
// or a rank runs a chunk that holds no stage; errors of the static memory
// accounting pass through.
StatusOr<Plan> BuildPlan(const graph::Config& config, const Schedule& schedule,
                         const std::vector<StageProfile>& stages, const CostModel& cost);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_PLAN_H_
