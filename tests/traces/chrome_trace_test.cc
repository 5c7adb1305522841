// The Chrome trace's reserved counter (traces/chrome_trace.h): the caching
// allocator's replay worked out by hand in tests/traces/reserved_run.h, one
// sample per instant, passing check-trace; absent without an allocator.
#include "traces/chrome_trace.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <utility>
#include <vector>

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
  StatusOr<sim::Schedule> schedule = sim::BuildSchedule(c);
  ASSERT_TRUE(schedule.ok());
  StatusOr<sim::SimResult> r = sim::Simulate(c, *schedule, sim::SimOptions{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  RunReport report;
  for (const sim::RankRun& run : r->ranks) {
    RankReport* rank = report.add_ranks();
    rank->set_pp_rank(run.rank);
    rank->set_peak_bytes(run.memory.peak.total);
    rank->set_peak_op(run.memory.peak.op);
  }
  const TraceCheck check = CheckChromeTrace(ChromeTrace(*r, report));
  EXPECT_EQ(check.problem_count, 0) << (check.problems.empty() ? "" : check.problems[0]);
  EXPECT_GT(check.slices, 0);
}

}  // namespace
}  // namespace stepsim::traces
