// The caching allocator against sizes derived by hand from
// CUDACachingAllocator.cpp's rules (sim/caching_allocator.h): 512 B
// rounding; small pool (<= 1 MiB) in 2 MiB segments; large requests below
// 10 MiB in 20 MiB segments, larger ones rounded up to 2 MiB; small blocks
// split when >= 512 B would remain, large when > 1 MiB would remain.
#include "sim/caching_allocator.h"

#include <gtest/gtest.h>

namespace stepsim::sim {
namespace {

constexpr int64_t kKiB = 1 << 10, kMiB = 1 << 20;
using Handle = CachingAllocator::Handle;

// Reserved bytes equal the sum of the segments, which cover their blocks.
void ExpectConsistent(const CachingAllocator& a) {
  int64_t reserved = 0, allocated = 0;
  for (const SegmentState& s : a.Snapshot()) {
    int64_t sum = 0;
    for (const BlockState& b : s.blocks) {
      sum += b.size;
      if (b.allocated) allocated += b.size;
    }
    EXPECT_EQ(sum, s.total_size);
    reserved += s.total_size;
  }
  EXPECT_EQ(reserved, a.stats().reserved);
  EXPECT_EQ(allocated, a.stats().allocated);
}

TEST(CachingAllocatorTest, RoundingFollowsPyTorch) {
  EXPECT_EQ(RoundSize(1, 0), 512);
  EXPECT_EQ(RoundSize(512, 0), 512);
  EXPECT_EQ(RoundSize(513, 0), 1024);
  // 4 divisions: sizes above 512 * 4 = 2,048 B round to quarter steps
  // between powers of two. 1,200 B stays on 512 B rounding (1,536);
  // 5 MiB + 1 lies in [4, 8) MiB, steps of 1 MiB: 6 MiB.
  EXPECT_EQ(RoundSize(1200, 4), 1536);
  EXPECT_EQ(RoundSize(5 * kMiB + 1, 4), 6 * kMiB);
  EXPECT_EQ(RoundSize(4 * kMiB, 4), 4 * kMiB);  // a power of two stays
  EXPECT_EQ(SegmentSize(512), 2 * kMiB);
  EXPECT_EQ(SegmentSize(kMiB), 2 * kMiB);
  EXPECT_EQ(SegmentSize(kMiB + 512), 20 * kMiB);
  EXPECT_EQ(SegmentSize(10 * kMiB - 512), 20 * kMiB);
  EXPECT_EQ(SegmentSize(10 * kMiB), 10 * kMiB);
  EXPECT_EQ(SegmentSize(11 * kMiB + 512), 12 * kMiB);
}

// 1 B rounds to 512 B, a small request: one 2 MiB segment.
TEST(CachingAllocatorTest, OneByteReservesTwoMebibytes) {
  CachingAllocator a({});
  ASSERT_GE(a.Allocate(1, 0), 0);
  EXPECT_EQ(a.stats().reserved, 2 * kMiB);
  EXPECT_EQ(a.stats().allocated, 512);
  EXPECT_EQ(a.stats().requested, 1);
  EXPECT_EQ(a.stats().device_allocs, 1);
  // A second small request shares the segment: 2 MiB - 512 B remain free.
  ASSERT_GE(a.Allocate(100 * kKiB, 0), 0);
  EXPECT_EQ(a.stats().reserved, 2 * kMiB);
  EXPECT_EQ(a.LargestFreeBlock(), 2 * kMiB - 512 - 100 * kKiB);
  ExpectConsistent(a);
}

// 1 MiB + 1 B rounds to 1 MiB + 512 B: large, below 10 MiB, so a 20 MiB
// segment, split (20 - 1 MiB - 512 B remain, more than 1 MiB).
TEST(CachingAllocatorTest, JustOverOneMebibyteReservesTwentyMebibytes) {
  CachingAllocator a({});
  ASSERT_GE(a.Allocate(kMiB + 1, 0), 0);
  EXPECT_EQ(a.stats().reserved, 20 * kMiB);
  EXPECT_EQ(a.stats().allocated, kMiB + 512);
  EXPECT_EQ(a.LargestFreeBlock(), 20 * kMiB - kMiB - 512);
  ExpectConsistent(a);
}

// 10 MiB is not below 10 MiB: a segment of exactly its size, nothing left.
TEST(CachingAllocatorTest, TenMebibytesReserveTenMebibytes) {
  CachingAllocator a({});
  ASSERT_GE(a.Allocate(10 * kMiB, 0), 0);
  EXPECT_EQ(a.stats().reserved, 10 * kMiB);
  EXPECT_EQ(a.LargestFreeBlock(), 0);
}

// Two 12 MiB segments; the first is freed, leaving a 12 MiB hole that a
// 14 MiB request cannot use: a third segment of 14 MiB, 38 MiB reserved.
TEST(CachingAllocatorTest, AHoleTooSmallForcesANewSegment) {
  CachingAllocator a({});
  const Handle x = a.Allocate(12 * kMiB, 0);
  ASSERT_GE(a.Allocate(12 * kMiB, 0), 0);
  a.Free(x);
  EXPECT_EQ(a.stats().reserved, 24 * kMiB);
  EXPECT_EQ(a.LargestFreeBlock(), 12 * kMiB);
  ASSERT_GE(a.Allocate(14 * kMiB, 0), 0);
  EXPECT_EQ(a.stats().reserved, 38 * kMiB);
  EXPECT_EQ(a.stats().device_allocs, 3);
  // An 11 MiB request fits the hole: best fit takes it, no cudaMalloc.
  ASSERT_GE(a.Allocate(11 * kMiB, 0), 0);
  EXPECT_EQ(a.stats().device_allocs, 3);
  ExpectConsistent(a);
}

// A 9 MiB request splits a 20 MiB segment; freed, the pieces merge back to
// one 20 MiB block. 19 MiB from it would leave exactly 1 MiB: not split, the
// request holds all 20 MiB. 19 MiB - 512 B would leave 1 MiB + 512 B: split.
TEST(CachingAllocatorTest, ARemainderOfOneMebibyteOrLessIsNotSplitOff) {
  CachingAllocator a({});
  const Handle x = a.Allocate(9 * kMiB, 0);
  EXPECT_EQ(a.LargestFreeBlock(), 11 * kMiB);
  a.Free(x);
  EXPECT_EQ(a.LargestFreeBlock(), 20 * kMiB);  // merged
  const Handle y = a.Allocate(19 * kMiB, 0);
  EXPECT_EQ(a.stats().allocated, 20 * kMiB);
  EXPECT_EQ(a.LargestFreeBlock(), 0);
  a.Free(y);
  ASSERT_GE(a.Allocate(19 * kMiB - 512, 0), 0);
  EXPECT_EQ(a.stats().allocated, 19 * kMiB - 512);
  EXPECT_EQ(a.LargestFreeBlock(), kMiB + 512);
  EXPECT_EQ(a.stats().reserved, 20 * kMiB);
  ExpectConsistent(a);
}

// A block freed on stream 0 is not reused on stream 1: a second 2 MiB
// segment; stream 0 reuses its own.
TEST(CachingAllocatorTest, StreamsDoNotShareBlocks) {
  CachingAllocator a({});
  a.Free(a.Allocate(kKiB, 0));
  ASSERT_GE(a.Allocate(kKiB, 1), 0);
  EXPECT_EQ(a.stats().reserved, 4 * kMiB);
  ASSERT_GE(a.Allocate(kKiB, 0), 0);
  EXPECT_EQ(a.stats().reserved, 4 * kMiB);
  EXPECT_EQ(a.stats().device_allocs, 2);
  const auto segments = a.Snapshot();
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_NE(segments[0].stream, segments[1].stream);
}

// Best fit: of free blocks of 6 MiB and 4 MiB (in separate segments), a
// 3 MiB request takes the 4 MiB one.
TEST(CachingAllocatorTest, BestFitTakesTheSmallestBlockThatFits) {
  CachingAllocator a({});
  a.Free(a.Allocate(12 * kMiB, 0));  // a cached 12 MiB segment
  a.Free(a.Allocate(14 * kMiB, 0));  // and a 14 MiB one
  ASSERT_GE(a.Allocate(7 * kMiB, 0), 0);   // the smallest that fits: 12, 5 left
  ASSERT_GE(a.Allocate(10 * kMiB, 0), 0);  // from the 14, 4 left
  // Free blocks: 5 MiB and 4 MiB. 3 MiB goes to the 4 MiB block, leaving 1 MiB
  // (not split), so the 5 MiB block stays the largest.
  ASSERT_GE(a.Allocate(3 * kMiB, 0), 0);
  EXPECT_EQ(a.LargestFreeBlock(), 5 * kMiB);
  EXPECT_EQ(a.stats().device_allocs, 2);
  ExpectConsistent(a);
}

// With capacity 40 MiB: a cached 20 MiB segment of stream 0 is freed when
// stream 1 needs 30 MiB, and the cudaMalloc retried.
TEST(CachingAllocatorTest, FreesTheCacheAndRetriesBeforeAnOom) {
  AllocatorOptions o;
  o.capacity = 40 * kMiB;
  CachingAllocator a(o);
  a.Free(a.Allocate(20 * kMiB, 0));
  ASSERT_GE(a.Allocate(30 * kMiB, 1), 0);
  EXPECT_EQ(a.stats().reserved, 30 * kMiB);
  EXPECT_EQ(a.stats().retries, 1);
  EXPECT_EQ(a.stats().device_frees, 1);
  // 30 MiB live: 20 MiB more cannot fit even with an empty cache.
  EXPECT_EQ(a.Allocate(20 * kMiB, 0), CachingAllocator::kOutOfMemory);
  EXPECT_EQ(a.stats().ooms, 1);
  EXPECT_EQ(a.stats().reserved, 30 * kMiB);
  // Lifted, the same request is served.
  a.LiftCapacity();
  ASSERT_GE(a.Allocate(20 * kMiB, 0), 0);
  EXPECT_EQ(a.stats().reserved, 50 * kMiB);
}

// max_split_size 32 MiB: a cached 40 MiB block is oversize. A 10 MiB or
// 30 MiB request may not use it (new segments); a 36 MiB one may (within
// 20 MiB of its size) and takes it whole, unsplit.
TEST(CachingAllocatorTest, OversizeBlocksServeOnlyRequestsCloseToTheirSize) {
  AllocatorOptions o;
  o.max_split_size = 32 * kMiB;
  CachingAllocator a(o);
  a.Free(a.Allocate(40 * kMiB, 0));
  const Handle ten = a.Allocate(10 * kMiB, 0);
  EXPECT_EQ(a.stats().reserved, 50 * kMiB);
  const Handle big = a.Allocate(36 * kMiB, 0);
  EXPECT_EQ(a.stats().reserved, 50 * kMiB);
  EXPECT_EQ(a.stats().allocated, 10 * kMiB + 40 * kMiB);
  a.Free(big);
  a.Free(ten);
  // A 16 MiB request (< 20 MiB from 40, but below max_split_size) is not
  // served by the oversize block either.
  ASSERT_GE(a.Allocate(16 * kMiB, 0), 0);
  EXPECT_EQ(a.stats().reserved, 66 * kMiB);  // 40 + 10 + 16
  ExpectConsistent(a);
}

// Without expandable segments 30 MiB and then 15 MiB take segments of 30
// and 16 MiB (46 MiB). With them the large pool maps 20 MiB pages: 30 MiB
// maps 2 pages (40 MiB, 10 MiB left free), then 15 MiB needs 5 MiB more:
// one page, 60 MiB reserved in two mappings.
TEST(CachingAllocatorTest, ExpandableSegmentsGrowInPages) {
  CachingAllocator plain({});
  ASSERT_GE(plain.Allocate(30 * kMiB, 0), 0);
  ASSERT_GE(plain.Allocate(15 * kMiB, 0), 0);
  EXPECT_EQ(plain.stats().reserved, 46 * kMiB);

  AllocatorOptions o;
  o.expandable_segments = true;
  CachingAllocator a(o);
  const Handle x = a.Allocate(30 * kMiB, 0);
  ASSERT_GE(x, 0);
  EXPECT_EQ(a.stats().reserved, 40 * kMiB);
  EXPECT_EQ(a.LargestFreeBlock(), 10 * kMiB);
  ASSERT_GE(a.Allocate(15 * kMiB, 0), 0);
  EXPECT_EQ(a.stats().reserved, 60 * kMiB);
  EXPECT_EQ(a.stats().device_allocs, 2);
  EXPECT_EQ(a.LargestFreeBlock(), 15 * kMiB);
  // One contiguous mapped range: a single segment in the snapshot.
  EXPECT_EQ(a.Snapshot().size(), 1u);
  ExpectConsistent(a);
  a.Free(x);  // merges with nothing: its neighbour is allocated
  EXPECT_EQ(a.LargestFreeBlock(), 30 * kMiB);
}

// With expandable segments, an OOM unmaps free pages and retries: capacity
// 60 MiB, 40 MiB mapped for a freed 30 MiB block on stream 0; stream 1's
// 30 MiB (40 MiB of pages) fits only after those pages are unmapped.
TEST(CachingAllocatorTest, ExpandableSegmentsUnmapFreePagesBeforeAnOom) {
  AllocatorOptions o;
  o.expandable_segments = true;
  o.capacity = 60 * kMiB;
  CachingAllocator a(o);
  a.Free(a.Allocate(30 * kMiB, 0));
  EXPECT_EQ(a.stats().reserved, 40 * kMiB);
  ASSERT_GE(a.Allocate(30 * kMiB, 1), 0);
  EXPECT_EQ(a.stats().reserved, 40 * kMiB);
  EXPECT_EQ(a.stats().device_frees, 1);  // one unmapping
  ExpectConsistent(a);
}

TEST(CachingAllocatorTest, ZeroBytesHoldNothingAndTheTraceRecordsEveryEvent) {
  AllocatorOptions o;
  o.record_trace = true;
  CachingAllocator a(o);
  const Handle none = a.Allocate(0, 0);
  EXPECT_EQ(none, CachingAllocator::kNoBlock);
  a.Free(none);
  const Handle x = a.Allocate(1000, 2, 7);
  a.Free(x);
  EXPECT_EQ(a.stats().reserved, 2 * kMiB);
  ASSERT_EQ(a.trace().size(), 4u);  // segment_alloc, alloc, free_requested, free_completed
  EXPECT_EQ(a.trace()[0].action, TraceAction::kSegmentAlloc);
  EXPECT_EQ(a.trace()[0].size, 2 * kMiB);
  EXPECT_EQ(a.trace()[1].action, TraceAction::kAlloc);
  EXPECT_EQ(a.trace()[1].size, 1000);
  EXPECT_EQ(a.trace()[1].tag, 7);
  EXPECT_EQ(a.trace()[1].stream, 2);
  EXPECT_EQ(a.trace()[1].event, 2);  // the two 0-byte calls came first
  EXPECT_EQ(a.trace()[3].action, TraceAction::kFreeCompleted);
  EXPECT_EQ(a.stats().requested, 0);
}

}  // namespace
}  // namespace stepsim::sim
