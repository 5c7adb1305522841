#include "traces/memory_series.h"

namespace stepsim::traces {
namespace {

int64_t TotalBytes(const MemorySample& s) { return sim::Total(s.live); }

std::vector<MemorySeries> Build() {
  std::vector<MemorySeries> series;
  for (int k = 0; k < graph::kNumCategories; ++k) {
    series.push_back({graph::CategoryName(static_cast<graph::Category>(k)), k, nullptr});
  }
  series.push_back({"total", -1, TotalBytes});
  return series;
}

}  // namespace

const std::vector<MemorySeries>& AllMemorySeries() {
  static const std::vector<MemorySeries> series = Build();
  return series;
}

}  // namespace stepsim::traces
