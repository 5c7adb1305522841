#include <algorithm>

#include "sim/schedules/builtin.h"

namespace stepsim::sim {

Schedule OneFOneB(int64_t pp, int64_t microbatches) {
  Schedule s;
  s.name = "1F1B";
  s.routes = graph::RoundRobinRoutes(pp, 1);
  s.pp = pp;
  s.chunks = 1;
  s.microbatches = microbatches;
  s.ranks.resize(pp);
  const auto m = static_cast<int32_t>(microbatches);
  for (int64_t r = 0; r < pp; ++r) {
    std::vector<Step>& steps = s.ranks[r];
    const auto warmup = static_cast<int32_t>(std::min<int64_t>(pp - r - 1, microbatches));
    int32_t next_f = 0, next_b = 0;
    for (; next_f < warmup; ++next_f) steps.push_back({StepKind::kForward, next_f, 0});
    while (next_f < m) {
      steps.push_back({StepKind::kForward, next_f++, 0});
      steps.push_back({StepKind::kBackwardWeight, next_b++, 0});
    }
    while (next_b < m) steps.push_back({StepKind::kBackwardWeight, next_b++, 0});
  }
  return s;
}

}  // namespace stepsim::sim
