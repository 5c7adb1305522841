// The plan of a step (sim/plan.h): what each rank waits for and hands on,
// through which channel, over which links, worked out before the run.
#include "sim/plan.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace stepsim::sim {
namespace {

using testing::LoadScenario;

struct Planned {
  Schedule schedule;
  std::vector<StageProfile> stages;
  Plan plan;
};

Planned PlanOf(const graph::Config& c) {
  Planned p;
  StatusOr<Schedule> schedule = BuildSchedule(c);
  EXPECT_TRUE(schedule.ok()) << schedule.status().message();
  p.schedule = *schedule;
  if (p.schedule.routes.empty()) p.schedule.routes = c.layout.routes;
  const CostModel cost(c);
  StatusOr<std::vector<StageProfile>> stages = BuildStageProfiles(c, cost);
  EXPECT_TRUE(stages.ok());
  p.stages = std::move(*stages);
  StatusOr<Plan> plan = BuildPlan(c, p.schedule, p.stages, cost);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  p.plan = std::move(*plan);
  return p;
}

TEST(PlanTest, OneFOneBHandsEachMicroBatchDownAndBack) {
  // PP 4, m = 8: rank r waits for the activation of stage r from rank r - 1
  // before each F (r > 0) and for the gradient from rank r + 1 before each
  // BW (r < 3); it hands on the other way.
  const Planned p = PlanOf(LoadScenario("pp4_tiny.textproto"));
  const Plan& plan = p.plan;
  ASSERT_EQ(plan.ranks.size(), 4u);
  EXPECT_EQ(plan.stages, 4);
  EXPECT_EQ(plan.microbatches, 8);
  for (int64_t r = 0; r < 4; ++r) {
    ASSERT_EQ(plan.ranks[r].steps.size(), 16u) << r;
    for (const PlanStep& s : plan.ranks[r].steps) {
      const bool forward = s.step.kind == StepKind::kForward;
      EXPECT_EQ(s.stage, r);
      EXPECT_EQ(s.duration, p.stages[r].For(s.step.kind).duration);
      if (forward ? r > 0 : r < 3) {
        EXPECT_EQ(s.input, plan.Channel(!forward, r, s.step.microbatch));
        EXPECT_EQ(s.input_from, forward ? r - 1 : r + 1);
        EXPECT_EQ(plan.wire_receiver[s.input], r);
      } else {
        EXPECT_EQ(s.input, -1);
      }
      if (forward ? r < 3 : r > 0) {
        EXPECT_EQ(s.output_to, forward ? r + 1 : r - 1);
        EXPECT_EQ(s.output, plan.Channel(!forward, s.output_to, s.step.microbatch));
        EXPECT_EQ(s.output_bytes, p.stages[r].activation_bytes);
      } else {
        EXPECT_EQ(s.output, -1);
      }
    }
  }
  // One link per neighbouring pair; channels into stage 0's activations and
  // stage 3's gradients are never used.
  ASSERT_EQ(plan.links.size(), 3u);
  EXPECT_EQ(plan.links[1].a, 1);
  EXPECT_EQ(plan.links[1].b, 2);
  EXPECT_EQ(plan.wire_receiver[plan.Channel(false, 0, 5)], -1);
  EXPECT_EQ(plan.wire_receiver[plan.Channel(true, 3, 5)], -1);
  EXPECT_EQ(plan.ChannelName(plan.Channel(true, 2, 7)), "g2.7");
  EXPECT_EQ(plan.ChannelName(plan.Channel(false, 3, 0)), "a3.0");
}

TEST(PlanTest, DualPipeVTurnsInsideTheLastRank) {
  // 8 stages in a V on 4 ranks: rank 3 holds stages 3 and 4, so the
  // activation into stage 4 and the gradient into stage 3 never leave it.
  const Planned p =
      PlanOf(LoadScenario("pp4_tiny.textproto", {"schedule.kind=DUALPIPE_V"}));
  const Plan& plan = p.plan;
  EXPECT_EQ(plan.stages, 8);
  int local = 0;
  for (const PlanStep& s : plan.ranks[3].steps) {
    if (s.input >= 0 && s.input_from == 3) {
      ++local;
      EXPECT_EQ(plan.wire_receiver[s.input], -1);
      EXPECT_EQ(s.stage, s.step.kind == StepKind::kForward ? 4 : 3);
    }
  }
  EXPECT_EQ(local, 2 * 8);  // one activation and one gradient per micro-batch
}

TEST(PlanTest, StaticMemoryAndGradientReduction) {
  const Planned p = PlanOf(LoadScenario("pp4_1f1b_golden.textproto"));
  // The golden run: 14 bytes per parameter, no workspace (golden_test.cc).
  EXPECT_EQ(Total(p.plan.ranks[1].static_bytes), 14 * 33'472);
  for (const RankPlan& r : p.plan.ranks) EXPECT_GE(r.grad_sync_seconds, 0);
}

}  // namespace
}  // namespace stepsim::sim
