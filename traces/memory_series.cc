#include "traces/memory_series.h"

namespace stepsim::traces {
namespace {

int64_t TotalBytes(const MemorySample& s) { return sim::Total(s.live); }
int64_t ReservedBytes(const MemorySample& s) { return s.reserved; }

std::vector<MemorySeries> Build() {
  std::vector<MemorySeries> series;
  for (int k = 0; k < graph::kNumCategories; ++k) {
    series.push_back({graph::CategoryName(static_cast<graph::Category>(k)), k, nullptr});
  }
  series.push_back({"total", -1, TotalBytes});
  series.push_back({"reserved", -1, ReservedBytes, true});
  return series;
}

}  // namespace

const std::vector<MemorySeries>& AllMemorySeries() {
  static const std::vector<MemorySeries> series = Build();
  return series;
}

std::vector<MemorySeries> MemorySeriesFor(bool with_allocator) {
  std::vector<MemorySeries> out;
  for (const MemorySeries& s : AllMemorySeries()) {
    if (with_allocator || !s.allocator) out.push_back(s);
  }
  return out;
}

int64_t ReservedCursor::AfterChange(int64_t change) {
  while (next_ < curve_.size() && curve_[next_].change <= change) bytes_ = curve_[next_++].bytes;
  return bytes_;
}

}  // namespace stepsim::traces
