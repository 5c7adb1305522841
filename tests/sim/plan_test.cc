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

TEST(PlanTest, AnOverlappedPairTakesTheLongerOfComputationAndAllToAll) {
  StepProfile f, b;
  // F: 10 s of which 4 s all-to-all; B: 20 s of which 6 s. Computation
  // 6 + 14 = 20 s on 112 of 132 SMs: 20 * 132 / 112 = 23.571 s, longer than
  // the 4 + 6 = 10 s of all-to-all.
  f.duration = 10, f.comm_seconds = 4;
  b.duration = 20, b.comm_seconds = 6;
  EXPECT_DOUBLE_EQ(OverlappedPairSeconds(f, b, 132, 20), 20.0 * 132 / 112);
  // All-to-all bound: 8 + 8 = 16 s against (2 + 2) * 132 / 112 = 4.71 s.
  f.duration = 10, f.comm_seconds = 8;
  b.duration = 10, b.comm_seconds = 8;
  EXPECT_DOUBLE_EQ(OverlappedPairSeconds(f, b, 132, 20), 16.0);
  // No SMs kept for communication: the computation runs at full speed.
  EXPECT_DOUBLE_EQ(OverlappedPairSeconds(f, b, 132, 0), 16.0);
  f.comm_seconds = b.comm_seconds = 1;
  EXPECT_DOUBLE_EQ(OverlappedPairSeconds(f, b, 132, 0), 18.0);
  // ZeRO-3 waits for gathered weights (3 s of F's 10) are not hidden:
  // max(6 + 9, 1 + 1) + 3 = 18 s.
  f.gather_seconds = 3;
  EXPECT_DOUBLE_EQ(OverlappedPairSeconds(f, b, 132, 0), 18.0);
  b.comm_seconds = 9;  // max(6 + 1, 1 + 9) + 3 = 13 s
  EXPECT_DOUBLE_EQ(OverlappedPairSeconds(f, b, 132, 0), 13.0);
}

TEST(PlanTest, DualPipePairsEachForwardWithTheNextBackwardOfTheOtherChunk) {
  const Planned p = PlanOf(LoadScenario("pp4_tiny.textproto", {"schedule.kind=DUALPIPE"}));
  const graph::Config c = LoadScenario("pp4_tiny.textproto", {"schedule.kind=DUALPIPE"});
  ASSERT_TRUE(c.overlap_forward_backward);  // DualPipe's default
  int pairs = 0;
  for (const RankPlan& rank : p.plan.ranks) {
    const std::vector<PlanStep>& steps = rank.steps;
    for (size_t i = 0; i < steps.size(); ++i) {
      const PlanStep& s = steps[i];
      const bool pairable = i + 1 < steps.size() && s.step.kind == StepKind::kForward &&
                            steps[i + 1].step.kind != StepKind::kForward &&
                            steps[i + 1].step.chunk != s.step.chunk;
      if (!pairable) {
        EXPECT_EQ(s.pair, PlanStep::Pair::kNone) << "rank step " << i;
        continue;
      }
      const PlanStep& next = steps[i + 1];
      ASSERT_EQ(s.pair, PlanStep::Pair::kFirst) << "rank step " << i;
      ASSERT_EQ(next.pair, PlanStep::Pair::kSecond);
      const StepProfile& fp = p.stages[s.stage].forward;
      const StepProfile& bp = p.stages[next.stage].For(next.step.kind);
      EXPECT_GT(fp.comm_seconds, 0);  // EP 2: every MoE layer has its all-to-alls
      EXPECT_DOUBLE_EQ(s.scale, next.scale);
      EXPECT_DOUBLE_EQ(s.duration + next.duration,
                       OverlappedPairSeconds(fp, bp, c.hardware.sm_count, c.communication_sms));
      EXPECT_DOUBLE_EQ(s.duration, fp.duration * s.scale);
      ++pairs;
      ++i;
    }
  }
  EXPECT_GT(pairs, 0);

  // Without the overlap, no step is paired and each takes its own time.
  const Planned apart = PlanOf(LoadScenario(
      "pp4_tiny.textproto", {"schedule.kind=DUALPIPE", "schedule.overlap_forward_backward=false"}));
  for (const RankPlan& rank : apart.plan.ranks) {
    for (const PlanStep& s : rank.steps) {
      EXPECT_EQ(s.pair, PlanStep::Pair::kNone);
      EXPECT_DOUBLE_EQ(s.scale, 1.0);
      EXPECT_DOUBLE_EQ(s.duration, apart.stages[s.stage].For(s.step.kind).duration);
    }
  }
}

