// The Chrome trace (traces/chrome_trace.h): its reserved counter, the caching
// allocator's replay worked out by hand in tests/traces/reserved_run.h, one
// sample per instant, passing check-trace; absent without an allocator.
// Its data-parallel thread: ZeRO-2's reduce-scatters, ZeRO-1's reduction.
#include "traces/chrome_trace.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "graph/params.h"
#include "graph/static_memory.h"
#include "sim/schedules/builtin.h"
#include "tests/test_util.h"
#include "tests/traces/reserved_run.h"
#include "traces/trace_check.h"

namespace stepsim::traces {
namespace {

RunReport OneRankReport(const sim::SimResult& s) {
  RunReport report;
  RankReport* rank = report.add_ranks();
  rank->set_pp_rank(0);
  rank->set_peak_bytes(s.ranks[0].memory.peak.total);
  rank->set_peak_op(s.ranks[0].memory.peak.op);
  return report;
}

// `c` simulated on its built-in schedule.
StatusOr<sim::SimResult> Simulated(const graph::Config& c) {
  StatusOr<sim::Schedule> schedule = sim::BuildSchedule(c);
  if (!schedule.ok()) return schedule.status();
  return sim::Simulate(c, *schedule, sim::SimOptions{});
}

// A report of every rank's peak, what the trace's peak markers read.
RunReport PeaksReport(const sim::SimResult& s) {
  RunReport report;
  for (const sim::RankRun& run : s.ranks) {
    RankReport* rank = report.add_ranks();
    rank->set_pp_rank(run.rank);
    rank->set_peak_bytes(run.memory.peak.total);
    rank->set_peak_op(run.memory.peak.op);
  }
  return report;
}

// (ts in us, GiB) of every counter event named `name`, in file order.
std::vector<std::pair<double, double>> Counter(const std::string& trace, const std::string& name,
                                               const std::string& series) {
  std::vector<std::pair<double, double>> out;
  const nlohmann::json doc = nlohmann::json::parse(trace);
  for (const nlohmann::json& e : doc["traceEvents"]) {
    if (e["ph"] == "C" && e["name"] == name) {
      out.push_back({e["ts"].get<double>(), e["args"][series].get<double>()});
    }
  }
  return out;
}

TEST(ChromeTraceTest, ReservedCounterFromTheAllocatorReplay) {
  const sim::SimResult s = testing::ReservedRun();
  const std::vector<sim::AllocatorRun> allocators = testing::ReplayedReserved(s);
  ASSERT_EQ(allocators.size(), 1u);
  const std::string trace = ChromeTrace(s, OneRankReport(s), allocators);
  const TraceCheck check = CheckChromeTrace(trace);
  EXPECT_EQ(check.problem_count, 0) << (check.problems.empty() ? "" : check.problems[0]);
  // Where reserved changes: 2 MiB at 0, 22 MiB at 1 us, 32 MiB at 3 us and,
  // of the two changes at 5 us (32 MiB, then 48 MiB), the last.
  const double gib = 1 << 30, M = static_cast<double>(testing::kMiB);
  const std::vector<std::pair<double, double>> expected = {
      {0, 2 * M / gib}, {1, 22 * M / gib}, {3, 32 * M / gib}, {5, 48 * M / gib}};
  const auto reserved = Counter(trace, "reserved (GiB)", "reserved");
  ASSERT_EQ(reserved.size(), expected.size()) << trace;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(reserved[i].first, expected[i].first) << i;
    EXPECT_NEAR(reserved[i].second, expected[i].second, 5e-7) << i;  // six decimals
  }
  // The total stays its own counter, without the allocator's series.
  const auto total = Counter(trace, "memory (GiB)", "total");
  ASSERT_FALSE(total.empty());
  const nlohmann::json doc = nlohmann::json::parse(trace);
  for (const nlohmann::json& e : doc["traceEvents"]) {
    if (e["ph"] == "C" && e["name"] == "memory (GiB)") {
      EXPECT_FALSE(e["args"].contains("reserved"));
    }
  }
  // Without an allocator (allocator.kind NONE) there is no reserved counter.
  EXPECT_TRUE(Counter(ChromeTrace(s, OneRankReport(s)), "reserved (GiB)", "reserved").empty());
}

TEST(ChromeTraceTest, AnOpEndsWithinItsStepInFloatingPoint) {
  // Found by the writers fuzzer: a step ending at 125.3 us has no duration
  // that a viewer adds to its start to land exactly there, so it ends at
  // 125.29999999999998; the op ending with it, from its own start, lands on
  // 125.3, past its step, and DevTools would drop it. The op's duration
  // shrinks to end within the step.
  const graph::Config c = testing::LoadScenario(
      "pp4_tiny.textproto",
      {"model.first_dense_layers=2", "model.vocab_size=128", "batch.num_microbatches=4",
       "schedule.kind=GPIPE", "recompute.policy=FULL"});
  StatusOr<sim::SimResult> r = Simulated(c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const RunReport report = PeaksReport(*r);
  const TraceCheck check = CheckChromeTrace(ChromeTrace(*r, report));
  EXPECT_EQ(check.problem_count, 0) << (check.problems.empty() ? "" : check.problems[0]);
  EXPECT_GT(check.slices, 0);
}

// ZeRO-2 on the tiny model over DP 2 (EDP 2*2/2 = 2): every backward
// reduce-scatters each of its stage's slots' gradients on the rank's
// data-parallel comm thread, one after another, inside that backward;
// per micro-batch they add up to the rank's whole gradients (its
// parameters from graph::StaticMemoryPerRank times 4 B under
// PAPER_2_4_8). No reduction follows the last step. Under ZeRO-1: no
// reduce-scatter, one DP gradient reduction per rank. Every rank has one
// optimizer step on its compute thread after its steps; under ZeRO-1/2
// one weights' all-gather after it and everything else on the DP thread,
// of the rank's parameters; under ZeRO-3 none. (One engine per process:
// one simulation per test.)
void CheckDataParallelThread(const char* zero) {
  const graph::Config c = testing::LoadScenario("pp4_tiny.textproto", {zero});
  StatusOr<sim::SimResult> r = Simulated(c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const RunReport report = PeaksReport(*r);
  const std::string trace = ChromeTrace(*r, report);
  const TraceCheck check = CheckChromeTrace(trace);
  EXPECT_EQ(check.problem_count, 0) << (check.problems.empty() ? "" : check.problems[0]);
  StatusOr<graph::ModelParams> params = graph::CountParams(c);
  ASSERT_TRUE(params.ok());
  StatusOr<std::vector<graph::RankStatic>> statics = graph::StaticMemoryPerRank(c, *params);
  ASSERT_TRUE(statics.ok());
  const nlohmann::json doc = nlohmann::json::parse(trace);
  for (int64_t rank = 0; rank < 4; ++rank) {
    // The rank's backward steps, by name: [start, end] in us.
    std::map<std::string, std::pair<double, double>> steps;
    std::map<std::string, int64_t> bytes;  // reduce-scattered, per step
    int64_t reductions = 0, count = 0, gathers = 0, optimizer_steps = 0;
    double last_end = 0, reduction_end = 0, gather_start = 0, steps_end = 0, optimizer_end = 0;
    for (const nlohmann::json& e : doc["traceEvents"]) {
      if (e["ph"] != "X" || e["pid"] != rank + 1) continue;
      const double ts = e["ts"].get<double>(), end = ts + e["dur"].get<double>();
      if (e["cat"] == "step") {
        steps[e["name"].get<std::string>()] = {ts, end};
        steps_end = std::max(steps_end, end);
      }
      if (e["name"] == "optimizer step") {
        ++optimizer_steps;
        EXPECT_EQ(e["tid"], 1) << "on the compute thread";
        EXPECT_GE(ts + 1e-3, steps_end) << "after every step";
        optimizer_end = end;
      }
      if (e["name"] == "DP gradient reduction") ++reductions, reduction_end = end;
      if (e["name"] == "weights all-gather") {
        ++gathers;
        gather_start = ts;
        EXPECT_EQ(e["args"]["dense_params"].get<int64_t>(), (*statics)[rank].memory.dense_params);
        EXPECT_EQ(e["args"]["expert_params"].get<int64_t>(),
                  (*statics)[rank].memory.expert_params);
      }
      if (e["name"].get<std::string>().rfind("reduce-scatter ", 0) != 0) continue;
      ++count;
      EXPECT_GE(ts, last_end) << "one after another";
      last_end = end;
      const std::string step = e["args"]["step"].get<std::string>();
      ASSERT_TRUE(steps.count(step)) << step << " comes before its reduce-scatters";
      EXPECT_GE(ts, steps[step].first) << step;
      EXPECT_LE(end, steps[step].second + 1e-3) << step;
      bytes[step] += e["args"]["bytes"].get<int64_t>();
    }
    const int64_t slots = static_cast<int64_t>(c.layout.stages[rank].slots.size());
    EXPECT_EQ(optimizer_steps, 1) << "rank " << rank;
    EXPECT_EQ(gathers, c.zero_stage == 3 ? 0 : 1) << "rank " << rank;
    if (gathers == 1) {
      EXPECT_GE(gather_start + 1e-3, std::max({last_end, reduction_end, optimizer_end}))
          << "rank " << rank;
    }
    if (c.zero_stage == 3) continue;
    if (c.zero_stage == 1) {
      EXPECT_EQ(count, 0) << "rank " << rank;
      EXPECT_EQ(reductions, 1) << "rank " << rank;
      continue;
    }
    EXPECT_EQ(reductions, 0) << "rank " << rank;
    EXPECT_EQ(count, c.batch.microbatches * slots) << "rank " << rank;
    const graph::StaticMemory& m = (*statics)[rank].memory;
    ASSERT_EQ(bytes.size(), static_cast<size_t>(c.batch.microbatches));
    for (const auto& [step, b] : bytes) {
      EXPECT_EQ(b, (m.dense_params + m.expert_params) * 4) << "rank " << rank << " " << step;
    }
  }
}

TEST(ChromeTraceTest, ZeroTwoReduceScattersOnTheDataParallelThread) {
  CheckDataParallelThread("zero.stage=2");
}

TEST(ChromeTraceTest, ZeroOneReducesOnceAfterTheLastStep) {
  CheckDataParallelThread("zero.stage=1");
}

TEST(ChromeTraceTest, ZeroThreeGathersNoWeightsAfterTheStep) {
  CheckDataParallelThread("zero.stage=3");
}

}  // namespace
}  // namespace stepsim::traces
