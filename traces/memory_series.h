// The memory series that every memory output shows, in order: one per
// category (weights ... workspace), stacked, then the total. The CSV
// timeline takes its columns from this list and the Chrome trace its
// counter series, so a new series (the caching allocator's reserved bytes)
// is one entry here and one field of MemorySample.
#ifndef STEPSIM_TRACES_MEMORY_SERIES_H_
#define STEPSIM_TRACES_MEMORY_SERIES_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "sim/step_profile.h"

namespace stepsim::traces {

// A rank's memory at one instant.
struct MemorySample {
  const sim::Bytes& live;  // by category
};

struct MemorySeries {
  std::string_view name;  // CSV column and counter series: "weights", "total"
  int category = -1;      // a stacked category (index into Bytes), or -1
  int64_t (*derived)(const MemorySample& sample) = nullptr;  // when not a category

  int64_t Bytes(const MemorySample& sample) const {
    return category >= 0 ? sample.live[category] : derived(sample);
  }
};

const std::vector<MemorySeries>& AllMemorySeries();

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_MEMORY_SERIES_H_
