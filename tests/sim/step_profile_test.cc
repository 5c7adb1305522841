// Step profiles: under ZeRO-3, each layer's gathered weights, prefetched
// one layer ahead, and the waits for what the layer before did not hide;
// under ZeRO-2/3, each layer's unsharded gradients until their
// reduce-scatter completes, and the step's wait for the last one.
#include "sim/step_profile.h"

#include <gtest/gtest.h>

#include <map>

#include "graph/params.h"
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

// The golden layer's 33,472 parameters (above), their gradients in the
// scenario's gradient precision, all non-expert, over DP 2 in one node.
TEST(StepProfileTest, ZeroTwoReduceScattersEachLayerAfterItsWeightGradients) {
  const graph::Config c0 = MiddleOfThree("zero.stage=0");
  const graph::Config c1 = MiddleOfThree("zero.stage=1");
  const graph::Config c2 = MiddleOfThree("zero.stage=2");
  StatusOr<std::vector<StageProfile>> p0 = BuildStageProfiles(c0, CostModel(c0));
  StatusOr<std::vector<StageProfile>> p1 = BuildStageProfiles(c1, CostModel(c1));
  StatusOr<std::vector<StageProfile>> p2 = BuildStageProfiles(c2, CostModel(c2));
  ASSERT_TRUE(p0.ok() && p1.ok() && p2.ok());
  const int64_t gradients = 33'472 * c2.precision.gradient;
  // A ring reduce-scatter over 2 ranks: one hop, then half the bytes.
  const double rs = c2.hardware.latency_us * 1e-6 +
                    0.5 * static_cast<double>(gradients) / c2.hardware.nvlink_bandwidth;
  const StageProfile& a = (*p0)[1];
  const StageProfile& b = (*p2)[1];
  // ZeRO-1 reduces after the step; forward and B compute no weight
  // gradient: their profiles are ZeRO-0's.
  EXPECT_EQ((*p1)[1].backward_weight.duration, a.backward_weight.duration);
  for (StepKind kind : {StepKind::kForward, StepKind::kBackward}) {
    EXPECT_EQ(b.For(kind).duration, a.For(kind).duration);
    EXPECT_EQ(b.For(kind).peak, a.For(kind).peak);
  }
  // BW runs layer 2's B and W, then layer 1's. Layer 2's reduce-scatter
  // starts when its last W ends (t2); at the step's last op (layer 1's
  // last W, at T) the compute waits for it, then issues layer 1's and waits
  // for that too.
  const StepProfile& bw0 = a.backward_weight;
  double t2 = -1;
  for (const Phase& ph : bw0.phases) {
    const graph::Op& op = a.dag.ops[ph.op];
    if (op.layer == 2 && op.kind == graph::OpKind::kBackwardWeight) t2 = ph.end;
  }
  ASSERT_GT(t2, 0);
  const double compute_end = bw0.duration;
  const double last = std::max(compute_end, t2 + rs) + rs;
  const StepProfile& bw = b.backward_weight;
  EXPECT_NEAR(bw.duration, last, 1e-12);
  EXPECT_NEAR(bw.reduce_seconds, last - compute_end, 1e-12);
  // Each layer's gradients come at its first W and go once reduced, both
  // at the step's last op (where layer 1 waits for layer 2's).
  ASSERT_EQ(bw.phases.size(), bw0.phases.size());
  int64_t allocated = 0;
  std::vector<int> allocs, frees;
  for (size_t i = 0; i < bw.phases.size(); ++i) {
    const Phase& ph = bw.phases[i];
    allocated += ph.reduced_alloc;
    if (ph.reduced_alloc > 0) {
      EXPECT_EQ(ph.reduced_alloc, gradients);
      allocs.push_back(static_cast<int>(i));
    }
    if (ph.reduced_free > 0) frees.push_back(static_cast<int>(i));
    EXPECT_EQ(ph.alloc[static_cast<int>(Category::kComm)] -
                  bw0.phases[i].alloc[static_cast<int>(Category::kComm)],
              ph.reduced_alloc);
  }
  EXPECT_EQ(allocated, 2 * gradients);
  ASSERT_EQ(allocs.size(), 2u);
  EXPECT_EQ(a.dag.ops[bw.phases[allocs[0]].op].layer, 2);
  EXPECT_EQ(a.dag.ops[bw.phases[allocs[0]].op].kind, graph::OpKind::kBackwardWeight);
  EXPECT_EQ(a.dag.ops[bw.phases[allocs[1]].op].layer, 1);
  EXPECT_EQ(frees, std::vector<int>{static_cast<int>(bw.phases.size()) - 1});
  EXPECT_EQ(bw.phases.back().reduced_free, 2 * gradients);
  // Nothing waits before the last op: phases end as ZeRO-0's.
  for (size_t i = 0; i + 1 < bw.phases.size(); ++i) {
    EXPECT_EQ(bw.phases[i].end, bw0.phases[i].end) << i;
  }
  // Under DP 1 nothing is sharded, so nothing is reduce-scattered.
  const graph::Config one = testing::LoadScenario(
      "pp4_1f1b_golden.textproto",
      {"parallel.pp=3", "parallel.layout=Et|tt|tL", "zero.stage=2", "timing.forward_us=",
       "timing.backward_input_us=", "timing.backward_weight_us="});
  StatusOr<std::vector<StageProfile>> p_one = BuildStageProfiles(one, CostModel(one));
  ASSERT_TRUE(p_one.ok());
  for (const Phase& ph : (*p_one)[1].backward_weight.phases) EXPECT_EQ(ph.reduced_alloc, 0);
  EXPECT_EQ((*p_one)[1].backward_weight.reduce_seconds, 0);
}

