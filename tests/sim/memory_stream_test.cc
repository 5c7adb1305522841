// The tensor stream fed to the allocator matches the ledger event by event,
// on small simulated scenarios. Each test runs in its own process
// (gtest_discover_tests), as SimGrid allows one engine per process.
#include "sim/memory_stream.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <tuple>

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

// ZeRO-2 backwards hold each layer's unsharded gradients, on the DP
// stream, until their reduce-scatter completes: allocations and frees of no
// DAG tensor, under the 1F1B fused backward and zero-bubble's W alike.
TEST(MemoryStreamTest, ZeroTwoUnshardedGradientsMatchTheLedger) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto", {"zero.stage=2", "parallel.dp=2"});
  StatusOr<std::vector<StageProfile>> profiles = BuildStageProfiles(c, CostModel(c));
  ASSERT_TRUE(profiles.ok());
  int64_t allocated = 0, freed = 0;
  for (const StageProfile& p : *profiles) {
    for (const StepProfile* s : {&p.backward_weight, &p.weight}) {
      for (const Phase& ph : s->phases) allocated += ph.reduced_alloc, freed += ph.reduced_free;
    }
  }
  EXPECT_GT(allocated, 0);
  EXPECT_EQ(freed, allocated);
  ExpectStreamMatchesLedger(c);
}

TEST(MemoryStreamTest, ZeroTwoUnderZeroBubbleMatchesTheLedger) {
  ExpectStreamMatchesLedger(LoadScenario(
      "pp4_tiny.textproto", {"zero.stage=2", "parallel.dp=2", "schedule.kind=ZB_H1"}));
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

// The same replay: peak, end state, OOM and reserved curve.
void ExpectSameRun(const AllocatorRun& a, const AllocatorRun& b) {
  auto peak = [](const AllocatorRun& r) {
    return std::tie(r.rank, r.reserved_peak, r.reserved_peak_time, r.live_at_peak,
                    r.largest_free_at_peak, r.peak_event);
  };
  auto end = [](const AllocatorRun& r) {
    return std::tie(r.end.reserved, r.end.allocated, r.end.requested, r.end.device_allocs,
                    r.end.device_frees, r.end.retries, r.end.ooms);
  };
  auto oom = [](const AllocatorRun& r) {
    return std::tie(r.oom, r.oom_op, r.oom_request, r.oom_largest_free, r.oom_step, r.oom_delta);
  };
  EXPECT_EQ(peak(a), peak(b));
  EXPECT_EQ(end(a), end(b));
  EXPECT_EQ(oom(a), oom(b));
  ASSERT_EQ(a.reserved.size(), b.reserved.size());
  for (size_t i = 0; i < a.reserved.size(); ++i) {
    EXPECT_EQ(std::tie(a.reserved[i].time, a.reserved[i].bytes, a.reserved[i].change),
              std::tie(b.reserved[i].time, b.reserved[i].bytes, b.reserved[i].change));
  }
}

// ReplayAllocators gives every rank of `r` what replaying it alone gives;
// `check` sees each rank's own replay. Returns ReplayAllocators' runs.
std::vector<AllocatorRun> ExpectEveryRankAsAlone(
    const graph::Config& c, const SimResult& r,
    const std::function<void(size_t, const AllocatorRun&)>& check = nullptr) {
  StatusOr<std::vector<AllocatorRun>> runs = ReplayAllocators(c, r);
  EXPECT_TRUE(runs.ok()) << runs.status().message();
  if (!runs.ok()) return {};
  EXPECT_EQ(runs->size(), r.ranks.size());
  for (size_t i = 0; i < std::min(runs->size(), r.ranks.size()); ++i) {
    StatusOr<AllocatorRun> alone = ReplayAllocator(AllocatorOptionsFor(c), r.ranks[i]);
    EXPECT_TRUE(alone.ok()) << alone.status().message();
    if (!alone.ok()) continue;
    SCOPED_TRACE("rank " + std::to_string(i));
    if (check) check(i, *alone);
    ExpectSameRun((*runs)[i], *alone);
  }
  return std::move(*runs);
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
    ExpectSameRun(a, b);
    EXPECT_EQ(b.trace.size(), a.trace.size());
    EXPECT_EQ(b.segments_at_peak.size(), a.segments_at_peak.size());
  }
  EXPECT_FALSE((*many)[2].trace.empty());  // the snapshot rank
}

