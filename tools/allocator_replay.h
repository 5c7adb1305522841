// `stepsim allocator-replay FILE`: replays a text trace of allocations
// through the caching allocator (sim/caching_allocator.h).
//
// One event per line: `alloc ID BYTES [STREAM]` or `free ID`; `#` starts a
// comment. ID is any word, live once at a time; BYTES 0..2^50; STREAM
// 0..63 (default 0). Errors give FILE:LINE:COL.
#ifndef STEPSIM_TOOLS_ALLOCATOR_REPLAY_H_
#define STEPSIM_TOOLS_ALLOCATOR_REPLAY_H_

#include <string>

#include "graph/status.h"
#include "report.pb.h"
#include "sim/caching_allocator.h"

namespace stepsim::tools {

// Replays `text` (named `file` in errors). kInvalidInput for a bad line;
// kFailed for a request the capacity cannot serve.
StatusOr<AllocatorReplayReport> ReplayAllocatorTrace(const std::string& text,
                                                     const std::string& file,
                                                     const sim::AllocatorOptions& options);

struct AllocatorReplayArgs {
  std::string path, json;
  sim::AllocatorOptions options;
  int64_t max_split_size_mb = 0;  // 0: no limit
};
int RunAllocatorReplay(const AllocatorReplayArgs& args);

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_ALLOCATOR_REPLAY_H_
