#include <algorithm>
#include <utility>

#include "sim/schedules/builtin.h"

namespace stepsim::sim {

Schedule Interleaved(int64_t pp, int64_t chunks, int64_t microbatches) {
  Schedule s;
  s.name = "interleaved 1F1B";
  s.pp = pp;
  s.chunks = chunks;
  s.microbatches = microbatches;
  s.routes = graph::RoundRobinRoutes(pp, chunks);
  s.ranks.resize(pp);
  // The order every rank runs its forwards in: groups of pp micro-batches,
  // each group through chunk 0, then chunk 1, ...
  std::vector<std::pair<int32_t, int32_t>> table;  // (micro-batch, chunk)
  for (int64_t g = 0; g < microbatches; g += pp) {
    const int64_t hi = std::min(g + pp, microbatches);
    for (int64_t c = 0; c < chunks; ++c) {
      for (int64_t mb = g; mb < hi; ++mb) {
        table.emplace_back(static_cast<int32_t>(mb), static_cast<int32_t>(c));
      }
    }
  }
  const int64_t total = microbatches * chunks;
  const auto last_chunk = static_cast<int32_t>(chunks - 1);
  for (int64_t r = 0; r < pp; ++r) {
    std::vector<Step>& steps = s.ranks[r];
    const int64_t warmup = std::min(2 * (pp - r - 1) + (chunks - 1) * pp, total);
    auto forward = [&](int64_t k) {
      steps.push_back({StepKind::kForward, table[k].first, table[k].second});
    };
    // Backwards run the chunks in reverse.
    auto backward = [&](int64_t k) {
      steps.push_back({StepKind::kBackwardWeight, table[k].first, last_chunk - table[k].second});
    };
    for (int64_t k = 0; k < warmup; ++k) forward(k);
    for (int64_t j = 0; j < total - warmup; ++j) {
      forward(warmup + j);
      backward(j);
    }
    for (int64_t k = total - warmup; k < total; ++k) backward(k);
  }
  return s;
}

}  // namespace stepsim::sim
