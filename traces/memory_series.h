// The memory series that every memory output shows, in order: one per
// category (weights ... workspace), stacked, then the total, then the
// caching allocator's reserved bytes (only when the run has an allocator,
// allocator.kind CACHING). The CSV timeline takes its columns from this
// list and the Chrome trace its counter series, so a new series is one
// entry here and one field of MemorySample.
#ifndef STEPSIM_TRACES_MEMORY_SERIES_H_
#define STEPSIM_TRACES_MEMORY_SERIES_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "sim/memory_stream.h"
#include "sim/step_profile.h"

namespace stepsim::traces {

// A rank's memory at one instant.
struct MemorySample {
  const sim::Bytes& live;  // by category
  int64_t reserved = 0;    // the allocator's reserved bytes (allocator series)
};

struct MemorySeries {
  std::string_view name;  // CSV column and counter series: "weights", "total"
  int category = -1;      // a stacked category (index into Bytes), or -1
  int64_t (*derived)(const MemorySample& sample) = nullptr;  // when not a category
  bool allocator = false;  // shown only for runs with a caching allocator

  int64_t Bytes(const MemorySample& sample) const {
    return category >= 0 ? sample.live[category] : derived(sample);
  }
};

const std::vector<MemorySeries>& AllMemorySeries();

// The series shown for a run: all of them, or without the allocator's.
std::vector<MemorySeries> MemorySeriesFor(bool with_allocator);

// Walks a rank's reserved curve (sim::AllocatorRun::reserved) along its
// ledger's changes, in order: the static state's reservation, then the
// reservation after each change.
class ReservedCursor {
 public:
  explicit ReservedCursor(const std::vector<sim::ReservedPoint>& curve) : curve_(curve) {}
  int64_t Static() const { return curve_.empty() ? 0 : curve_.front().bytes; }
  // After change `change` (0, 1, ... in ReplayChanges' order; never lower
  // than the previous call's).
  int64_t AfterChange(int64_t change);

 private:
  const std::vector<sim::ReservedPoint>& curve_;
  size_t next_ = 1;
  int64_t bytes_ = Static();
};

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_MEMORY_SERIES_H_
