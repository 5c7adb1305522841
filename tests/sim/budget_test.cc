// The run budget: counts from the config alone, and refusals that name the
// field and the way out.
#include "sim/budget.h"

#include <gtest/gtest.h>

#include "sim/engine.h"
#include "tests/test_util.h"

namespace stepsim::sim {
namespace {

using testing::LoadScenario;

TEST(BudgetTest, CountsOfTheGoldenRun) {
  // Layout "Et|t|t|tL" on 4 ranks, 8 micro-batches, 1F1B: each (micro-batch,
  // stage) is an F and a BW step; 3 hops between ranks, each crossed by an
  // activation and a gradient; 4 events per step plus 64 per slot (6 slots).
  const graph::Config c = LoadScenario("pp4_1f1b_golden.textproto");
  const RunCost cost = EstimateRunCost(c, false);
  EXPECT_EQ(cost.steps, 4 * 8 * 2);
  EXPECT_EQ(cost.transfers, 8 * 3 * 2);
  EXPECT_EQ(cost.events, 8 * (4 * 2 * 4 + kEventsPerSlot * 6));
  EXPECT_EQ(cost.rank_steps, (std::vector<int64_t>{16, 16, 16, 16}));
  // A schedule file may split every backward: 3 steps per pair.
  EXPECT_EQ(EstimateRunCost(c, true).steps, 4 * 8 * 3);
}

TEST(BudgetTest, StepsAndTransfersAreTheSimulations) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto");
  const RunCost cost = EstimateRunCost(c, false);
  StatusOr<Schedule> schedule = BuildSchedule(c);
  ASSERT_TRUE(schedule.ok());
  StatusOr<SimResult> result = Simulate(c, *schedule, SimOptions{});
  ASSERT_TRUE(result.ok()) << result.status().message();
  int64_t steps = 0, events = 0;
  for (const RankRun& r : result->ranks) {
    steps += static_cast<int64_t>(r.ledger.steps().size());
    events += r.memory.events;
  }
  EXPECT_EQ(cost.steps, steps);
  EXPECT_EQ(cost.transfers, static_cast<int64_t>(result->transfers.size()));
  // Events are estimated per layout slot: within a factor of 1.5 here.
  EXPECT_GT(cost.events * 3, events * 2);
  EXPECT_LT(cost.events * 2, events * 3);
}

TEST(BudgetTest, PriceAddsTheRates) {
  RunCost cost;
  cost.events = 1000;
  cost.rank_steps = {10, 20};
  CostRates rates;
  rates.fixed = 1;
  rates.per_event = 0.001;
  rates.per_rank_step_power = 0.01;
  rates.rank_step_exponent = 2;
  rates.per_trace_event = 0.002;
  Price(rates, &cost);
  EXPECT_DOUBLE_EQ(cost.seconds, 1 + 1 + 0.01 * (100 + 400));
  EXPECT_DOUBLE_EQ(cost.trace_seconds, 2);
}

// Since the engine became linear (issue 16) 20,000 micro-batches of V3 are
// estimated at about half a minute of simulation (sim/budget.cc's rates:
// 0.034 s + 84,480,000 events * 2.9e-7 s), within the default minute;
// writing their trace and CSV as well (2.0e-6 s per event) is not.
TEST(BudgetTest, TwentyThousandMicroBatchesOnV3WithATraceAreRefused) {
  const graph::Config c = LoadScenario(
      "deepseek_v3.textproto", {"schedule.kind=ONE_F_ONE_B", "batch.num_microbatches=20000"});
  const RunCost cost = EstimateRunCost(c, false);
  EXPECT_TRUE(CheckBudget(c, cost, Budget{}).ok()) << cost.seconds;
  Budget traced;
  traced.with_trace = true;
  const Status s = CheckBudget(c, cost, traced);
  ASSERT_EQ(s.code(), StatusCode::kInvalidInput);
  // 16 stages holding 64 layout slots ("Et*4|(t*4|)*14,tmL"): 2 steps per
  // pair, 15 hops, 16 * 8 + 64 * 64 events per micro-batch.
  const std::string& m = s.message();
  EXPECT_EQ(m.substr(0, 75),
            "batch.num_microbatches: 20,000 micro-batches on 16 stages would take about ");
  EXPECT_NE(m.find("(640,000 steps, 600,000 transfers, about 84,480,000 memory events), more "
                   "than the limit of 60 s; use fewer micro-batches, or raise the limit with "
                   "--max-seconds or lift it with --no-budget"),
            std::string::npos)
      << m;
  // No limit, no refusal; the event limit is separate.
  EXPECT_TRUE(CheckBudget(c, cost, Budget{0, true, 200'000'000}).ok());
}

TEST(BudgetTest, TooManyEventsForMemory) {
  const graph::Config c = LoadScenario(
      "deepseek_v3.textproto", {"schedule.kind=ONE_F_ONE_B", "batch.num_microbatches=200000"});
  const Status s = CheckBudget(c, EstimateRunCost(c, false), Budget{0, false, 200'000'000});
  EXPECT_EQ(s.message(),
            "batch.num_microbatches: 200,000 micro-batches on 16 stages make 6,400,000 steps, "
            "6,000,000 transfers, about 844,800,000 memory events, more than the 200,000,000 "
            "events a run may hold in memory; use fewer micro-batches or pipeline stages "
            "(--no-budget leaves the exact count to the simulation)");
}

TEST(BudgetTest, ATraceCostsExtra) {
  const graph::Config c = LoadScenario("pp4_tiny.textproto");
  const RunCost cost = EstimateRunCost(c, false);
  Budget budget;
  budget.max_seconds = (cost.seconds + cost.seconds + cost.trace_seconds) / 2;
  EXPECT_TRUE(CheckBudget(c, cost, budget).ok());
  budget.with_trace = true;
  EXPECT_FALSE(CheckBudget(c, cost, budget).ok());
}

TEST(BudgetTest, DescribesSeconds) {
  EXPECT_EQ(DescribeSeconds(41.2), "42 s");
  EXPECT_EQ(DescribeSeconds(570), "9.5 minutes");
  EXPECT_EQ(DescribeSeconds(3.1 * 3600), "3.1 hours");
  EXPECT_EQ(DescribeSeconds(1e300), "more than 30 years");
}

}  // namespace
}  // namespace stepsim::sim
