#include "sim/schedules/builtin.h"

namespace stepsim::sim {

Schedule ZeroBubble(int64_t pp, int64_t microbatches, bool h2) {
  Schedule s;
  s.name = h2 ? "ZB-H2" : "ZB-H1";
  s.pp = pp;
  s.chunks = 1;
  s.microbatches = microbatches;
  s.routes = graph::RoundRobinRoutes(pp, 1);
  s.ranks.resize(pp);
  const int64_t factor = h2 ? 2 : 1;
  const int64_t lag_w = factor * (pp - 1);
  for (int64_t i = 0; i < pp; ++i) {
    const int64_t lag_b = factor * (pp - 1 - i);
    // One slot per x: the forward of x, the B that lags it by lag_b, the W
    // that lags it by lag_w.
    for (int64_t x = 0; x < microbatches + lag_w; ++x) {
      if (x < microbatches) s.ranks[i].push_back({StepKind::kForward, static_cast<int32_t>(x), 0});
      const int64_t b = x - lag_b, w = x - lag_w;
      if (b >= 0 && b < microbatches) {
        s.ranks[i].push_back({StepKind::kBackward, static_cast<int32_t>(b), 0});
      }
      if (w >= 0 && w < microbatches) {
        s.ranks[i].push_back({StepKind::kWeight, static_cast<int32_t>(w), 0});
      }
    }
  }
  return s;
}

}  // namespace stepsim::sim
