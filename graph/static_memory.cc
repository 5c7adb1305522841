#include "graph/static_memory.h"

#include "graph/checked.h"

namespace stepsim::graph {

namespace {

int64_t ShardParams(const Config& c, int64_t dense_params, int64_t expert_params) {
  return Add(CeilDiv(dense_params, c.parallel.dense_dp()), CeilDiv(expert_params, c.parallel.edp));
}

}  // namespace

int64_t OptimizerShardParams(const Config& c, int64_t dense_params, int64_t expert_params) {
  return c.zero_stage >= 1 ? ShardParams(c, dense_params, expert_params)
                           : Add(dense_params, expert_params);
}

StaticMemory ComputeStaticMemory(const Config& c, int64_t dense_params,
                                 int64_t expert_params) {
  StaticMemory s;
  s.dense_params = dense_params;
  s.expert_params = expert_params;
  const int64_t whole = Add(dense_params, expert_params);
  const int64_t sharded = ShardParams(c, dense_params, expert_params);
  const PrecisionSpec& p = c.precision;
  s.optimizer_bytes = Mul(p.optimizer, OptimizerShardParams(c, dense_params, expert_params));
  s.gradients_bytes = Mul(p.gradient, c.zero_stage >= 2 ? sharded : whole);
  s.weights_bytes = Mul(p.weight, c.zero_stage >= 3 ? sharded : whole);
  Add(s.weights_bytes, s.gradients_bytes, s.optimizer_bytes);  // overflow check
  return s;
}

std::vector<std::pair<std::string, int64_t>> StaticBufferNames(const Config& c,
                                                               const StaticMemory& m) {
  std::vector<std::pair<std::string, int64_t>> out = {{"weights", m.weights_bytes},
                                                      {"gradients", m.gradients_bytes}};
  const PrecisionSpec& p = c.precision;
  if (p.master >= 0 && p.optimizer > 0 && m.optimizer_bytes % p.optimizer == 0) {
    const int64_t elements = m.optimizer_bytes / p.optimizer;
    out.emplace_back("master_weights", elements * p.master);
    out.emplace_back("optimizer_moments", elements * 2 * p.moment);
  } else {
    out.emplace_back("optimizer", m.optimizer_bytes);
  }
  return out;
}

StatusOr<std::vector<RankStatic>> StaticMemoryPerRank(const Config& c,
                                                      const ModelParams& params) {
  try {
    std::vector<RankStatic> ranks(c.parallel.pp);
    std::vector<int64_t> dense(c.parallel.pp, 0), expert(c.parallel.pp, 0);
    for (int64_t r = 0; r < c.parallel.pp; ++r) {
      for (int64_t stage : c.layout.rank_stages[r]) {
        const StageParams& s = params.stages[stage];
        ranks[r].params = Add(ranks[r].params, s.device);
        dense[r] = Add(dense[r], s.device_dense);
        expert[r] = Add(expert[r], s.device_expert);
      }
    }
    for (int64_t r = 0; r < c.parallel.pp; ++r) {
      ranks[r].pp_rank = r;
      ranks[r].memory = ComputeStaticMemory(c, dense[r], expert[r]);
    }
    return ranks;
  } catch (const Overflow&) {
    return Status::Invalid("model: static memory overflows 64-bit byte counts");
  }
}

}  // namespace stepsim::graph
