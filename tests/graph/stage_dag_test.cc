#include "graph/stage_dag.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

using testing::LoadScenario;

// Bytes live after running the ops of `orders`, one order after the other.
int64_t LiveAfter(const StageDag& dag, const std::vector<std::vector<int>>& orders) {
  int64_t live = 0;
  for (const auto& order : orders) {
    for (int o : order) {
      for (const TensorEvent& e : dag.ops[o].events) {
        live += (e.allocate ? 1 : -1) * dag.tensors[e.tensor].bytes;
      }
    }
  }
  return live;
}

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
    return LiveAfter(*dag, orders);
  };
  EXPECT_EQ(live_after({dag->forward, dag->backward_fused}), 0);
  EXPECT_EQ(live_after({dag->forward, dag->backward, dag->weight}), 0);
  EXPECT_GT(live_after({dag->forward, dag->backward}), 0);
}

// The rise of live bytes within one op above what was live before it.
int64_t PeakRise(const StageDag& dag, const Op& op) {
  int64_t live = 0, peak = 0;
  for (const TensorEvent& e : op.events) {
    live += (e.allocate ? 1 : -1) * dag.tensors[e.tensor].bytes;
    peak = std::max(peak, live);
  }
  return peak;
}

const Op& Named(const StageDag& dag, const std::vector<int>& order, const std::string& name) {
  for (int o : order) {
    if (dag.ops[o].name == name) return dag.ops[o];
  }
  ADD_FAILURE() << name << " not found";
  return dag.ops[order.front()];
}

TEST(StageDagTest, AnAllToAllFreesItsSendBufferBeforeItsOutput) {
  // pp4_tiny stage 1 (layers 2 and 3), TP 2 with sequence parallelism: 32 /
  // 2 = 16 tokens, top-2, hidden 64, BF16. The combine sends 16 * 2 * 64 *
  // 2 = 4,096 B of expert rows, receives as many back (EP 2, balanced), and
  // makes a 16 * 64 * 2 = 2,048 B output. Its input (4,096 B) goes once it
  // is copied into the send buffer, and the send buffer once the rows are
  // in: the op never holds more than one 4,096 B buffer above what it
  // started with, not send + receive + output = 10,240 B.
  const Config c = LoadScenario("pp4_tiny.textproto");
  StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[1]);
  ASSERT_TRUE(dag.ok());
  const Op& combine = Named(*dag, dag->forward, "L3.moe.combine");
  std::vector<std::pair<bool, std::string>> events;
  for (const TensorEvent& e : combine.events) {
    events.emplace_back(e.allocate, dag->tensors[e.tensor].name);
  }
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events[0], std::pair(true, std::string("L3.moe.combine.send")));
  EXPECT_FALSE(events[1].first);  // the input, copied into the send buffer
  EXPECT_EQ(events[2], std::pair(true, std::string("L3.moe.combine.recv")));
  EXPECT_EQ(events[3], std::pair(false, std::string("L3.moe.combine.send")));
  EXPECT_EQ(events[4], std::pair(true, std::string("L3.moe.combine.out")));
  EXPECT_EQ(dag->tensors[combine.events[0].tensor].bytes, 4096);
  EXPECT_EQ(dag->tensors[combine.events[1].tensor].bytes, 4096);
  EXPECT_EQ(dag->tensors[combine.events[2].tensor].bytes, 4096);
  EXPECT_EQ(dag->tensors[combine.events[4].tensor].bytes, 2048);
  EXPECT_EQ(PeakRise(*dag, combine), 4096);
  // In backward the output gradient's copy (4,096 B) and the received rows
  // (4,096 B) are live together, then the rows and the input gradient
  // (4,096 B): 8,192 B, not the 12,288 B of all three.
  EXPECT_EQ(PeakRise(*dag, Named(*dag, dag->backward, "L3.moe.combine")), 8192);
}

