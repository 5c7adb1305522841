#include "sim/caching_allocator.h"

#include <algorithm>

namespace stepsim::sim {
namespace {

// CUDACachingAllocator.cpp's constants.
constexpr int64_t kMinBlockSize = 512;       // every size is rounded to 512 B
constexpr int64_t kSmallSize = 1 << 20;      // the largest "small" request, 1 MiB
constexpr int64_t kSmallBuffer = 2 << 20;    // small requests share 2 MiB segments
constexpr int64_t kMinLargeAlloc = 10 << 20; // requests below 10 MiB get ...
constexpr int64_t kLargeBuffer = 20 << 20;   // ... a 20 MiB segment to split
constexpr int64_t kRoundLarge = 2 << 20;     // larger ones round up to 2 MiB
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
// Where invented addresses start (where CUDA's device addresses live), and
// how far they go: 2^49 B of segments handed out over a run.
constexpr int64_t kAddressBase = int64_t{0x7f} << 40;
constexpr int64_t kAddressLimit = kAddressBase + (int64_t{1} << 49);

int64_t RoundUp(int64_t n, int64_t step) { return (n + step - 1) / step * step; }

// roundup_power2_next_division: 1200 B with 4 divisions of [1024, 2048)
// rounds to 1280 B.
int64_t NextDivision(int64_t size, int64_t divisions) {
  if ((size & (size - 1)) == 0) return size;
  const int64_t floor = int64_t{1} << (63 - __builtin_clzll(static_cast<uint64_t>(size)));
  const int64_t step = floor >> (63 - __builtin_clzll(static_cast<uint64_t>(divisions)));
  if (step == 0) return floor << 1;
  const int64_t down = size & ~(step - 1);
  return down == size ? size : down + step;
}

// RoundSize and SegmentSize, inlined where every allocation calls them.
[[gnu::always_inline]] inline int64_t Rounded(int64_t bytes, int64_t divisions) {
  if (bytes < kMinBlockSize) return kMinBlockSize;
  if (divisions > 1 && bytes > kMinBlockSize * divisions) return NextDivision(bytes, divisions);
  return RoundUp(bytes, kMinBlockSize);
}

[[gnu::always_inline]] inline int64_t Segment(int64_t rounded) {
  if (rounded <= kSmallSize) return kSmallBuffer;
  if (rounded < kMinLargeAlloc) return kLargeBuffer;
  return RoundUp(rounded, kRoundLarge);
}

}  // namespace

int64_t RoundSize(int64_t bytes, int64_t divisions) { return Rounded(bytes, divisions); }

int64_t SegmentSize(int64_t rounded) { return Segment(rounded); }

const char* TraceActionName(TraceAction a) {
  switch (a) {
    case TraceAction::kAlloc: return "alloc";
    case TraceAction::kFreeRequested: return "free_requested";
    case TraceAction::kFreeCompleted: return "free_completed";
    case TraceAction::kSegmentAlloc: return "segment_alloc";
    case TraceAction::kSegmentFree: return "segment_free";
    case TraceAction::kSegmentMap: return "segment_map";
    case TraceAction::kSegmentUnmap: return "segment_unmap";
    case TraceAction::kOom: return "oom";
  }
  return "?";
}

CachingAllocator::CachingAllocator(AllocatorOptions options)
    : options_(options), next_address_(kAddressBase) {
  small_.small = true;
  if (options_.expandable_address_space <= 0) {
    const int64_t device = options_.capacity == std::numeric_limits<int64_t>::max()
                               ? int64_t{80} << 30
                               : options_.capacity;
    options_.expandable_address_space = device + device / 8;
  }
}

// --------------------------------------------------------------- blocks ----

CachingAllocator::FreeKey CachingAllocator::Key(int32_t stream, int64_t size, int64_t addr) {
  // Below the base: the smallest key of its (stream, size), for searches.
  const uint64_t offset = addr <= kAddressBase ? 0 : static_cast<uint64_t>(addr - kAddressBase);
  return FreeKey::Make(stream, size, offset);
}

inline CachingAllocator::Handle CachingAllocator::NewBlock(const Block& b) {
  if (!spare_.empty()) {
    const Handle h = spare_.back();
    spare_.pop_back();
    blocks_[h] = b;
    return h;
  }
  blocks_.push_back(b);  // b may be in blocks_: push_back copes
  return static_cast<Handle>(blocks_.size() - 1);
}

// The copy is made in its slot and changed there, not changed on the stack
// and stored whole.
inline CachingAllocator::Handle CachingAllocator::LinkBefore(Handle h, int64_t addr, int64_t size) {
  const Handle p = NewBlock(blocks_[h]);
  Block& b = blocks_[p];
  b.addr = addr;
  b.size = size;
  b.next = h;
  if (b.prev >= 0) blocks_[b.prev].next = p;
  blocks_[h].prev = p;
  return p;
}

CachingAllocator::Handle CachingAllocator::LinkAfter(Handle h, int64_t addr, int64_t size) {
  const Handle n = NewBlock(blocks_[h]);
  Block& b = blocks_[n];
  b.addr = addr;
  b.size = size;
  b.prev = h;
  if (b.next >= 0) blocks_[b.next].prev = n;
  blocks_[h].next = n;
  return n;
}

inline void CachingAllocator::DeleteBlock(Handle h) {
  blocks_[h].size = 0;
  blocks_[h].prev = blocks_[h].next = -1;
  spare_.push_back(h);
}

inline void CachingAllocator::InsertFree(Handle h) {
  const Block& b = blocks_[h];
  PoolFor(b).blocks.insert(h, Key(b.stream, b.size, b.addr));
}

inline void CachingAllocator::EraseFree(Handle h) { PoolFor(blocks_[h]).blocks.erase(h); }

inline void CachingAllocator::UpdateFree(Handle h) {
  const Block& b = blocks_[h];
  PoolFor(b).blocks.update(h, Key(b.stream, b.size, b.addr));
}

int64_t CachingAllocator::NewAddress(int64_t size) {
  const int64_t addr = next_address_;
  next_address_ += RoundUp(size, kRoundLarge);
  return addr;
}

inline void CachingAllocator::Record(TraceAction action, int64_t addr, int64_t size, int stream,
                              int64_t tag) {
  if (options_.record_trace) trace_.push_back({action, addr, size, stream, tag, events_});
}

// ------------------------------------------------------------ allocate ----

CachingAllocator::Handle CachingAllocator::Allocate(int64_t bytes, int stream, int64_t tag) {
  if (bytes == 0) {  // PyTorch hands out no memory for an empty tensor
    ++events_;
    return kNoBlock;
  }
  if (bytes < 0 || bytes > kMaxRequest) {  // no device has that much
    ++stats_.ooms;
    ++events_;
    return kOutOfMemory;
  }
  const int64_t size = Rounded(bytes, options_.roundup_power2_divisions);
  Pool& pool = size <= kSmallSize ? small_ : large_;
  const int64_t alloc_size = Segment(size);
  // malloc(): the cache first, then cudaMalloc, then cudaMalloc again after
  // freeing the oversize cached blocks, then after freeing every cached
  // segment; only then OOM.
  Handle h = FindFreeBlock(pool, stream, size);
  const bool cached = h >= 0;  // still in the pool's set
  if (h < 0) h = AllocSegment(pool, stream, size, alloc_size);
  if (h < 0 && ReleaseAvailableCachedBlocks(pool, stream, size)) {
    h = AllocSegment(pool, stream, size, alloc_size);
  }
  if (h < 0) {
    ReleaseCachedBlocks();
    ++stats_.retries;
    h = AllocSegment(pool, stream, size, alloc_size);
  }
  if (h < 0) {
    ++stats_.ooms;
    const int64_t free = options_.capacity - stats_.reserved;
    Record(TraceAction::kOom, free, size, stream, tag);
    ++events_;
    return kOutOfMemory;
  }
  // alloc_found_block(): the block leaves the cache; a worthwhile rest of
  // it stays behind as a free block right after it (a cached block's rest
  // keeps its place in the set).
  if (ShouldSplit(h, size)) {
    const Handle part = LinkBefore(h, blocks_[h].addr, size);
    blocks_[h].addr += size;
    blocks_[h].size -= size;
    if (cached) {
      UpdateFree(h);
    } else {
      InsertFree(h);
    }
    h = part;
  } else if (cached) {
    EraseFree(h);
  }
  Block& b = blocks_[h];
  b.allocated = true;
  b.requested = bytes;
  b.tag = tag;
  stats_.allocated += b.size;
  stats_.requested += bytes;
  Record(TraceAction::kAlloc, b.addr, bytes, stream, tag);
  ++events_;
  return h;
}

// get_free_block(): the smallest cached block of this stream that fits,
// lowest address first among equals. It stays in the set: the caller
// takes it out, or leaves the rest of it there.
inline CachingAllocator::Handle CachingAllocator::FindFreeBlock(Pool& pool, int stream,
                                                              int64_t size) {
  Handle h = pool.blocks.first_fit(stream, size);
  if (h < 0) return -1;
  auto unmapped_after = [&](Handle c) {
    return blocks_[c].next >= 0 && !blocks_[blocks_[c].next].mapped;
  };
  // A block followed by unmapped pages can grow: best fit compares what a
  // block can expand to. (Only such a block can lose to a larger one.)
  if (options_.expandable_segments && unmapped_after(h)) {
    auto expandable_size = [&](Handle c) {
      return blocks_[c].size + (unmapped_after(c) ? blocks_[blocks_[c].next].size : 0);
    };
    for (Handle next = pool.blocks.next(h);
         next >= 0 && blocks_[next].stream == stream && expandable_size(next) < expandable_size(h);
         next = pool.blocks.next(next)) {
      h = next;
    }
  }
  // An oversize block does not serve a request below max_split_size, and
  // serves a larger one only within max_non_split_rounding of its size.
  const int64_t found = blocks_[h].size;
  if (size < options_.max_split_size && found >= options_.max_split_size) return -1;
  if (size >= options_.max_split_size && found >= size + options_.max_non_split_rounding) {
    return -1;
  }
  return h;
}

// should_split(): small blocks keep a rest of 512 B or more; large blocks a
// rest of more than 1 MiB, and only below max_split_size. With expandable
// segments every rest of 512 B or more is kept.
inline bool CachingAllocator::ShouldSplit(Handle h, int64_t size) const {
  const Block& b = blocks_[h];
  const int64_t remaining = b.size - size;
  if (b.small || options_.expandable_segments) return remaining >= kMinBlockSize;
  return size < options_.max_split_size && remaining > kSmallSize;
}

// alloc_block(): one cudaMalloc of alloc_size, if the capacity allows.
CachingAllocator::Handle CachingAllocator::AllocSegment(Pool& pool, int stream, int64_t size,
                                                        int64_t alloc_size) {
  if (options_.expandable_segments) return TryAllocateExpandable(pool, stream, size);
  if (alloc_size > options_.capacity - stats_.reserved) return -1;
  if (alloc_size > kAddressLimit - next_address_) return -1;  // a run of 2^49 B of segments
  Block b;
  b.addr = NewAddress(alloc_size);
  b.size = alloc_size;
  b.stream = stream;
  b.small = pool.small;
  const Handle h = NewBlock(b);
  stats_.reserved += alloc_size;
  ++stats_.segments;
  ++stats_.device_allocs;
  Record(TraceAction::kSegmentAlloc, b.addr, alloc_size, stream, -1);
  return h;
}

// release_available_cached_blocks(): with max_split_size set, cudaFree the
// smallest oversize cached block of this stream that covers the request,
// else the largest ones until their sizes add up to it.
bool CachingAllocator::ReleaseAvailableCachedBlocks(Pool& pool, int stream, int64_t size) {
  if (options_.max_split_size == std::numeric_limits<int64_t>::max()) return false;
  if (options_.expandable_segments) return false;  // PyTorch frees only cudaMalloc'd segments
  const int64_t want = std::max(size, options_.max_split_size);
  auto whole = [&](Handle h) { return blocks_[h].prev < 0 && blocks_[h].next < 0; };
  const Handle found = pool.blocks.lower_bound(Key(stream, want, kMin));
  if (found >= 0 && blocks_[found].stream == stream) {
    if (!whole(found)) return false;
    ReleaseBlock(found);
    return true;
  }
  std::vector<Handle> release;
  int64_t released = 0;
  for (Handle h = found >= 0 ? pool.blocks.prev(found) : pool.blocks.last();
       h >= 0 && released < want && blocks_[h].size >= options_.max_split_size &&
       blocks_[h].stream == stream && whole(h);
       h = pool.blocks.prev(h)) {
    released += blocks_[h].size;
    release.push_back(h);
  }
  for (Handle h : release) ReleaseBlock(h);
  return released >= want;
}

// release_cached_blocks(): cudaFree every whole cached segment of every
// stream; with expandable segments unmap every free page.
void CachingAllocator::ReleaseCachedBlocks() {
  ReleasePool(large_);
  ReleasePool(small_);
}

void CachingAllocator::ReleasePool(Pool& pool) {
  std::vector<Handle> whole, to_unmap;
  for (Handle h = pool.blocks.first(); h >= 0; h = pool.blocks.next(h)) {
    const Block& b = blocks_[h];
    if (b.expandable >= 0) {
      to_unmap.push_back(h);
    } else if (b.prev < 0 && b.next < 0) {
      whole.push_back(h);
    }
  }
  for (Handle h : whole) ReleaseBlock(h);
  for (Handle h : to_unmap) {
    UnmapBlock(h);
    const Block& b = blocks_[h];
    if (!b.mapped && b.prev < 0 && b.next < 0) {  // the whole segment is unmapped
      pool.unmapped.erase(AddressKey{b.stream, b.addr, h});
      expandables_[b.expandable].live = false;
      --stats_.segments;
      DeleteBlock(h);
    }
  }
}

void CachingAllocator::ReleaseBlock(Handle h) {
  EraseFree(h);
  const Block& b = blocks_[h];
  stats_.reserved -= b.size;
  --stats_.segments;
  ++stats_.device_frees;
  Record(TraceAction::kSegmentFree, b.addr, b.size, b.stream, -1);
  DeleteBlock(h);
}

// ------------------------------------------------- expandable segments ----

// try_allocate_expandable_block(): map pages at the lowest address where
// free and unmapped space together fit the request.
CachingAllocator::Handle CachingAllocator::TryAllocateExpandable(Pool& pool, int stream,
                                                                 int64_t size) {
  Handle c = FindExpandable(pool, stream, size);
  if (c < 0) return -1;
  if (!blocks_[c].mapped && !MapBlock(c, std::min(blocks_[c].size, size))) return -1;
  while (blocks_[c].size < size) {
    const Handle next = blocks_[c].next;
    if (next < 0 || blocks_[next].mapped || blocks_[next].allocated) return -1;
    if (!MapBlock(next, std::min(size - blocks_[c].size, blocks_[next].size))) return -1;
    c = next;  // it absorbed c
  }
  EraseFree(c);
  return c;
}

CachingAllocator::Handle CachingAllocator::FindExpandable(Pool& pool, int stream, int64_t size) {
  auto allocatable = [&](Handle h) { return h >= 0 && !blocks_[h].allocated; };
  auto has_space = [&](Handle h) {
    int64_t bytes = 0;
    for (; bytes < size && allocatable(h); h = blocks_[h].next) bytes += blocks_[h].size;
    return bytes >= size;
  };
  for (auto it = pool.unmapped.lower_bound(AddressKey{stream, kMin, -1});
       it != pool.unmapped.end() && it->stream == stream; ++it) {
    Handle c = it->block;
    if (allocatable(blocks_[c].prev)) c = blocks_[c].prev;
    if (has_space(c)) return c;
  }
  Expandable e;
  e.page = pool.small ? kSmallBuffer : kLargeBuffer;
  e.pages = (options_.expandable_address_space + e.page - 1) / e.page;
  if (e.pages * e.page > kAddressLimit - next_address_) return -1;
  e.base = NewAddress(e.pages * e.page);
  expandables_.push_back(e);
  Block b;
  b.addr = e.base;
  b.size = e.pages * e.page;
  b.stream = stream;
  b.small = pool.small;
  b.mapped = false;
  b.expandable = static_cast<int32_t>(expandables_.size() - 1);
  const Handle h = NewBlock(b);
  pool.unmapped.insert(AddressKey{stream, b.addr, h});
  ++stats_.segments;
  return h;
}

// map_block(): back the first `size` bytes (rounded up to pages) of an
// unmapped range with memory; it joins free neighbours.
bool CachingAllocator::MapBlock(Handle h, int64_t size) {
  const int64_t page = expandables_[blocks_[h].expandable].page;
  const int64_t mapped = RoundUp(size, page);
  if (mapped > options_.capacity - stats_.reserved) return false;
  Pool& pool = PoolFor(blocks_[h]);
  pool.unmapped.erase(AddressKey{blocks_[h].stream, blocks_[h].addr, h});
  blocks_[h].mapped = true;
  const int64_t addr = blocks_[h].addr;
  if (mapped < blocks_[h].size) {
    const Handle r = LinkAfter(h, addr + mapped, blocks_[h].size - mapped);
    blocks_[r].mapped = false;
    blocks_[h].size = mapped;
    pool.unmapped.insert(AddressKey{blocks_[r].stream, blocks_[r].addr, r});
  }
  TryMerge(h, blocks_[h].prev);
  TryMerge(h, blocks_[h].next);
  InsertFree(h);
  stats_.reserved += mapped;
  ++stats_.device_allocs;
  Record(TraceAction::kSegmentMap, addr, mapped, blocks_[h].stream, -1);
  return true;
}

// unmap_block(): give back the whole pages inside a free block.
void CachingAllocator::UnmapBlock(Handle h) {
  const Expandable& e = expandables_[blocks_[h].expandable];
  const int64_t first = (blocks_[h].addr - e.base + e.page - 1) / e.page;
  const int64_t last = (blocks_[h].addr + blocks_[h].size - e.base) / e.page;
  if (first >= last) return;
  EraseFree(h);
  const int64_t start = e.base + first * e.page, length = (last - first) * e.page;
  const int64_t before = start - blocks_[h].addr;
  const int64_t after = blocks_[h].size - before - length;
  if (before > 0) InsertFree(LinkBefore(h, blocks_[h].addr, before));
  if (after > 0) InsertFree(LinkAfter(h, start + length, after));
  blocks_[h].addr = start;
  blocks_[h].size = length;
  blocks_[h].mapped = false;
  TryMerge(h, blocks_[h].prev);
  TryMerge(h, blocks_[h].next);
  PoolFor(blocks_[h]).unmapped.insert(AddressKey{blocks_[h].stream, blocks_[h].addr, h});
  stats_.reserved -= length;
  ++stats_.device_frees;
  Record(TraceAction::kSegmentUnmap, start, length, blocks_[h].stream, -1);
}

// ----------------------------------------------------------------- free ----

void CachingAllocator::Free(Handle h) {
  if (h != kNoBlock) FreeBlock(h);
  ++events_;
}

// free() and free_block(): back into the cache, merged with free
// neighbours of the same segment.
void CachingAllocator::FreeBlock(Handle h) {
  Block& b = blocks_[h];
  b.allocated = false;
  stats_.allocated -= b.size;
  stats_.requested -= b.requested;
  Record(TraceAction::kFreeRequested, b.addr, b.requested, b.stream, b.tag);
  Record(TraceAction::kFreeCompleted, b.addr, b.requested, b.stream, b.tag);
  b.requested = 0;
  b.tag = -1;
  // A free neighbour keeps its place in the cache and grows over the
  // block (and over the other free neighbour): the same blocks as merging
  // both into this one, with one update of the set instead of a removal
  // per neighbour and an insertion.
  const Handle prev = b.prev, next = b.next;
  const bool merge_prev = Mergeable(h, prev), merge_next = Mergeable(h, next);
  if (!merge_prev && !merge_next) return InsertFree(h);
  const Handle keep = merge_prev ? prev : next;
  if (merge_prev && merge_next) EraseFree(next);
  Absorb(keep, h);
  if (merge_prev && merge_next) Absorb(keep, next);
  UpdateFree(keep);
}

// try_merge_blocks(): `src` (a free neighbour in the same mapping state)
// joins `dst`, which must be outside the pool's sets.
int64_t CachingAllocator::TryMerge(Handle dst, Handle src) {
  if (!Mergeable(dst, src)) return 0;
  Block& s = blocks_[src];
  Pool& pool = PoolFor(s);
  if (s.mapped) {
    EraseFree(src);
  } else {
    pool.unmapped.erase(AddressKey{s.stream, s.addr, src});
  }
  return Absorb(dst, src);
}

// `src`, a neighbour of `dst` outside the pool's sets, joins it.
inline int64_t CachingAllocator::Absorb(Handle dst, Handle src) {
  Block& s = blocks_[src];
  Block& d = blocks_[dst];
  if (d.prev == src) {
    d.addr = s.addr;
    d.prev = s.prev;
    if (d.prev >= 0) blocks_[d.prev].next = dst;
  } else {
    d.next = s.next;
    if (d.next >= 0) blocks_[d.next].prev = dst;
  }
  const int64_t subsumed = s.size;
  d.size += subsumed;
  DeleteBlock(src);
  return subsumed;
}

// ---------------------------------------------------------------- state ----

int64_t CachingAllocator::LargestFreeBlock() const {
  int64_t largest = 0;
  for (const Pool* pool : {&small_, &large_}) {
    // The largest block of each stream ends that stream's run in the set.
    for (Handle h = pool->blocks.last(); h >= 0;) {
      const int stream = blocks_[h].stream;
      largest = std::max(largest, blocks_[h].size);
      h = stream == 0 ? -1 : pool->blocks.last_up_to(stream - 1);
    }
  }
  return largest;
}

std::vector<SegmentState> CachingAllocator::Snapshot() const {
  std::vector<SegmentState> out;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& head = blocks_[i];
    if (head.size == 0 || !head.mapped) continue;  // deleted or unmapped
    if (head.prev >= 0 && blocks_[head.prev].mapped) continue;  // not a segment's first
    SegmentState s;
    s.address = head.addr;
    s.stream = head.stream;
    s.large = !head.small;
    s.expandable = head.expandable >= 0;
    for (Handle h = static_cast<Handle>(i); h >= 0 && blocks_[h].mapped; h = blocks_[h].next) {
      const Block& b = blocks_[h];
      s.blocks.push_back({b.addr, b.size, b.requested, b.allocated, b.tag});
      s.total_size += b.size;
      if (b.allocated) {
        s.allocated_size += b.size;
        s.requested_size += b.requested;
      }
    }
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const SegmentState& a, const SegmentState& b) { return a.address < b.address; });
  return out;
}

}  // namespace stepsim::sim
