// A simulation of PyTorch's CUDA caching allocator (one device), fed by
// allocations and frees in the order a rank makes them. It follows
// c10/cuda/CUDACachingAllocator.cpp of pytorch/pytorch at commit 001074d2
// (2025), whose rules it cites where it applies them:
//   - requests are rounded up to 512 B (or to a power-of-two division);
//   - requests up to 1 MiB come from the small pool, packed into 2 MiB
//     segments; larger ones from the large pool: a 20 MiB segment below
//     10 MiB, else the request rounded up to 2 MiB;
//   - a free block is found by best fit over (stream, size, address), and a
//     block freed on one stream is never handed to another;
//   - a found block is split when the rest is worth keeping (small pool: at
//     least 512 B; large: more than 1 MiB, and not for blocks of
//     max_split_size or more); a freed block merges with free neighbours;
//   - when cudaMalloc fails, cached oversize blocks and then every whole
//     cached segment are freed and the cudaMalloc retried; only then OOM;
//   - expandable segments: one growing segment per stream and pool, mapped
//     in 2 MiB (small) or 20 MiB (large) pages.
// Not modelled: CUDA graphs' private pools, record_stream events (a block is
// free when its owner frees it), garbage_collection_threshold, IPC.
//
// Pure C++: no SimGrid, no I/O. Addresses are invented (segments are laid
// out from a fixed base) but consistent, so a snapshot can be drawn.
#ifndef STEPSIM_SIM_CACHING_ALLOCATOR_H_
#define STEPSIM_SIM_CACHING_ALLOCATOR_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "sim/free_block_set.h"

namespace stepsim::sim {

struct AllocatorOptions {
  // What cudaMalloc may hand out in total (the device's memory less what
  // the CUDA context holds); a segment that would pass it fails.
  int64_t capacity = std::numeric_limits<int64_t>::max();
  // Blocks of at least this size are never split, and serve only requests
  // within max_non_split_rounding of their size. Default: no limit.
  int64_t max_split_size = std::numeric_limits<int64_t>::max();
  int64_t max_non_split_rounding = int64_t{20} << 20;
  // 0 or 1: sizes round to 512 B; a power of two N > 1: sizes above 512*N B
  // round up to the next of N equal steps between two powers of two.
  int64_t roundup_power2_divisions = 0;
  bool expandable_segments = false;
  // Address space of one expandable segment: PyTorch reserves 9/8 of the
  // device's memory. Default: 9/8 of `capacity` (80 GiB when unlimited).
  int64_t expandable_address_space = 0;
  bool record_trace = false;  // keep every event for a memory snapshot
};

// The rounded size a request of `bytes` takes (round_size in PyTorch).
int64_t RoundSize(int64_t bytes, int64_t roundup_power2_divisions);
// The segment a cudaMalloc for a rounded request takes (get_allocation_size).
int64_t SegmentSize(int64_t rounded);

// One event, as torch.cuda.memory._snapshot() records it.
enum class TraceAction {
  kAlloc,
  kFreeRequested,
  kFreeCompleted,
  kSegmentAlloc,
  kSegmentFree,
  kSegmentMap,
  kSegmentUnmap,
  kOom,
};
const char* TraceActionName(TraceAction a);  // "alloc", "segment_map", ...

struct TraceEntry {
  TraceAction action = TraceAction::kAlloc;
  int64_t addr = 0;  // kOom: the bytes the device had free
  int64_t size = 0;  // requested bytes for blocks, mapped bytes for segments
  int stream = 0;
  int64_t tag = -1;  // the caller's tag of the block (-1 for segments)
  int64_t event = 0; // the number of Allocate/Free calls made before it
};

struct BlockState {
  int64_t address = 0, size = 0, requested = 0;
  bool allocated = false;
  int64_t tag = -1;
};

// One contiguous mapped range, as torch's snapshot reports segments.
struct SegmentState {
  int64_t address = 0, total_size = 0, allocated_size = 0, requested_size = 0;
  int stream = 0;
  bool large = false, expandable = false;
  std::vector<BlockState> blocks;  // in address order, covering the segment
};

struct AllocatorStats {
  int64_t requested = 0;  // bytes the live allocations asked for
  int64_t allocated = 0;  // bytes of the blocks they hold (rounded)
  int64_t reserved = 0;   // bytes of all segments (or mapped pages)
  int64_t segments = 0;
  int64_t device_allocs = 0;  // cudaMalloc (or page-mapping) calls
  int64_t device_frees = 0;
  int64_t retries = 0;    // cudaMalloc retried after freeing cached blocks
  int64_t ooms = 0;
};

class CachingAllocator {
 public:
  using Handle = int32_t;
  static constexpr Handle kOutOfMemory = -1;
  static constexpr Handle kNoBlock = -2;  // a 0-byte request holds nothing
  static constexpr int kMaxStreams = FreeBlockSet::kStreams;
  static constexpr int64_t kMaxRequest = int64_t{1} << 50;

  explicit CachingAllocator(AllocatorOptions options);

