#include "sim/schedules/builtin.h"

namespace stepsim::sim {

Schedule GPipe(int64_t pp, int64_t chunks, int64_t microbatches) {
  Schedule s;
  s.name = "GPipe";
  s.routes = graph::RoundRobinRoutes(pp, chunks);
  s.pp = pp;
  s.chunks = chunks;
  s.microbatches = microbatches;
  s.ranks.resize(pp);
  const auto m = static_cast<int32_t>(microbatches);
  const auto v = static_cast<int32_t>(chunks);
  for (int64_t r = 0; r < pp; ++r) {
    for (int32_t c = 0; c < v; ++c) {
      for (int32_t i = 0; i < m; ++i) s.ranks[r].push_back({StepKind::kForward, i, c});
    }
    for (int32_t c = v - 1; c >= 0; --c) {
      for (int32_t i = 0; i < m; ++i) s.ranks[r].push_back({StepKind::kBackwardWeight, i, c});
    }
  }
  return s;
}

}  // namespace stepsim::sim
