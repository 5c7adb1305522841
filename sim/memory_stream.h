// A rank's tensor-level allocations and frees, in exactly its ledger's
// order (Ledger::Walk), fed to the caching allocator: what the rank
// reserves over the step, its peak, fragmentation and OOM.
//
// What is allocated, on which CUDA stream:
//   - static state at time 0, one block per category (Megatron keeps
//     weights and gradients in contiguous buffers), on the compute stream;
//     the communication workspace as one block on the DP stream;
//   - every DAG tensor of a step as its own block when its op starts, freed
//     when the op that frees it ends; EP dispatch/combine buffers (comm
//     tensors of an all-to-all op) on the EP stream, the rest on compute;
//   - ZeRO-3 gathered weights (phase bytes beyond the op's tensors) as a
//     block of their own on the DP stream;
//   - pipeline send/receive buffers on the pipeline stream, the DP gradient
//     bucket on the DP stream.
// Tensor identity is (stage, micro-batch, tensor index): a tensor lives
// from its forward to the backward or W step that frees it.
#ifndef STEPSIM_SIM_MEMORY_STREAM_H_
#define STEPSIM_SIM_MEMORY_STREAM_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "graph/config.h"
#include "graph/status.h"
#include "sim/caching_allocator.h"
#include "sim/engine.h"

namespace stepsim::sim {

enum class CudaStream { kCompute = 0, kPipeline = 1, kEpComm = 2, kDpComm = 3 };
const char* CudaStreamName(int stream);  // "compute", "pipeline", "ep", "dp"

// What a tagged block is, for snapshot frames.
struct AllocationLabel {
  std::string tensor;    // "L7.mla.qk.q_k", "send activation 3", "weights"
  std::string category;  // "activations", ...
  std::string op;        // "F L7.mla.qk", or "" outside an op
  std::string step;      // "F3", "" outside a step
  int64_t layer = -1;
  int32_t microbatch = -1;
  int64_t stage = -1;
};

// One point of the reserved curve: from `time` (seconds) on, `bytes`.
// `change` places it among the ledger's changes, numbered from 0 in the
// order Ledger::ReplayChanges reports them (every single delta, and every
// phase event that moves bytes): reserved is `bytes` from that change on.
// The first point is the static state's, at time 0 before any change
// (change -1).
struct ReservedPoint {
  double time = 0;
  int64_t bytes = 0;
  int64_t change = -1;
};

struct AllocatorRun {
  int64_t rank = 0;
  AllocatorStats end;  // the allocator after the step
  int64_t reserved_peak = 0;
  double reserved_peak_time = 0;
  int64_t live_at_peak = 0;          // requested bytes when reserved peaked
  int64_t largest_free_at_peak = 0;
  int64_t peak_event = -1;           // the allocator event that set the peak
  std::vector<ReservedPoint> reserved;  // the static state, then every change
  // The first request that could not be served within the capacity.
  bool oom = false;
  std::string oom_op;
  int64_t oom_request = 0, oom_largest_free = 0;
  // Where in the ledger that request came from: the index of its step in
  // ledger.steps() (a DAG tensor or ZeRO-3 gather), or of its delta in
  // ledger.deltas() (a buffer); both -1 for the static state.
  int64_t oom_step = -1, oom_delta = -1;
  // With `snapshot`: the allocator's segments at the reserved peak, every
  // event up to it, and the labels its tags index.
  std::vector<SegmentState> segments_at_peak;
  std::vector<TraceEntry> trace;
  std::vector<AllocationLabel> labels;
  std::vector<double> event_times;  // seconds, by allocator event number
};

// The allocator settings for a rank of `config`: its capacity is the
// device's memory less hardware.runtime_overhead_bytes.
AllocatorOptions AllocatorOptionsFor(const graph::Config& config);

struct MemoryStreamOptions {
  bool snapshot = false;  // keep the trace, labels and segments at the peak
  // Called after every ledger event with its time and the live (requested)
  // bytes, for checks against the ledger.
  std::function<void(double time, int64_t live)> on_change;
};

// Replays `run`'s ledger through a caching allocator. kFailed if the stream
// is inconsistent (a stepsim bug); an OOM is a result, not an error.
StatusOr<AllocatorRun> ReplayAllocator(const AllocatorOptions& allocator, const RankRun& run,
                                       const MemoryStreamOptions& options = {});

// Whether replaying `b` makes exactly the allocator calls replaying `a`
// does, at the same times, so that the two replays agree on everything but
// labels and an OOM's op: the same static bytes; steps of the same stage
// profiles and kinds at the same times and scales; deltas of the same
// times, bytes, tie classes and streams; and micro-batches and buffer names
// that correspond one to one, since the replayer pairs a free with its
// allocation by them (a DAG tensor by stage and micro-batch, a buffer by
// name). DualPipe's mirror ranks (r and PP-1-r) replay alike.
bool ReplaysAlike(const Ledger& a, const Ledger& b);

// Every rank of a simulation, in rank order; empty when
// config.allocator.kind is NONE. Ranks replay on `threads` threads (0: one
// per core); the result is the same for any number. A rank that replays
// alike an earlier one (ReplaysAlike) takes its result, unless it is the
// snapshot's rank; if that result ran out of memory, its OOM op is named
// after this rank's own step or buffer at the same place of its ledger.
StatusOr<std::vector<AllocatorRun>> ReplayAllocators(const graph::Config& config,
                                                     const SimResult& result,
                                                     int64_t snapshot_rank = -1,
                                                     int threads = 1);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_MEMORY_STREAM_H_