  // Serves `bytes` (0..kMaxRequest; more is always out of memory) on
  // `stream` (0..kMaxStreams-1) and tags the
  // block with `tag` (the snapshot's link back to the caller). Returns the
  // block's handle, kNoBlock for 0 bytes, or kOutOfMemory when even after
  // freeing the cache no segment fits in the capacity (nothing changes then
  // except the cache released on the way).
  Handle Allocate(int64_t bytes, int stream, int64_t tag = -1);
  // Frees a handle Allocate returned (kNoBlock is a no-op). The caller
  // guarantees it is live: a handle is freed once.
  void Free(Handle handle);

  // After an OOM the caller may lift the capacity to see what the step
  // would have needed.
  void LiftCapacity() { options_.capacity = std::numeric_limits<int64_t>::max(); }

  const AllocatorStats& stats() const { return stats_; }
  const AllocatorOptions& options() const { return options_; }
  // The largest free (cached, mapped) block, 0 if none.
  int64_t LargestFreeBlock() const;
  // Every segment in address order.
  std::vector<SegmentState> Snapshot() const;
  const std::vector<TraceEntry>& trace() const { return trace_; }
  int64_t events() const { return events_; }

 private:
  struct Block {
    int64_t addr = 0, size = 0, requested = 0;
    int64_t tag = -1;
    Handle prev = -1, next = -1;  // neighbours in the segment
    int32_t stream = 0;
    bool small = false, allocated = false, mapped = true;
    int32_t expandable = -1;  // index of its expandable segment, or -1
  };
  using FreeKey = FreeBlockSet::Key;  // best fit: (stream, size, address)
  static FreeKey Key(int32_t stream, int64_t size, int64_t addr);
  struct AddressKey {  // unmapped ranges: (stream, address)
    int32_t stream;
    int64_t addr;
    Handle block;
    bool operator<(const AddressKey& o) const {
      return stream != o.stream ? stream < o.stream : addr < o.addr;
    }
  };
  struct Pool {
    bool small = false;
    FreeBlockSet blocks;
    std::set<AddressKey> unmapped;
  };
  struct Expandable {
    int64_t base = 0, page = 0, pages = 0;
    bool live = true;
  };

  Pool& PoolFor(const Block& b) { return b.small ? small_ : large_; }
  // Every allocation and free goes through the helpers marked STEPSIM_HOT:
  // GCC kept them out of line, and their calls took 10% of the instructions
  // of the V3 replay.
#define STEPSIM_HOT [[gnu::always_inline]]
  STEPSIM_HOT Handle NewBlock(const Block& b);
  // A copy of h's block at [addr, addr + size), linked in right before
  // (after) h in its segment.
  STEPSIM_HOT Handle LinkBefore(Handle h, int64_t addr, int64_t size);
  Handle LinkAfter(Handle h, int64_t addr, int64_t size);
  STEPSIM_HOT void DeleteBlock(Handle h);
  STEPSIM_HOT void InsertFree(Handle h);
  STEPSIM_HOT void EraseFree(Handle h);
  STEPSIM_HOT void UpdateFree(Handle h);  // after its size or address changed

  STEPSIM_HOT Handle FindFreeBlock(Pool& pool, int stream, int64_t size);  // get_free_block
  STEPSIM_HOT bool ShouldSplit(Handle h, int64_t size) const;
  Handle AllocSegment(Pool& pool, int stream, int64_t size, int64_t alloc_size);
  bool ReleaseAvailableCachedBlocks(Pool& pool, int stream, int64_t size);
  void ReleaseCachedBlocks();
  void ReleasePool(Pool& pool);
  void ReleaseBlock(Handle h);  // cudaFree of a whole segment
  Handle TryAllocateExpandable(Pool& pool, int stream, int64_t size);
  Handle FindExpandable(Pool& pool, int stream, int64_t size);
  bool MapBlock(Handle h, int64_t size);
  void UnmapBlock(Handle h);
  // Whether `src` (a neighbour of `dst`, or -1) is free and in the same
  // mapping state, so that it may join `dst`.
  bool Mergeable(Handle dst, Handle src) const {
    return src >= 0 && !blocks_[src].allocated && blocks_[src].mapped == blocks_[dst].mapped;
  }
  int64_t TryMerge(Handle dst, Handle src);
  STEPSIM_HOT int64_t Absorb(Handle dst, Handle src);
  void FreeBlock(Handle h);
  STEPSIM_HOT void Record(TraceAction action, int64_t addr, int64_t size, int stream, int64_t tag);
#undef STEPSIM_HOT
  int64_t NewAddress(int64_t size);

  AllocatorOptions options_;
  AllocatorStats stats_;
  Pool small_, large_;
  std::vector<Block> blocks_;
  std::vector<Handle> spare_;  // deleted block slots
  std::vector<Expandable> expandables_;
  std::vector<TraceEntry> trace_;
  int64_t next_address_;
  int64_t events_ = 0;
};

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_CACHING_ALLOCATOR_H_
