// The sweep runner: the same rows for any number of workers, shared stage
// profiles that change nothing, invalid points listed, shards that add up.
#include "sim/sweep.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "sim/process_pool.h"
#include "sim/sweep_rows.h"
#include "tests/test_util.h"
#include "traces/run_report.h"

namespace stepsim::sim {
namespace {

Scenario Tiny() { return testing::ReadScenario("pp4_tiny.textproto"); }

// 3 x 2 x 2 = 12 points; ZB_H1 with 2 micro-batches is invalid (it needs
// m >= PP = 4).
std::vector<Vary> Space() {
  return {{"schedule.kind", {"ONE_F_ONE_B", "GPIPE", "ZB_H1"}},
          {"batch.num_microbatches", {"2", "8"}},
          {"zero.stage", {"0", "1"}}};
}

// Equal messages (maps compared as maps), with the differences if not.
::testing::AssertionResult Same(const google::protobuf::Message& a,
                                const google::protobuf::Message& b) {
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  if (d.Compare(a, b)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << diff;
}

// What `c` simulated alone reports: in a child (SimGrid runs one engine per
// process), with its profiles built afresh.
StatusOr<RunReport> ReportAlone(const graph::Config& c) {
  StatusOr<std::string> bytes = RunInChild([&]() -> StatusOr<std::string> {
    StatusOr<Schedule> s = BuildSchedule(c);
    if (!s.ok()) return s.status();
    StatusOr<SimResult> result = Simulate(c, *s, SimOptions{});
    if (!result.ok()) return result.status();
    StatusOr<RunReport> report = traces::ReportRun(c, *result);
    if (!report.ok()) return report.status();
    return report->SerializeAsString();
  });
  if (!bytes.ok()) return bytes.status();
  RunReport report;
  if (!report.ParseFromString(*bytes)) return Status::Failed("an unreadable report");
  return report;
}

TEST(SweepTest, RowsAreTheSameForAnyNumberOfWorkers) {
  SweepOptions one;
  one.jobs = 1;
  StatusOr<SweepReport> a = RunSweep(Tiny(), Space(), traces::ReportRun, one);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_EQ(a->configs_size(), 12);
  SweepOptions three;
  three.jobs = 3;
  StatusOr<SweepReport> b = RunSweep(Tiny(), Space(), traces::ReportRun, three);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(Same(*a, *b));
}

TEST(SweepTest, InvalidPointsAreRowsWithTheirReason) {
  StatusOr<SweepReport> r = RunSweep(Tiny(), Space(), traces::ReportRun, SweepOptions{});
  ASSERT_TRUE(r.ok());
  int invalid = 0;
  for (const SweepConfig& c : r->configs()) {
    const bool zb_short = c.overrides().at("schedule.kind") == "ZB_H1" &&
                          c.overrides().at("batch.num_microbatches") == "2";
    EXPECT_EQ(c.simulated(), !zb_short) << c.DebugString();
    if (!zb_short) continue;
    ++invalid;
    EXPECT_FALSE(c.valid());
    EXPECT_EQ(c.error(),
              "batch.num_microbatches: ZB_H1 needs at least 4 micro-batches with parallel.pp = 4, "
              "got 2");
  }
  EXPECT_EQ(invalid, 2);  // two ZeRO stages
  // Sorted: every simulated row first (they all fit an H800), by step time.
  for (int i = 1; i < 10; ++i) {
    EXPECT_LE(r->configs(i - 1).step_time_us(), r->configs(i).step_time_us());
  }
  EXPECT_FALSE(r->configs(10).simulated());
}

TEST(SweepTest, ARowIsWhatOneSimulationReports) {
  std::map<int64_t, RunReport> reports;
  SweepOptions options;
  options.reports = &reports;
  StatusOr<SweepReport> r = RunSweep(Tiny(), Space(), traces::ReportRun, options);
  ASSERT_TRUE(r.ok());
  // Index 3 = (0, 1, 1): 1F1B, 8 micro-batches, ZeRO-1, simulated alone
  // here (in a child: one engine per process) with profiles built afresh.
  graph::Config c = testing::LoadScenario(
      "pp4_tiny.textproto", {"batch.num_microbatches=8", "zero.stage=1"});
  StatusOr<RunReport> alone = ReportAlone(c);
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  ASSERT_EQ(reports.count(3), 1u);
  EXPECT_TRUE(Same(reports[3], *alone));
}

TEST(SweepTest, ShardsTogetherAreTheWholeSweep) {
  StatusOr<SweepReport> whole = RunSweep(Tiny(), Space(), traces::ReportRun, SweepOptions{});
  ASSERT_TRUE(whole.ok());
  std::vector<std::pair<std::string, SweepReport>> shards;
  for (int64_t k = 1; k <= 5; ++k) {
    SweepOptions options;
    options.shard = {k, 5};
    StatusOr<SweepReport> part = RunSweep(Tiny(), Space(), traces::ReportRun, options);
    ASSERT_TRUE(part.ok());
    EXPECT_EQ(part->shard(), std::to_string(k) + "/5");
    EXPECT_EQ(part->configs_size(), k <= 2 ? 3 : 2);  // 12 over 5 shards
    shards.emplace_back("shard" + std::to_string(k), *part);
  }
  StatusOr<SweepReport> merged = MergeShards(shards);
  ASSERT_TRUE(merged.ok()) << merged.status().message();
  EXPECT_TRUE(Same(*merged, *whole));
}

TEST(SweepTest, ARefusedSpaceOrShardIsBadInput) {
  SweepOptions options;
  options.shard = {1, 13};
  EXPECT_EQ(RunSweep(Tiny(), Space(), traces::ReportRun, options).status().message(),
            "--shard 1/13: the sweep has only 12 configurations, fewer than 13 shards");
  std::vector<Vary> bad = {{"parallel.pipeline", {"2"}}};
  EXPECT_EQ(RunSweep(Tiny(), bad, traces::ReportRun, SweepOptions{}).status().code(),
            StatusCode::kInvalidInput);
}

// ZeRO-0 and 1 share a profile key, so a sweep over ZeRO stages builds
// the profiles of the first and simulates the second with them: each row
// is still what its configuration simulated alone (in a child, with its own
// profiles) reports. Over DP 2, so that every stage shards something.
TEST(SweepTest, ZeroStagesBelowTwoShareProfilesAndReportAsAlone) {
  std::map<int64_t, RunReport> reports;
  SweepOptions options;
  options.reports = &reports;
  const std::vector<Vary> space = {{"zero.stage", {"0", "1", "2", "3"}}};
  Scenario base = Tiny();
  ASSERT_TRUE(graph::ApplyOverride("parallel.dp=2", &base).ok());
  StatusOr<SweepReport> r = RunSweep(base, space, traces::ReportRun, options);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(reports.size(), 4u);
  for (int64_t stage = 0; stage < 4; ++stage) {
    graph::Config c = testing::LoadScenario(
        "pp4_tiny.textproto", {"parallel.dp=2", "zero.stage=" + std::to_string(stage)});
    StatusOr<RunReport> alone = ReportAlone(c);
    ASSERT_TRUE(alone.ok()) << alone.status().message();
    EXPECT_TRUE(Same(reports[stage], *alone)) << "zero.stage=" << stage;
  }
  // The stages differ where they should: static memory; ZeRO-1 only in the
  // reduction after the last step, ZeRO-2 in the reduce-scatters inside
  // the backwards; and ZeRO-3's gathers.
  EXPECT_NE(reports[0].ranks(0).static_bytes(), reports[1].ranks(0).static_bytes());
  EXPECT_EQ(reports[0].compute_time_us(), reports[1].compute_time_us());
  EXPECT_NE(reports[0].step_time_us(), reports[1].step_time_us());
  EXPECT_NE(reports[1].compute_time_us(), reports[2].compute_time_us());
  EXPECT_NE(reports[2].step_time_us(), reports[3].step_time_us());
}

TEST(SweepTest, TheProfileKeyIgnoresOnlyKindMicroBatchesNameAndZeroBelowTwo) {
  const Scenario base = Tiny();
  auto key = [&](const std::vector<std::string>& sets) {
    Scenario s = base;
    for (const std::string& set : sets) EXPECT_TRUE(graph::ApplyOverride(set, &s).ok());
    StatusOr<graph::Config> c = graph::Resolve(s);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return ProfileKey(s, *c);
  };
  const std::string k = key({});
  EXPECT_EQ(k, key({"schedule.kind=GPIPE", "batch.num_microbatches=16", "name=other"}));
  EXPECT_EQ(k, key({"zero.stage=1"}));
  EXPECT_NE(k, key({"zero.stage=2"}));
  EXPECT_NE(k, key({"zero.stage=3"}));
  EXPECT_NE(key({"zero.stage=2"}), key({"zero.stage=3"}));
  EXPECT_NE(k, key({"batch.micro_batch_size=2"}));
  // DualPipeV's two chunks per rank change the stages: another key.
  EXPECT_NE(k, key({"schedule.kind=DUALPIPE_V"}));
}

}  // namespace
}  // namespace stepsim::sim