TEST(PlanTest, StaticMemoryAndGradientReduction) {
  const Planned p = PlanOf(LoadScenario("pp4_1f1b_golden.textproto"));
  // The golden run: 14 bytes per parameter, no workspace (golden_test.cc).
  EXPECT_EQ(Total(p.plan.ranks[1].static_bytes), 14 * 33'472);
  for (const RankPlan& r : p.plan.ranks) EXPECT_GE(r.grad_sync_seconds, 0);
}

// Under ZeRO-1/2 each rank updates its shard of the weights, then gathers
// all of them: a ring all-gather over DP. The golden GPT's rank 1 holds
// 33,472 parameters (golden_test.cc), 66,944 B in BF16; over DP 4 in one
// node (TP 1: a span of 4 GPUs of 8) at 100 GB/s and 5 us a hop:
//   3 * 5e-6 + 3/4 * 66,944 / 1e11 = 1.5e-5 + 5.0208e-7 = 1.550208e-5 s.
// ZeRO-0 has nothing to gather, ZeRO-3 gathers in the next step's forwards.
TEST(PlanTest, ZeroOneAndTwoGatherTheUpdatedWeightsAfterTheStep) {
  for (int64_t zero : {0, 1, 2, 3}) {
    const Planned p = PlanOf(LoadScenario(
        "pp4_1f1b_golden.textproto",
        {"zero.stage=" + std::to_string(zero), "parallel.dp=4", "hardware.gpus_per_node=8",
         "hardware.nvlink_bandwidth=1e11", "hardware.latency_us=5"}));
    ASSERT_EQ(p.plan.ranks[1].dense_params, 33'472);
    ASSERT_EQ(p.plan.ranks[1].expert_params, 0);
    const double want = zero == 1 || zero == 2 ? 1.550208e-5 : 0.0;
    EXPECT_NEAR(p.plan.ranks[1].param_gather_seconds, want, 1e-15) << "ZeRO-" << zero;
  }
}

// The optimizer step runs over the parameters whose state the rank keeps,
// 30 B each under PAPER_2_4_8 (gradient 4 B read twice, optimizer state 8 B
// read and written, weights 2 B written, master weights 4 B read), at
// 1e12 B/s: rank 1 of the golden GPT (33,472 parameters) steps all of them
// under ZeRO-0, 1,004,160 B in 1.00416e-6 s, and its shard over DP 4 under
// ZeRO >= 1, 8,368 parameters, 251,040 B in 2.5104e-7 s.
TEST(PlanTest, TheOptimizerStepReadsAndWritesTheStateTheRankKeeps) {
  for (int64_t zero : {0, 1, 2, 3}) {
    const Planned p = PlanOf(LoadScenario(
        "pp4_1f1b_golden.textproto",
        {"zero.stage=" + std::to_string(zero), "parallel.dp=4", "hardware.hbm_bandwidth=1e12"}));
    const double want = zero == 0 ? 1.00416e-6 : 2.5104e-7;
    EXPECT_NEAR(p.plan.ranks[1].optimizer_seconds, want, 1e-18) << "ZeRO-" << zero;
  }
}

}  // namespace
}  // namespace stepsim::sim
