// Step profiles: under ZeRO-3, each layer's gathered weights, prefetched
// one layer ahead, and the waits for what the layer before did not hide.
#include "sim/step_profile.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/test_util.h"

namespace stepsim::sim {
namespace {

using graph::Category;

// The golden dense GPT (hidden 64, FFN 128, MHA with biases) on three
// stages, the middle one holding layers 1 and 2 alone, over DP 2, its step
// times from the cost model (the fixed timing cleared).
graph::Config MiddleOfThree(const char* zero) {
  return testing::LoadScenario(
      "pp4_1f1b_golden.textproto",
      {"parallel.pp=3", "parallel.layout=Et|tt|tL", "parallel.dp=2", zero, "timing.forward_us=",
       "timing.backward_input_us=", "timing.backward_weight_us="});
}

// A layer's parameters: QKV 64*192 + 192, output 64*64 + 64, MLP
// 64*128 + 128 and 128*64 + 64, two LayerNorms 2*128: 33,472. A ZeRO-3
// rank of DP 2 holds half and gathers the other 16,736, 2 B each.
constexpr int64_t kGathered = 16'736 * 2;

// Each layer's compute seconds in a step, by layer.
std::map<int32_t, double> LayerSeconds(const graph::StageDag& dag, const StepProfile& p) {
  std::map<int32_t, double> out;
  for (const Phase& ph : p.phases) out[dag.ops[ph.op].layer] += ph.end - ph.start;
  return out;
}

TEST(StepProfileTest, ZeroThreeWaitsForWhatTheLayerBeforeDidNotHide) {
  const graph::Config c0 = MiddleOfThree("zero.stage=0");
  const graph::Config c3 = MiddleOfThree("zero.stage=3");
  StatusOr<std::vector<StageProfile>> p0 = BuildStageProfiles(c0, CostModel(c0));
  StatusOr<std::vector<StageProfile>> p3 = BuildStageProfiles(c3, CostModel(c3));
  ASSERT_TRUE(p0.ok() && p3.ok());
  // A ring all-gather over 2 ranks in one node: one hop, then the missing
  // half at NVLink bandwidth.
  const double gather = c3.hardware.latency_us * 1e-6 +
                        static_cast<double>(kGathered) / c3.hardware.nvlink_bandwidth;
  ASSERT_GT(gather, 0);
  const StageProfile& a = (*p0)[1];
  const StageProfile& b = (*p3)[1];
  // Forward: layer 1 waits for its whole gather; layer 2's ran during layer
  // 1. Backward: the other way round.
  for (StepKind kind : {StepKind::kForward, StepKind::kBackward}) {
    const bool forward = kind == StepKind::kForward;
    std::map<int32_t, double> layer = LayerSeconds(a.dag, a.For(kind));
    ASSERT_EQ(layer.size(), 2u);
    const double before = layer[forward ? 1 : 2];
    const double waits = gather + std::max(0.0, gather - before);
    EXPECT_NEAR(b.For(kind).duration, a.For(kind).duration + waits, 1e-12) << forward;
    EXPECT_NEAR(b.For(kind).gather_seconds, waits, 1e-12) << forward;
    EXPECT_EQ(a.For(kind).gather_seconds, 0);
  }
  // The first op gathers its layer and prefetches the next; each layer's
  // last op frees its weights.
  const StepProfile& f = b.forward;
  ASSERT_EQ(f.phases.size(), a.forward.phases.size());
  EXPECT_EQ(f.phases.front().gathered_alloc, (std::array<int64_t, 2>{kGathered, kGathered}));
  EXPECT_EQ(f.phases.front().alloc[static_cast<int>(Category::kComm)] -
                a.forward.phases.front().alloc[static_cast<int>(Category::kComm)],
            2 * kGathered);
  int64_t allocated = 0, freed = 0, frees = 0;
  for (const Phase& ph : f.phases) {
    allocated += ph.gathered_alloc[0] + ph.gathered_alloc[1];
    freed += ph.gathered_free;
    frees += ph.gathered_free > 0;
  }
  EXPECT_EQ(allocated, 2 * kGathered);
  EXPECT_EQ(freed, 2 * kGathered);
  EXPECT_EQ(frees, 2);
  EXPECT_EQ(f.phases.back().gathered_free, kGathered);
  // Where ZeRO-0's forward peaks (after the allocations of a phase of
  // layer 2 or later), ZeRO-3 holds layer 2's gathered weights besides.
  EXPECT_GE(f.peak, a.forward.peak + kGathered);
}

TEST(StepProfileTest, FixedTimingsAlreadyHoldTheWaits) {
  // The golden scenario's fixed 100 us forward and 150 us backward stay so
  // under ZeRO-3; the gathered weights still come and go.
  const graph::Config c = testing::LoadScenario(
      "pp4_1f1b_golden.textproto",
      {"parallel.pp=3", "parallel.layout=Et|tt|tL", "parallel.dp=2", "zero.stage=3"});
  StatusOr<std::vector<StageProfile>> p = BuildStageProfiles(c, CostModel(c));
  ASSERT_TRUE(p.ok());
  for (const StageProfile& stage : *p) {
    EXPECT_DOUBLE_EQ(stage.forward.duration, 100e-6);
    EXPECT_DOUBLE_EQ(stage.backward.duration, 150e-6);
    EXPECT_EQ(stage.forward.gather_seconds, 0);
  }
  EXPECT_EQ((*p)[1].forward.phases.front().gathered_alloc,
            (std::array<int64_t, 2>{kGathered, kGathered}));
}

}  // namespace
}  // namespace stepsim::sim