TEST(StageDagTest, OnlyGemmsHoldOutputGradientsForW) {
  // The golden tiny GPT's stage 1 (h = 64, 4 heads, MLP 128, s = 32, BF16):
  // the W of each GEMM but fc2 frees its own output gradient, of the GEMM's
  // output size: QKV 2*32*192 = 12,288, projection 2*32*64 = 4,096, fc1
  // 2*32*128 = 8,192. fc2's is the gradient received from stage 2 (the
  // engine's buffer). The LayerNorms compute their weight gradients in B,
  // as the frameworks that split B from W do (graph/stage_dag.cc
  // DefersWeightGrad): their W frees nothing.
  const Config c = LoadScenario("pp4_1f1b_golden.textproto");
  StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[1]);
  ASSERT_TRUE(dag.ok()) << dag.status().message();
  std::map<std::string, int64_t> held;  // W op -> output-gradient bytes it frees
  std::map<std::string, int> frees;     // W op -> tensors it frees
  for (int o : dag->weight) {
    const Op& op = dag->ops[o];
    frees[op.name] = 0;
    for (const TensorEvent& e : op.events) {
      ASSERT_FALSE(e.allocate) << op.name;
      ++frees[op.name];
      const Tensor& t = dag->tensors[e.tensor];
      if (t.category == Category::kOutputGrads) held[op.name] += t.bytes;
    }
  }
  EXPECT_EQ(held, (std::map<std::string, int64_t>{
                      {"L1.attention.qkv_proj", 12'288}, {"L1.attention.o_proj", 4'096},
                      {"L1.mlp.fc1", 8'192}}));
  EXPECT_EQ(frees, (std::map<std::string, int>{{"L1.attention.attn_norm", 0},
                                                {"L1.attention.qkv_proj", 2},
                                                {"L1.attention.o_proj", 2},
                                                {"L1.mlp.mlp_norm", 0},
                                                {"L1.mlp.fc1", 2},
                                                {"L1.mlp.fc2", 1}}));  // its input only
  for (const Tensor& t : dag->tensors) {
    if (t.category == Category::kOutputGrads) {
      EXPECT_GT(t.bytes, 0) << t.name;
    }
  }

  // An output gradient freed by a B is a bug ValidateDag names.
  StageDag early = *dag;
  int moved = -1;
  for (Op& op : early.ops) {
    if (op.kind != OpKind::kBackwardWeight) continue;
    for (TensorEvent& e : op.events) {
      if (moved < 0 && early.tensors[e.tensor].category == Category::kOutputGrads) {
        moved = e.tensor;
        std::erase_if(op.events, [&](const TensorEvent& x) { return x.tensor == moved; });
        break;
      }
    }
  }
  ASSERT_GE(moved, 0);
  early.ops[early.backward.back()].events.push_back({false, moved});
  EXPECT_NE(ValidateDag(early).message().find(
                "tensor " + early.tensors[moved].name + ": an output gradient held for W but "
                "freed by B "),
            std::string::npos)
      << ValidateDag(early).message();
}

TEST(StageDagTest, PytorchSplitBackwardKeepsTheGraphUntilW) {
  // PYTORCH_EAGER retains the autograd graph from B to W
  // (split_backward_retains_graph): after every B of the golden tiny GPT's
  // stage the forward's kept tensors are all still live, and so are the
  // output gradients of every op with weights, norms included: on stage 1
  // attn_norm 2*32*64 = 4,096, QKV 2*32*192 = 12,288, o_proj 4,096,
  // mlp_norm 4,096, fc1 2*32*128 = 8,192 -> 32,768 (fc2's is the received
  // gradient). Stage 3 adds fc2's 4,096 (the final norm follows), the final
  // norm's 4,096 and the head's logits gradient 2*32*256 = 16,384
  // -> 57,344, and B frees what the cross entropy keeps, which hangs from
  // the detached loss only: FP32 log-probabilities 4*32*256 = 32,768, the
  // INT64 labels' storage 8*33 = 264, total_weight 4, loss scale 8
  // -> 33,044.
  const Config c = LoadScenario("pp4_1f1b_golden.textproto", {"conventions.profile=PYTORCH_EAGER"});
  for (const auto& [stage, grads, freed] :
       {std::tuple<int, int64_t, int64_t>{1, 32'768, 0}, {3, 57'344, 33'044}}) {
    StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[stage]);
    ASSERT_TRUE(dag.ok()) << dag.status().message();
    auto live_after = [&](const std::vector<std::vector<int>>& orders) {
      return LiveAfter(*dag, orders);
    };
    const int64_t kept = live_after({dag->forward});
    EXPECT_GT(kept, 0);
    EXPECT_EQ(live_after({dag->forward, dag->backward}), kept + grads - freed) << stage;
    EXPECT_EQ(live_after({dag->forward, dag->backward, dag->weight}), 0) << stage;
    EXPECT_EQ(live_after({dag->forward, dag->backward_fused}), 0) << stage;
    // The fused order, one backward call, keeps nothing from B to W.
    for (int o : dag->backward_fused) {
      EXPECT_EQ(dag->ops[o].name.find("retained"), std::string::npos) << dag->ops[o].name;
    }
    EXPECT_EQ(dag->ops[dag->weight.back()].name, "retained graph");
  }
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

TEST(StageDagTest, ValidationCatchesAFreeThatDoesNotDependOnTheAllocation) {
  // More than 64 ops allocate tensors freed elsewhere, so the dependency
  // check runs several batches of sources; moving one free to an op before
  // the allocation is caught, and only that one.
  const Config c = LoadScenario("pp4_tiny.textproto");
  StatusOr<StageDag> dag = BuildStageDag(c, c.layout.stages[1]);
  ASSERT_TRUE(dag.ok());
  std::vector<int> alloc_op(dag->tensors.size(), -1), free_op(dag->tensors.size(), -1);
  for (size_t o = 0; o < dag->ops.size(); ++o) {
    for (const TensorEvent& e : dag->ops[o].events) {
      (e.allocate ? alloc_op : free_op)[e.tensor] = static_cast<int>(o);
    }
  }
  std::set<int> sources;
  for (size_t t = 0; t < alloc_op.size(); ++t) {
    if (alloc_op[t] != free_op[t]) sources.insert(alloc_op[t]);
  }
  ASSERT_GT(sources.size(), 64u);
  ASSERT_TRUE(ValidateDag(*dag).ok());
  StageDag moved = *dag;
  // The last forward op's first allocation, freed instead by the first
  // forward op, which runs before it.
  const int last = moved.forward.back();
  const TensorEvent t = moved.ops[last].events[0];
  ASSERT_TRUE(t.allocate);
  for (Op& op : moved.ops) {
    std::erase_if(op.events,
                  [&](const TensorEvent& e) { return !e.allocate && e.tensor == t.tensor; });
  }
  moved.ops[moved.forward[0]].events.push_back({false, t.tensor});
  const std::string message = ValidateDag(moved).message();
  EXPECT_EQ(message.substr(0, message.find('\n')),
            "tensor " + moved.tensors[t.tensor].name + ": freed by F " +
                moved.ops[moved.forward[0]].name + ", which does not depend on " +
                OpKindName(moved.ops[last].kind) + " " + moved.ops[last].name +
                " that allocates it");
}

TEST(StageDagTest, AStageEndingWithAGemmLeavesItsReceivedGradientToW) {
  // The golden tiny GPT's stages 0-2 end with fc2, whose weight gradient
  // reads the gradient received from the next stage: in BF16 that is the
  // engine's buffer (kept until W, weight_reads_received_gradient); under
  // FP8 B quantizes it and W holds the copy: per-tensor, the [32, 64] data
  // and its transpose, 2 * 32 * 64, and one FP32 scale: 4,100 B. The last
  // stage receives no gradient.
  const Config bf16 = LoadScenario("pp4_1f1b_golden.textproto");
  const Config fp8 =
      LoadScenario("pp4_1f1b_golden.textproto", {"precision.fp8_recipe=TENSORWISE"});
  for (int stage = 0; stage < 4; ++stage) {
    StatusOr<StageDag> plain = BuildStageDag(bf16, bf16.layout.stages[stage]);
    StatusOr<StageDag> quantized = BuildStageDag(fp8, fp8.layout.stages[stage]);
    ASSERT_TRUE(plain.ok() && quantized.ok());
    EXPECT_EQ(plain->weight_reads_received_gradient, stage < 3) << stage;
    EXPECT_FALSE(quantized->weight_reads_received_gradient) << stage;
    if (stage == 3) continue;
    const std::string fc2 = quantized->ops[quantized->forward.back()].name;
    ASSERT_EQ(fc2, "L" + std::to_string(stage) + ".mlp.fc2");
    int64_t freed_by_w = -1;
    for (int o : quantized->weight) {
      if (quantized->ops[o].name != fc2) continue;
      for (const TensorEvent& e : quantized->ops[o].events) {
        if (!e.allocate && quantized->tensors[e.tensor].name == fc2 + ".grad_output_fp8") {
          freed_by_w = quantized->tensors[e.tensor].bytes;
        }
      }
    }
    EXPECT_EQ(freed_by_w, 2 * 32 * 64 + 4) << stage;
  }
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
