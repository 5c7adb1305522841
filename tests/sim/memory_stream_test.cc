// The tensor stream fed to the allocator matches the ledger event by event,
// on small simulated scenarios. Each test runs in its own process
// (gtest_discover_tests), as SimGrid allows one engine per process.
#include "sim/memory_stream.h"

#include <gtest/gtest.h>

#include <set>

#include "sim/cost_model.h"
#include "sim/schedules/builtin.h"
#include "sim/step_profile.h"
#include "tests/test_util.h"

namespace stepsim::sim {
namespace {

using testing::LoadScenario;

SimResult Simulated(const graph::Config& c) {
  StatusOr<Schedule> schedule = BuildSchedule(c);
  EXPECT_TRUE(schedule.ok()) << schedule.status().message();
  StatusOr<SimResult> r = Simulate(c, *schedule, SimOptions{});
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(*r) : SimResult{};
}

using Curve = std::vector<std::pair<double, int64_t>>;

// Consecutive points with the same total say nothing new: keep changes.
Curve Changes(const Curve& points) {
  Curve out;
  for (const auto& p : points) {
    if (out.empty() || out.back().second != p.second) out.push_back(p);
  }
  return out;
}

// At every instant the allocator's live (requested) bytes are the ledger's.
void ExpectStreamMatchesLedger(const graph::Config& c) {
  const SimResult r = Simulated(c);
  ASSERT_FALSE(r.ranks.empty());
  for (const RankRun& run : r.ranks) {
    Curve ledger = {{0.0, Total(run.ledger.initial())}};
    run.ledger.Replay([&](double t, const Bytes& live) { ledger.push_back({t, Total(live)}); });
    Curve stream = {{0.0, Total(run.ledger.initial())}};
    MemoryStreamOptions options;
    options.on_change = [&](double t, int64_t live) { stream.push_back({t, live}); };
    StatusOr<AllocatorRun> a = ReplayAllocator(AllocatorOptionsFor(c), run, options);
    ASSERT_TRUE(a.ok()) << a.status().message();
    EXPECT_EQ(Changes(stream), Changes(ledger)) << "rank " << run.rank;
    EXPECT_EQ(a->end.requested, Total(run.memory.end)) << "rank " << run.rank;
    // Reserved covers live bytes; the curve starts at time 0 and the peak
    // is on it.
    EXPECT_GE(a->reserved_peak, run.memory.peak.total);
    ASSERT_FALSE(a->reserved.empty());
    EXPECT_EQ(a->reserved.front().time, 0);
    int64_t highest = 0;
    for (const ReservedPoint& p : a->reserved) highest = std::max(highest, p.bytes);
    EXPECT_EQ(highest, a->reserved_peak);
  }
}

TEST(MemoryStreamTest, OneFOneBMatchesTheLedger) {
  ExpectStreamMatchesLedger(LoadScenario("pp4_tiny.textproto"));
}

// ZeRO-3 phases hold gathered weights beyond their ops' tensors: over DP 2,
// two layers a stage, a stage's first op gathers its layer and prefetches
// the next, so one phase makes two allocations.
TEST(MemoryStreamTest, ZeroThreeGatheredWeightsMatchTheLedger) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto", {"zero.stage=3", "parallel.dp=2"});
  StatusOr<std::vector<StageProfile>> profiles = BuildStageProfiles(c, CostModel(c));
  ASSERT_TRUE(profiles.ok());
  int64_t prefetching = 0;
  for (const StageProfile& p : *profiles) {
    for (const Phase& ph : p.forward.phases) {
      prefetching += ph.gathered_alloc[0] > 0 && ph.gathered_alloc[1] > 0;
    }
  }
  EXPECT_GT(prefetching, 0);
  ExpectStreamMatchesLedger(c);  // one simulation: SimGrid runs one engine per process
}

TEST(MemoryStreamTest, ZeroBubbleAndRecomputeMatchTheLedger) {
  ExpectStreamMatchesLedger(LoadScenario(
      "pp4_tiny.textproto", {"schedule.kind=ZB_H2", "recompute.policy=SELECTIVE",
                             "recompute.modules=core_attn,moe_act"}));
}

TEST(MemoryStreamTest, DualPipeVMatchesTheLedger) {
  ExpectStreamMatchesLedger(LoadScenario(
      "pp4_tiny.textproto", {"schedule.kind=DUALPIPE_V", "parallel.layout=Et|t|t|t|t|t|t|tL"}));
}

TEST(MemoryStreamTest, ExpandableSegmentsMatchTheLedger) {
  ExpectStreamMatchesLedger(
      LoadScenario("pp4_tiny.textproto", {"allocator.expandable_segments=true"}));
}

// Every kind of buffer lands on its stream; the snapshot at the peak holds
// what reserved and live bytes were then.
TEST(MemoryStreamTest, StreamsAndTheSnapshotAtThePeak) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto");
  const SimResult r = Simulated(c);
  StatusOr<std::vector<AllocatorRun>> runs = ReplayAllocators(c, r, 1);
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  const AllocatorRun& a = (*runs)[1];
  std::set<int> streams;
  for (const TraceEntry& e : a.trace) streams.insert(e.stream);
  // Rank 1 computes (0), sends and receives (1), dispatches to experts (2),
  // and holds the workspace (3).
  EXPECT_EQ(streams, (std::set<int>{0, 1, 2, 3}));
  int64_t reserved = 0, requested = 0;
  for (const SegmentState& s : a.segments_at_peak) {
    reserved += s.total_size;
    requested += s.requested_size;
  }
  EXPECT_EQ(reserved, a.reserved_peak);
  EXPECT_EQ(requested, a.live_at_peak);
  // The trace stops at the peak's event, and every tag has a label.
  ASSERT_FALSE(a.trace.empty());
  EXPECT_EQ(a.trace.back().event, a.peak_event);
  for (const TraceEntry& e : a.trace) {
    EXPECT_LT(e.tag, static_cast<int64_t>(a.labels.size()));
    EXPECT_LT(e.event, static_cast<int64_t>(a.event_times.size()));
  }
  // Without a snapshot nothing is kept.
  EXPECT_TRUE((*runs)[0].trace.empty());
  EXPECT_TRUE((*runs)[0].segments_at_peak.empty());
}