// DualPipe's rank r runs stage r of one direction's micro-batches at the
// times rank PP-1-r runs it for the other direction's: the two ledgers
// replay alike (other micro-batch numbers and buffer names, one to one),
// and ReplayAllocators gives each rank what replaying it alone gives.
TEST(MemoryStreamTest, DualPipeMirrorRanksReplayAlike) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto", {"schedule.kind=DUALPIPE"});
  const SimResult r = Simulated(c);
  ASSERT_EQ(r.ranks.size(), 4u);
  const Ledger& zero = r.ranks[0].ledger;
  const Ledger& three = r.ranks[3].ledger;
  EXPECT_TRUE(ReplaysAlike(zero, three));
  EXPECT_TRUE(ReplaysAlike(three, zero));
  EXPECT_FALSE(ReplaysAlike(zero, r.ranks[1].ledger));  // other stages
  // The mirror has other micro-batch numbers and buffer names.
  bool renamed = false;
  for (size_t i = 0; i < zero.deltas().size(); ++i) {
    renamed = renamed || zero.deltas()[i].what != three.deltas()[i].what;
  }
  EXPECT_TRUE(renamed);
  const std::vector<AllocatorRun> runs = ExpectEveryRankAsAlone(c, r);
  ASSERT_EQ(runs.size(), 4u);
  // Out of memory in the step (room for the static state and half of what
  // the step adds at its peak), rank 3 still shares rank 0's replay, but
  // names its own op: its own micro-batch, at the same step of its ledger.
  graph::Config tight = c;
  const int64_t step_peak = r.ranks[0].memory.peak.total - Total(zero.initial());
  tight.hardware.hbm_bytes =
      tight.hardware.runtime_overhead_bytes + runs[0].reserved.front().bytes + step_peak / 2;
  const std::vector<AllocatorRun> ooms =
      ExpectEveryRankAsAlone(tight, r, [](size_t i, const AllocatorRun& alone) {
        if (i != 0 && i != 3) return;
        EXPECT_TRUE(alone.oom);
        EXPECT_GE(alone.oom_step, 0);  // a step's tensor, not a buffer
      });
  ASSERT_EQ(ooms.size(), 4u);
  EXPECT_NE(ooms[0].oom_op, ooms[3].oom_op);
}

// Two hand-made ranks that each receive one 2 GiB buffer at the same
// instant, named after their own micro-batch (0 and 5), on a device with
// 1 GiB free: they replay alike, share one replay, and each names the OOM
// after its own buffer, as replaying it alone does.
TEST(MemoryStreamTest, ASharedOomAtABufferNamesTheRanksOwnBuffer) {
  graph::Config c = LoadScenario("pp4_tiny.textproto");
  c.hardware.hbm_bytes = c.hardware.runtime_overhead_bytes + (int64_t{1} << 30);
  SimResult r;
  for (int32_t rank : {0, 1}) {
    RankRun run{rank, Ledger(Bytes{})};
    Delta d;
    d.time = 1e-3;
    d.category = graph::Category::kComm;
    d.bytes = int64_t{2} << 30;
    d.what = "recv F" + std::to_string(5 * rank);
    d.microbatch = 5 * rank;
    d.tie = 0;
    run.ledger.AddDelta(d);
    d.time = 2e-3;
    d.bytes = -d.bytes;
    d.tie = 1;
    run.ledger.AddDelta(d);
    r.ranks.push_back(std::move(run));
  }
  ASSERT_TRUE(ReplaysAlike(r.ranks[0].ledger, r.ranks[1].ledger));
  const std::vector<AllocatorRun> runs =
      ExpectEveryRankAsAlone(c, r, [](size_t i, const AllocatorRun& alone) {
        EXPECT_TRUE(alone.oom);
        EXPECT_EQ(alone.oom_delta, 0);
        EXPECT_EQ(alone.oom_op, "recv F" + std::to_string(5 * i));
      });
  EXPECT_EQ(runs.size(), 2u);
}

// What ReplaysAlike looks at, one change at a time on a copy of a ledger:
// renaming a micro-batch throughout keeps it alike; a delta of other bytes
// or time, a step at another time, or two micro-batches merged into one
// (their tensors would be paired otherwise) does not.
TEST(MemoryStreamTest, ReplaysAlikeNeedsTheSameCallsAndAOneToOneRenaming) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto");
  const SimResult r = Simulated(c);
  const Ledger& ledger = r.ranks[1].ledger;
  ASSERT_GT(ledger.deltas().size(), 1u);
  ASSERT_GT(ledger.steps().size(), 2u);
  auto copy = [&](auto&& change) {
    Ledger out(ledger.initial());
    std::vector<StepRecord> steps = ledger.steps();
    std::vector<Delta> deltas = ledger.deltas();
    change(steps, deltas);
    for (const StepRecord& s : steps) out.AddStep(s);
    for (Delta& d : deltas) out.AddDelta(std::move(d));
    return out;
  };
  EXPECT_TRUE(ReplaysAlike(ledger, copy([](auto&, auto&) {})));
  const int32_t first = ledger.steps()[0].step.microbatch;
  EXPECT_TRUE(ReplaysAlike(ledger, copy([&](std::vector<StepRecord>& steps, auto&) {
    for (StepRecord& s : steps) {
      if (s.step.microbatch == first) s.step.microbatch = 1000;
    }
  })));
  // Deltas named as another delta is: their buffers would be paired.
  EXPECT_FALSE(ReplaysAlike(ledger, copy([](auto&, std::vector<Delta>& deltas) {
    const std::string renamed = deltas[0].what;
    for (Delta& d : deltas) {
      if (d.what != renamed) d.what = renamed;
    }
  })));
  EXPECT_FALSE(ReplaysAlike(ledger, copy([](auto&, std::vector<Delta>& deltas) {
    deltas[0].bytes += 512;
  })));
  EXPECT_FALSE(ReplaysAlike(ledger, copy([](auto&, std::vector<Delta>& deltas) {
    deltas[1].time += 1e-9;
  })));
  EXPECT_FALSE(ReplaysAlike(ledger, copy([](std::vector<StepRecord>& steps, auto&) {
    steps[2].start += 1e-9;
  })));
  // Every step of some other micro-batch of the first step's stage takes
  // the first's number: two micro-batches become one.
  EXPECT_FALSE(ReplaysAlike(ledger, copy([&](std::vector<StepRecord>& steps, auto&) {
    for (StepRecord& s : steps) {
      if (s.stage == ledger.steps()[0].stage && s.step.microbatch != first) {
        s.step.microbatch = first;
      }
    }
  })));
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