// Three groups on the first of two stages (backward order: layer 1, layer
// 0, the embedding), each reduce-scattered over DP 2: a group's last W
// waits for the reduce-scatter in flight, frees its gradients and issues
// its own, so the compute after it shifts by the wait.
TEST(StepProfileTest, ZeroTwoWaitsForTheReduceScatterInFlight) {
  auto load = [](const char* zero) {
    return testing::LoadScenario(
        "pp4_1f1b_golden.textproto",
        {"parallel.pp=2", "parallel.layout=Ett|ttL", "parallel.dp=2", zero, "timing.forward_us=",
         "timing.backward_input_us=", "timing.backward_weight_us="});
  };
  const graph::Config c0 = load("zero.stage=0"), c2 = load("zero.stage=2");
  StatusOr<std::vector<StageProfile>> p0 = BuildStageProfiles(c0, CostModel(c0));
  StatusOr<std::vector<StageProfile>> p2 = BuildStageProfiles(c2, CostModel(c2));
  ASSERT_TRUE(p0.ok() && p2.ok());
  const StepProfile& a = (*p0)[0].backward_weight;
  const StepProfile& b = (*p2)[0].backward_weight;
  const graph::StageDag& dag = (*p0)[0].dag;
  // Where each group's last W ends under ZeRO-0, and what it reduces.
  std::map<std::string, double> last_w;
  std::map<std::string, size_t> last_phase;
  for (size_t i = 0; i < a.phases.size(); ++i) {
    const graph::Op& op = dag.ops[a.phases[i].op];
    if (op.kind != graph::OpKind::kBackwardWeight) continue;
    const std::string key = op.layer >= 0 ? std::to_string(op.layer) : op.module;
    last_w[key] = a.phases[i].end;
    last_phase[key] = i;
  }
  ASSERT_EQ(last_w.size(), 3u);
  ASSERT_TRUE(last_w.count("embedding"));
  const double link = c2.hardware.nvlink_bandwidth, latency = c2.hardware.latency_us * 1e-6;
  auto rs = [&](int64_t params) {
    return latency + 0.5 * static_cast<double>(params * c2.precision.gradient) / link;
  };
  const int64_t layer = 33'472;
  StatusOr<graph::ModelParams> params = graph::CountParams(c2);
  ASSERT_TRUE(params.ok());
  const int64_t embedding = params->stages[0].device_dense - 2 * layer;
  ASSERT_GT(embedding, 0);
  // Layer 1 issues at t1; layer 0 waits until t1 + rs(layer) if its last W
  // ends before; the embedding's last W (the step's last op) comes as much
  // later, waits for layer 0's reduce-scatter, then for its own.
  const double t1 = last_w["1"], t0 = last_w["0"], te = last_w["embedding"];
  const double issue0 = std::max(t0, t1 + rs(layer));
  ASSERT_GT(issue0, t0);  // the tiny layers compute faster than they reduce
  const double issue_e = std::max(issue0 + (te - t0), issue0 + rs(layer));
  EXPECT_NEAR(b.duration, issue_e + rs(embedding), 1e-12);
  EXPECT_NEAR(b.reduce_seconds, b.duration - a.duration, 1e-12);
  // Layer 1's gradients go at layer 0's last W, the others at the end.
  EXPECT_EQ(b.phases[last_phase["0"]].reduced_free, layer * c2.precision.gradient);
  EXPECT_NEAR(b.phases[last_phase["0"]].end, issue0, 1e-12);
  EXPECT_EQ(b.phases.back().reduced_free, (layer + embedding) * c2.precision.gradient);
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