// Ranks replay on several threads; each result lands in its rank's place,
// the same as on one thread.
TEST(MemoryStreamTest, ThreadsDoNotChangeTheReplay) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto");
  const SimResult r = Simulated(c);
  StatusOr<std::vector<AllocatorRun>> one = ReplayAllocators(c, r, 2, 1);
  StatusOr<std::vector<AllocatorRun>> many = ReplayAllocators(c, r, 2, 3);
  ASSERT_TRUE(one.ok() && many.ok());
  ASSERT_EQ(one->size(), r.ranks.size());
  ASSERT_EQ(many->size(), one->size());
  for (size_t i = 0; i < one->size(); ++i) {
    const AllocatorRun& a = (*one)[i];
    const AllocatorRun& b = (*many)[i];
    EXPECT_EQ(a.rank, static_cast<int64_t>(i));
    EXPECT_EQ(b.rank, a.rank);
    EXPECT_EQ(b.reserved_peak, a.reserved_peak);
    EXPECT_EQ(b.reserved_peak_time, a.reserved_peak_time);
    EXPECT_EQ(b.end.device_allocs, a.end.device_allocs);
    EXPECT_EQ(b.reserved.size(), a.reserved.size());
    EXPECT_EQ(b.trace.size(), a.trace.size());
    EXPECT_EQ(b.segments_at_peak.size(), a.segments_at_peak.size());
  }
  EXPECT_FALSE((*many)[2].trace.empty());  // the snapshot rank
}

// With a capacity below a rank's peak of live bytes some request cannot be
// served however the cache is freed: it is named, with the largest free
// block, and the replay goes on past the capacity.
TEST(MemoryStreamTest, AnOomNamesTheRequestAndTheLargestFreeBlock) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto");
  const SimResult r = Simulated(c);
  const RankRun& run = r.ranks[1];
  AllocatorOptions options = AllocatorOptionsFor(c);
  StatusOr<AllocatorRun> free_run = ReplayAllocator(options, run);
  ASSERT_TRUE(free_run.ok()) << free_run.status().message();
  EXPECT_FALSE(free_run->oom);
  options.capacity = run.memory.peak.total - 1;
  StatusOr<AllocatorRun> tight = ReplayAllocator(options, run);
  ASSERT_TRUE(tight.ok()) << tight.status().message();
  EXPECT_TRUE(tight->oom);
  EXPECT_FALSE(tight->oom_op.empty());
  EXPECT_GT(tight->oom_request, 0);
  EXPECT_LT(tight->oom_largest_free, tight->oom_request);
  EXPECT_GE(tight->reserved_peak, run.memory.peak.total);
  EXPECT_EQ(tight->end.requested, free_run->end.requested);
}

TEST(MemoryStreamTest, KindNoneReplaysNothing) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto", {"allocator.kind=NONE"});
  const SimResult r = Simulated(c);
  StatusOr<std::vector<AllocatorRun>> runs = ReplayAllocators(c, r);
  ASSERT_TRUE(runs.ok());
  EXPECT_TRUE(runs->empty());
}

}  // namespace
}  // namespace stepsim::sim
