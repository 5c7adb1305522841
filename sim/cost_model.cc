#include "sim/cost_model.h"

#include <algorithm>

#include "graph/static_memory.h"

namespace stepsim::sim {

CostModel::CostModel(const graph::Config& config)
    : config_(config),
      flops_per_second_(config.hardware.flops * config.hardware.efficiency) {}

double CostModel::LinkBandwidth(int64_t group_span) const {
  return group_span <= config_.hardware.gpus_per_node ? config_.hardware.nvlink_bandwidth
                                                      : config_.hardware.network_bandwidth;
}

double CostModel::OpSeconds(const graph::Op& op) const {
  const graph::HardwareSpec& hw = config_.hardware;
  const double latency = hw.latency_us * 1e-6;
  double seconds = std::max(op.flops / flops_per_second_, op.bytes_moved / hw.hbm_bandwidth);
  const int64_t tp = config_.parallel.tp;
  if (op.tp_comm_bytes > 0 && tp > 1) {
    // A sequence-parallel all-gather or reduce-scatter inside the op.
    const double t = static_cast<double>(tp);
    seconds += (t - 1) * latency +
               (t - 1) / t * op.tp_comm_bytes / LinkBandwidth(tp);
  }
  return seconds + AllToAllSeconds(op);
}

double CostModel::AllToAllSeconds(const graph::Op& op) const {
  if (op.comm_bytes <= 0) return 0;
  // An expert-parallel all-to-all (dispatch or combine), forward or backward.
  const int64_t span = config_.parallel.ep * config_.parallel.etp;
  return config_.hardware.latency_us * 1e-6 + op.comm_bytes / LinkBandwidth(span);
}

double CostModel::RingPassesSeconds(int64_t dense_bytes, int64_t expert_bytes,
                                     double passes) const {
  const double latency = config_.hardware.latency_us * 1e-6;
  return OverDataParallel(
      dense_bytes, expert_bytes, [&](int64_t n, double bandwidth, int64_t bytes) {
        const double nd = static_cast<double>(n);
        return passes *
               ((nd - 1) * latency + (nd - 1) / nd * static_cast<double>(bytes) / bandwidth);
      });
}

double CostModel::GradientSyncSeconds(int64_t dense_bytes, int64_t expert_bytes) const {
  // Ring all-reduce, or reduce-scatter (half of it) under ZeRO >= 1.
  return RingPassesSeconds(dense_bytes, expert_bytes, config_.zero_stage >= 1 ? 1.0 : 2.0);
}

double CostModel::ParamGatherSeconds(int64_t dense_bytes, int64_t expert_bytes) const {
  // A ring all-gather costs what a reduce-scatter does: n - 1 hops, each
  // rank receiving the n - 1 shards it lacks.
  return RingPassesSeconds(dense_bytes, expert_bytes, 1.0);
}

double CostModel::OptimizerStepSeconds(int64_t dense_params, int64_t expert_params) const {
  const graph::PrecisionSpec& p = config_.precision;
  const int64_t params = graph::OptimizerShardParams(config_, dense_params, expert_params);
  const int64_t per_param =
      2 * p.gradient + 2 * p.optimizer + p.weight + std::max<int64_t>(0, p.master);
  return static_cast<double>(params) * static_cast<double>(per_param) /
         config_.hardware.hbm_bandwidth;
}

double CostModel::GatherSeconds(int64_t dense_bytes, int64_t expert_bytes) const {
  const double latency = config_.hardware.latency_us * 1e-6;
  // A ring all-gather over n ranks: n - 1 hops, each rank receiving the
  // n - 1 shards it lacks.
  return OverDataParallel(
      dense_bytes, expert_bytes, [&](int64_t n, double bandwidth, int64_t bytes) {
        return static_cast<double>(n - 1) * latency + static_cast<double>(bytes) / bandwidth;
      });
}

bool CostModel::SameNode(int64_t rank_a, int64_t rank_b) const {
  const graph::ParallelSpec& p = config_.parallel;
  const int64_t stride = p.tp * p.cp * p.dp;  // GPUs between pipeline neighbours
  const int64_t gpn = config_.hardware.gpus_per_node;
  return (rank_a * stride) / gpn == (rank_b * stride) / gpn;
}

double CostModel::PipelineBandwidth(int64_t rank) const {
  return SameNode(rank, rank + 1) ? config_.hardware.nvlink_bandwidth
                                  : config_.hardware.network_bandwidth;
}

double CostModel::PipelineLatency() const { return config_.hardware.latency_us * 1e-6; }

}  // namespace stepsim::sim
