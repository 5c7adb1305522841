// The run report's reserved-memory fields and the `fits` verdict, on the
// tiny scenario simulated in this process (one SimGrid engine per test).
#include "traces/run_report.h"

#include <gtest/gtest.h>

#include "sim/schedules/builtin.h"
#include "tests/test_util.h"

namespace stepsim::traces {
namespace {

struct Simulation {
  graph::Config config;
  sim::SimResult result;
  std::vector<sim::AllocatorRun> allocators;
};

Simulation Simulated(const std::vector<std::string>& sets) {
  Simulation run;
  run.config = testing::LoadScenario("pp4_tiny.textproto", sets);
  StatusOr<sim::Schedule> schedule = sim::BuildSchedule(run.config);
  EXPECT_TRUE(schedule.ok());
  StatusOr<sim::SimResult> r = sim::Simulate(run.config, *schedule, sim::SimOptions{});
  EXPECT_TRUE(r.ok()) << r.status().message();
  run.result = std::move(*r);
  StatusOr<std::vector<sim::AllocatorRun>> a = sim::ReplayAllocators(run.config, run.result);
  EXPECT_TRUE(a.ok()) << a.status().message();
  run.allocators = std::move(*a);
  return run;
}

// Reserved covers the live peak; fragmentation is their difference; the
// verdict compares reserved plus the CUDA context with the device. A device
// of exactly reserved + context fits; one byte less does not, though the
// live peak alone would.
TEST(RunReportTest, FitsJudgesReservedPlusTheRuntimeOverhead) {
  Simulation run = Simulated({});
  const RunReport report = BuildRunReport(run.config, run.result, &run.allocators);
  const RankReport& k = report.ranks(1);
  EXPECT_EQ(k.reserved_peak_bytes(), run.allocators[1].reserved_peak);
  EXPECT_EQ(k.fragmentation_bytes(), k.reserved_peak_bytes() - k.peak_bytes());
  EXPECT_GT(k.fragmentation_bytes(), 0);
  EXPECT_EQ(k.runtime_overhead_bytes(), graph::kDefaultRuntimeOverheadBytes);
  EXPECT_EQ(k.cuda_mallocs(), run.allocators[1].end.device_allocs);
  EXPECT_TRUE(k.oom_op().empty());
  EXPECT_TRUE(k.fits());

  // Headroom: the device less the context less reserved.
  EXPECT_EQ(k.headroom_bytes(),
            k.capacity_bytes() - k.runtime_overhead_bytes() - k.reserved_peak_bytes());
  EXPECT_EQ(k.alloc_retries(), 0);  // the tiny stage is far from the limit

  run.config.hardware.hbm_bytes = k.reserved_peak_bytes() + k.runtime_overhead_bytes();
  const RankReport exact = BuildRunReport(run.config, run.result, &run.allocators).ranks(1);
  EXPECT_TRUE(exact.fits());
  EXPECT_EQ(exact.headroom_bytes(), 0);
  EXPECT_NE(FormatRunSummary(BuildRunReport(run.config, run.result, &run.allocators))
                .find("yes, 0.00 left"),
            std::string::npos);
  run.config.hardware.hbm_bytes -= 1;
  const RunReport over = BuildRunReport(run.config, run.result, &run.allocators);
  EXPECT_FALSE(over.ranks(1).fits());
  EXPECT_EQ(over.ranks(1).headroom_bytes(), -1);
  // The summary says by how much each rank is over or under.
  const std::string summary = FormatRunSummary(over);
  EXPECT_NE(summary.find("NO, 0.00 over"), std::string::npos) << summary;
}

// Without an allocator model reserved is the live peak.
TEST(RunReportTest, WithoutTheAllocatorReservedIsThePeak) {
  Simulation run = Simulated({"allocator.kind=NONE"});
  const RunReport report = BuildRunReport(run.config, run.result, &run.allocators);
  for (const RankReport& k : report.ranks()) {
    EXPECT_EQ(k.reserved_peak_bytes(), k.peak_bytes());
    EXPECT_EQ(k.fragmentation_bytes(), 0);
    EXPECT_EQ(k.cuda_mallocs(), 0);
  }
  EXPECT_NE(FormatRunSummary(report).find("reserved"), std::string::npos);
}

// ZeRO-2 over DP 2 (EDP 2*2/2 = 2): each backward reduce-scatters, and no
// reduction follows the last step, which the report and the summary say.
TEST(RunReportTest, ZeroTwoSaysEachBackwardReduceScatters) {
  Simulation run = Simulated({"zero.stage=2"});
  const RunReport report = BuildRunReport(run.config, run.result, &run.allocators);
  EXPECT_TRUE(report.gradients_reduced_per_microbatch());
  // No reduction after the last step. Every rank begins its optimizer
  // step when the last rank's last step ends (the gradient norm's
  // all-reduce), steps, then gathers its weights; the step ends with the
  // slowest.
  double last = 0, end = 0;
  for (const RankReport& k : report.ranks()) last = std::max(last, k.compute_end_us());
  for (const RankReport& k : report.ranks()) {
    EXPECT_EQ(k.grad_sync_us(), 0) << k.pp_rank();
    EXPECT_GT(k.param_gather_us(), 0) << k.pp_rank();
    EXPECT_EQ(k.optimizer_step_us(), last) << k.pp_rank();
    EXPECT_GT(k.optimizer_us(), 0) << k.pp_rank();
    end = std::max(end, k.optimizer_step_us() + k.optimizer_us() + k.param_gather_us());
  }
  EXPECT_LT(report.ranks(3).compute_end_us(), last);  // 1F1B: the last rank ends first
  EXPECT_NEAR(report.step_time_us(), end, 2e-3);  // each rounded to whole nanoseconds
  const std::string summary = FormatRunSummary(report);
  EXPECT_NE(summary.find("each backward reduce-scatters its gradients; then the optimizer "
                         "step and the weights' all-gather"),
            std::string::npos)
      << summary;
  EXPECT_EQ(summary.find("then the DP gradient reduction"), std::string::npos) << summary;
}

// ZeRO-2 over DP 1 (EDP 1*2/2 = 1): nothing to reduce, so nothing is said.
TEST(RunReportTest, ZeroTwoWithoutDataParallelReducesNothing) {
  Simulation run = Simulated({"zero.stage=2", "parallel.dp=1"});
  const RunReport report = BuildRunReport(run.config, run.result, &run.allocators);
  EXPECT_FALSE(report.gradients_reduced_per_microbatch());
}

}  // namespace
}  // namespace stepsim::traces
