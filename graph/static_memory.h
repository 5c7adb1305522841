// Static memory per device: weights, gradients and optimizer state under
// ZeRO 0-3 (memory-model.md section 3). Non-expert parameters are sharded
// over DP (times CP), expert parameters over EDP; a shard is rounded up to
// a whole parameter.
#ifndef STEPSIM_GRAPH_STATIC_MEMORY_H_
#define STEPSIM_GRAPH_STATIC_MEMORY_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "graph/config.h"
#include "graph/params.h"
#include "graph/status.h"

namespace stepsim::graph {

struct StaticMemory {
  int64_t dense_params = 0;   // on the device before ZeRO, sharded over DP
  int64_t expert_params = 0;  // on the device before ZeRO, sharded over EDP
  int64_t weights_bytes = 0;
  int64_t gradients_bytes = 0;
  int64_t optimizer_bytes = 0;
  int64_t total_bytes() const { return weights_bytes + gradients_bytes + optimizer_bytes; }
};

// The parameters whose optimizer state a device holding `dense_params` and
// `expert_params` (before ZeRO sharding) keeps, and steps: all of them, or
// under ZeRO >= 1 its shard (dense over DP*CP, experts over EDP, each
// rounded up). Throws Overflow.
int64_t OptimizerShardParams(const Config& config, int64_t dense_params, int64_t expert_params);

// Static memory of a device holding `dense_params` and `expert_params`
// (before ZeRO sharding) under the config's precision and ZeRO stage.
// Throws Overflow.
StaticMemory ComputeStaticMemory(const Config& config, int64_t dense_params,
                                 int64_t expert_params);

// The named parts of `memory`: "weights", "gradients", and the optimizer's
// "master_weights" and "optimizer_moments" when the precision gives them,
// else "optimizer".
std::vector<std::pair<std::string, int64_t>> StaticBufferNames(const Config& config,
                                                               const StaticMemory& memory);

// Per pipeline rank: the sum over the stages the rank holds (its virtual
// chunks; both directions' copies under DualPipe).
struct RankStatic {
  int64_t pp_rank = 0;
  int64_t params = 0;
  StaticMemory memory;
};
StatusOr<std::vector<RankStatic>> StaticMemoryPerRank(const Config& config,
                                                      const ModelParams& params);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_STATIC_MEMORY_H_
