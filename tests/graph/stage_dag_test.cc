#include "graph/stage_dag.h"

#include <gtest/gtest.h>

#include <tuple>

#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

using testing::LoadScenario;

TEST(StageDagTest, EveryShippedScenarioBuildsValidDags) {
  for (const char* name : {"deepseek_v3_paper.textproto", "deepseek_v3.textproto",
                           "deepseek_v2.textproto", "pp4_tiny.textproto"}) {
    const Config c = LoadScenario(name);
    for (const Stage& stage : c.layout.stages) {
      StatusOr<StageDag> dag = BuildStageDag(c, stage);
      ASSERT_TRUE(dag.ok()) << name << " stage " << stage.stage << ": "
                            << dag.status().message();
    }
  }
}

TEST(StageDagTest, OrdersAreForwardThenReverse) {
  const Config c = LoadScenario("pp4_tiny.textproto");
  StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[1]);
  ASSERT_TRUE(dag.ok());
  EXPECT_EQ(dag->ops[dag->forward.front()].name, "L2.mla.attn_norm");
  EXPECT_EQ(dag->ops[dag->backward.front()].name, "L3.moe.combine");
  EXPECT_EQ(dag->ops[dag->backward.back()].name, "L2.mla.attn_norm");
  // Every op runs exactly once in the fused order and in forward.
  EXPECT_EQ(dag->forward.size() + dag->backward_fused.size(), dag->ops.size());
  EXPECT_EQ(dag->backward.size() + dag->weight.size(), dag->backward_fused.size());
}

TEST(StageDagTest, DeferredWeightGradientsHoldTheirTensors) {
  // Running every B first and every W later (zero-bubble) must end with
  // nothing live, and hold more at the end of B than the fused order.
  const Config c = LoadScenario("pp4_tiny.textproto");
  StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[1]);
  ASSERT_TRUE(dag.ok());
  auto live_after = [&](const std::vector<std::vector<int>>& orders) {
    int64_t live = 0;
    for (const auto& order : orders) {
      for (int o : order) {
        for (const TensorEvent& e : dag->ops[o].events) {
          live += (e.allocate ? 1 : -1) * dag->tensors[e.tensor].bytes;
        }
      }
    }
    return live;
  };
  EXPECT_EQ(live_after({dag->forward, dag->backward_fused}), 0);
  EXPECT_EQ(live_after({dag->forward, dag->backward, dag->weight}), 0);
  EXPECT_GT(live_after({dag->forward, dag->backward}), 0);
}

TEST(StageDagTest, RecomputeOpsComeBeforeTheirBackward) {
  // The paper recomputes block by block, Megatron layer by layer.
  for (const auto& [profile, first, count] :
       std::vector<std::tuple<std::string, std::string, int>>{
           {"PAPER", "R:L3.moe", 4}, {"MEGATRON_CORE", "R:L3", 2}}) {
    const Config c = LoadScenario("pp4_tiny.textproto",
                                  {"recompute.policy=FULL", "conventions.profile=" + profile});
    StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[1]);
    ASSERT_TRUE(dag.ok());
    // The first backward op is the recompute of the last unit (layer 3).
    EXPECT_EQ(dag->ops[dag->backward.front()].kind, OpKind::kRecompute);
    EXPECT_EQ(dag->ops[dag->backward.front()].name, first) << profile;
    int recomputes = 0;
    for (const Op& op : dag->ops) recomputes += op.kind == OpKind::kRecompute;
    EXPECT_EQ(recomputes, count) << profile;  // two layers
  }
}

TEST(StageDagTest, ValidationNamesACycle) {
  const Config c = LoadScenario("pp4_tiny.textproto");
  StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[3]);
  ASSERT_TRUE(dag.ok());
  StageDag broken = *dag;
  // Make the first forward op depend on the second: F0 -> F1 -> F0.
  boost::add_edge(broken.forward[1], broken.forward[0], broken.graph);
  Status s = ValidateDag(broken);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().substr(0, s.message().find('\n')),
            "cycle: F L6.mla.attn_norm -> F L6.mla.down_proj -> F L6.mla.attn_norm");
}

TEST(StageDagTest, ValidationCatchesLeaksAndDoubleFrees) {
  const Config c = LoadScenario("pp4_tiny.textproto");
  StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[3]);
  ASSERT_TRUE(dag.ok());
  StageDag leak = *dag;
  leak.tensors.push_back({"orphan", 10, Category::kActivations});
  leak.ops[leak.forward[0]].events.push_back({true, static_cast<int32_t>(leak.tensors.size() - 1)});
  EXPECT_EQ(ValidateDag(leak).message(),
            "tensor orphan: allocated 1 and freed 0 times (expected once each)");

  StageDag early = *dag;
  // Free a kept tensor in the forward op that allocates it.
  const TensorEvent kept = early.ops[early.forward[0]].events[0];
  ASSERT_TRUE(kept.allocate);
  for (Op& op : early.ops) {
    std::erase_if(op.events, [&](const TensorEvent& e) {
      return !e.allocate && e.tensor == kept.tensor;
    });
  }
  early.ops[early.forward[0]].events.push_back({false, kept.tensor});
  EXPECT_EQ(ValidateDag(early).message(),
            "tensor L6.mla.attn_norm.input: kept for backward but freed by F L6.mla.attn_norm");
}

TEST(StageDagTest, DotNamesEveryOp) {
  const Config c = LoadScenario("pp4_tiny.textproto");
  StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[3]);
  ASSERT_TRUE(dag.ok());
  const std::string dot = DagToDot(*dag);
  EXPECT_EQ(dot.substr(0, 10), "digraph G ");
  EXPECT_NE(dot.find("[label=\"F L6.mla.attn_norm\", color=steelblue]"), std::string::npos);
  EXPECT_NE(dot.find("[label=\"W L7.moe.router\", color=darkorange]"), std::string::npos);
  EXPECT_NE(dot.find("->"), std::string::npos);
}

}  // namespace
}  // namespace stepsim::graph
