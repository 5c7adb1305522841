// How long things take on the simulated hardware: op durations from a
// roofline of FLOPs and HBM bytes, and collectives from their group size and
// the links the group spans. Pipeline transfers are not here: they are
// SimGrid communications over the platform's links (platform.h).
//
// Collectives (documented cost model, ring algorithms):
//   TP all-gather / reduce-scatter of B bytes over t ranks:
//       (t-1) * latency + (t-1)/t * B / bandwidth
//   EP all-to-all moving B bytes off the device: latency + B / bandwidth
//   DP gradient reduction of B bytes over n ranks: all-reduce
//       2(n-1) * latency + 2(n-1)/n * B / bandwidth, or a reduce-scatter
//       (half of that) under ZeRO >= 1
//   ZeRO-1/2 parameter all-gather after the optimizer step, B bytes of
//       weights over n ranks: (n-1) * latency + (n-1)/n * B / bandwidth
//   Optimizer step over the P parameters a rank steps (its shard under
//       ZeRO >= 1): P * (2 gradient + 2 optimizer + weight + master bytes)
//       / HBM bandwidth (OptimizerStepSeconds)
// A group uses NVLink when it fits in one node, the network otherwise.
// Group layout follows Megatron's rank order (TP innermost, then CP, DP,
// PP outermost; experts ETP, then EP).
#ifndef STEPSIM_SIM_COST_MODEL_H_
#define STEPSIM_SIM_COST_MODEL_H_

#include <cstdint>

#include "graph/config.h"
#include "graph/op.h"

namespace stepsim::sim {

class CostModel {
 public:
  explicit CostModel(const graph::Config& config);

  // Seconds one op takes on one device, collectives included.
  double OpSeconds(const graph::Op& op) const;
  // Of those, the seconds of its expert-parallel all-to-all (0 for an op
  // without one).
  double AllToAllSeconds(const graph::Op& op) const;
  // Seconds of the gradient reduction at the step's end: `dense_bytes` of
  // non-expert gradients over DP*CP ranks, `expert_bytes` over EDP ranks
  // (unsharded sizes: a reduce-scatter moves the whole gradient too).
  double GradientSyncSeconds(int64_t dense_bytes, int64_t expert_bytes) const;
  // Seconds of the all-gather of the updated weights after the optimizer
  // step under ZeRO-1/2, over the same groups (unsharded sizes): each rank
  // updated only its shard, and every rank needs all of them.
  double ParamGatherSeconds(int64_t dense_bytes, int64_t expert_bytes) const;
  // Seconds of the optimizer step of a rank holding `dense_params` and
  // `expert_params` (before sharding), memory-bound over the parameters
  // whose state it keeps (graph::OptimizerShardParams), per parameter:
  // the gradient read twice (the norm for clipping, then Adam), the
  // optimizer state read and written (Adam's master weights and moments,
  // FusedAdam), then the master weights read again and the weights written
  // in their own precision (Megatron's _copy_main_params_to_model_params;
  // the master's read only when the precision gives its size). Throws
  // Overflow.
  double OptimizerStepSeconds(int64_t dense_params, int64_t expert_params) const;
  // Seconds of a ZeRO-3 all-gather of one layer's weights: a ring over the
  // dense DP*CP ranks that brings in `dense_bytes` (the other ranks'
  // shards), then one over the EDP ranks for `expert_bytes`.
  double GatherSeconds(int64_t dense_bytes, int64_t expert_bytes) const;
  // Bandwidth (bytes/s) and latency (s) between pipeline ranks r and r + 1.
  double PipelineBandwidth(int64_t rank) const;
  double PipelineLatency() const;
  bool SameNode(int64_t rank_a, int64_t rank_b) const;

 private:
  double LinkBandwidth(int64_t group_span) const;
  // `passes` times a ring reduce-scatter (or all-gather) of `dense_bytes`
  // over the DP*CP group and `expert_bytes` over EDP: per group of n ranks,
  // (n-1) * latency + (n-1)/n * bytes / bandwidth.
  double RingPassesSeconds(int64_t dense_bytes, int64_t expert_bytes, double passes) const;
  // ring(ranks, bandwidth, bytes) for `dense_bytes` over the DP*CP group of
  // the non-expert weights plus `expert_bytes` over the experts' EDP group;
  // a group of one rank, or no bytes, costs nothing.
  template <typename Ring>
  double OverDataParallel(int64_t dense_bytes, int64_t expert_bytes, Ring ring) const {
    const graph::ParallelSpec& p = config_.parallel;
    auto group = [&](int64_t n, int64_t span, int64_t bytes) {
      return n <= 1 || bytes <= 0 ? 0.0 : ring(n, LinkBandwidth(span), bytes);
    };
    return group(p.dense_dp(), p.dense_dp() * p.tp, dense_bytes) +
           group(p.edp, p.edp * p.ep * p.etp, expert_bytes);
  }

  const graph::Config& config_;
  double flops_per_second_;
};

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_COST_MODEL_H_
