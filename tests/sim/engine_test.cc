// The engine on small scenarios. Each test runs in its own process
// (gtest_discover_tests), as SimGrid allows one engine per process.
#include "sim/engine.h"

#include <gtest/gtest.h>

#include "sim/schedules/builtin.h"
#include "tests/test_util.h"

namespace stepsim::sim {
namespace {

using testing::LoadScenario;

SimResult Simulated(const graph::Config& c) {
  StatusOr<Schedule> schedule = BuildSchedule(c);
  EXPECT_TRUE(schedule.ok()) << schedule.status().message();
  StatusOr<SimResult> r = Simulate(c, *schedule, SimOptions{});
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(*r) : SimResult{};
}

// pp4_1f1b_golden: F = 100 us, B = 150 us, W = 50 us, no transfer cost,
// PP 4, m = 8: (m + PP - 1)(F + B + W) = 11 * 300 us = 3,300 us.
// Then every rank steps its optimizer; the last to end is rank 3's, over its
// 49,984 parameters at 30 B each and 3.35e12 B/s (golden_test.cc):
// 1,499,520 / 3.35e12 s = 0.447618 us.
TEST(EngineTest, OneFOneBStepTimeMatchesTheLiterature) {
  const SimResult r = Simulated(LoadScenario("pp4_1f1b_golden.textproto"));
  EXPECT_NEAR(r.compute_end * 1e6, 3300, 1e-6);
  EXPECT_NEAR(r.step_time * 1e6, 3300 + 1'499'520 / 3.35e12 * 1e6, 1e-6);
  // Each rank is busy m (F + B + W) = 2,400 us; the bubble is the rest.
  for (const RankRun& run : r.ranks) EXPECT_NEAR(run.busy * 1e6, 2400, 1e-6);
}

TEST(EngineTest, GPipeStepTimeMatchesTheLiterature) {
  const SimResult r = Simulated(LoadScenario("pp4_1f1b_golden.textproto", {"schedule.kind=GPIPE"}));
  EXPECT_NEAR(r.compute_end * 1e6, 3300, 1e-6);
}

TEST(EngineTest, FixedHopTimeIsExact) {
  const SimResult r = Simulated(LoadScenario("pp4_1f1b_golden.textproto", {"timing.p2p_us=7"}));
  ASSERT_EQ(r.transfers.size(), 2u * 3 * 8);  // 3 hops each way, 8 micro-batches
  for (const Transfer& t : r.transfers) EXPECT_NEAR((t.end - t.start) * 1e6, 7, 1e-9);
}

TEST(EngineTest, NetworkTransferTakesLatencyPlusSizeOverBandwidth) {
  // Without fixed hop times: 4,096 B activations (b s h a = 1*32*64*2) over
  // a 50e9 B/s network link (one GPU per node) with 5 us latency:
  // 5 us + 4096 / 50e9 s = 5.08192 us.
  const SimResult r = Simulated(LoadScenario(
      "pp4_1f1b_golden.textproto",
      {"timing.p2p_us=", "hardware.gpus_per_node=1", "hardware.network_bandwidth=50e9",
       "hardware.latency_us=5"}));
  ASSERT_FALSE(r.transfers.empty());
  for (const Transfer& t : r.transfers) {
    EXPECT_EQ(t.bytes, 4096);
    EXPECT_NEAR((t.end - t.start) * 1e6, 5.08192, 1e-9);
  }
}

TEST(EngineTest, FullRecomputeHoldsPpMinusRankMicroBatchesAtThePeak) {
  // Full recomputation keeps per layer the attention block's input and the
  // MLP block's input, 2bsh each: 2 * 2*1*32*64 = 8,192 B. Stage 0 also
  // keeps the token ids (8 B each: 256 B); stage 3 the loss's final-norm
  // input and head input (4,096 B each) and FP32 logits 4*32*256 = 32,768 B.
  // With a wide MLP (1,024) each rank peaks while recomputing the last MLP
  // block of micro-batch 0, in its first backward: it then holds PP - rank
  // micro-batches, all whole but, on stage 3, micro-batch 0 whose loss
  // tensors (40,960 B) its backward has already released.
  const graph::Config c = LoadScenario("pp4_1f1b_golden.textproto",
                                       {"recompute.policy=FULL", "model.ffn_hidden_size=1024"});
  const SimResult r = Simulated(c);
  const int64_t loss = 4096 + 4096 + 32768;
  const int64_t per_microbatch[4] = {8192 + 256, 8192, 8192, 8192 + loss};
  const int64_t released[4] = {0, 0, 0, loss};
  for (const RankRun& run : r.ranks) {
    const int64_t pp_minus_rank = 4 - run.rank;
    EXPECT_EQ(run.memory.peak.step, "BW0") << run.rank;
    EXPECT_EQ(run.memory.peak.breakdown[static_cast<int>(graph::Category::kActivations)],
              pp_minus_rank * per_microbatch[run.rank] - released[run.rank])
        << "rank " << run.rank << " peak during " << run.memory.peak.op;
    EXPECT_GT(run.memory.peak.breakdown[static_cast<int>(graph::Category::kRecompute)], 0);
    EXPECT_EQ(run.memory.end, run.static_bytes);
  }
}

TEST(EngineTest, ZeroThreeGathersEachLayersWeightsWhileItRuns) {
  // DP 2, ZeRO-3: a rank keeps half of each layer's 33,472 parameters and
  // gathers the other 16,736 (2 B each: 33,472 B) while the layer runs, and
  // reduce-scatters the layer's gradients after each backward. Rank 1 (layer
  // 1 alone) peaks at BW0's first W, which allocates the layer's unsharded
  // gradients (33,472 at 4 B: 133,888 B); its comm then also holds the
  // gathered layer, the received activation of micro-batch 3 and the
  // received gradient of micro-batch 0 (4,096 B each).
  const SimResult r = Simulated(LoadScenario("pp4_1f1b_golden.textproto",
                                             {"parallel.dp=2", "zero.stage=3"}));
  const RankRun& rank1 = r.ranks[1];
  EXPECT_EQ(rank1.memory.peak.step, "BW0");
  EXPECT_EQ(rank1.memory.peak.op, "W L1.mlp.fc2");
  EXPECT_EQ(rank1.memory.peak.breakdown[static_cast<int>(graph::Category::kComm)],
            33'472 + 4'096 + 4'096 + 133'888);
  // Static weights: half of 33,472 parameters at 2 B.
  EXPECT_EQ(rank1.static_bytes[static_cast<int>(graph::Category::kWeights)], 33'472);
  EXPECT_EQ(rank1.memory.end, rank1.static_bytes);
  // The reduction ran inside the backwards: none is left after the step.
  EXPECT_EQ(rank1.grad_sync_seconds, 0);
}

TEST(EngineTest, AnOverlappedPairStartsWithBothInputsAndHandsOnAtItsEnd) {
  // DualPipe runs a forward and the next backward of the other chunk as one
  // pair: the pair waits for both inputs, its two steps run back to back at
  // one scale, and both results leave when the pair ends.
  const SimResult r = Simulated(LoadScenario("pp4_tiny.textproto", {"schedule.kind=DUALPIPE"}));
  int pairs = 0;
  for (const RankRun& run : r.ranks) {
    const std::vector<StepRecord>& steps = run.ledger.steps();
    for (size_t i = 0; i + 1 < steps.size(); ++i) {
      const StepRecord& f = steps[i];
      const StepRecord& b = steps[i + 1];
      if (f.step.kind != StepKind::kForward || b.step.kind == StepKind::kForward ||
          f.step.chunk == b.step.chunk) {
        continue;
      }
      ++pairs;
      EXPECT_LT(f.scale, 1.0) << "EP 2: the all-to-all hides behind computation";
      EXPECT_DOUBLE_EQ(b.scale, f.scale);
      EXPECT_DOUBLE_EQ(b.start, f.End());
      for (const Transfer& t : r.transfers) {
        if (t.to_rank != run.rank || t.from_rank == run.rank) continue;
        // B's gradient was on this rank before the pair's forward began.
        if (t.gradient && t.to_stage == b.stage->stage && t.microbatch == b.step.microbatch) {
          EXPECT_LE(t.end, f.start + 1e-12);
        }
      }
      for (const Transfer& t : r.transfers) {
        if (t.from_rank != run.rank || t.to_rank == run.rank) continue;
        // F's activation leaves when the pair ends, not when F does.
        if (!t.gradient && t.from_stage == f.stage->stage && t.microbatch == f.step.microbatch) {
          EXPECT_GE(t.start, b.End() - 1e-12);
        }
      }
      ++i;
    }
  }
  EXPECT_GT(pairs, 0);
}

TEST(EngineTest, LocalHandOffsHaveNoSendBuffer) {
  // DualPipeV turns on the last rank: chunk 0 hands its output to chunk 1
  // without a wire, so that rank records send buffers only for the
  // transfers that leave it.
  const SimResult r = Simulated(LoadScenario(
      "pp4_1f1b_golden.textproto",
      {"schedule.kind=DUALPIPE_V", "parallel.layout=Et|t|t|t||||L", "batch.num_microbatches=8"}));
  for (const RankRun& run : r.ranks) {
    int64_t wire = 0, local = 0, sends = 0;
    for (const Transfer& t : r.transfers) {
      if (t.from_rank != run.rank) continue;
      (t.to_rank == run.rank ? local : wire) += 1;
    }
    for (const Delta& d : run.ledger.deltas()) sends += d.what.rfind("send ", 0) == 0;
    EXPECT_EQ(sends, 2 * wire) << run.rank;
    if (run.rank == 3) {
      EXPECT_EQ(local, 2 * 8);  // each micro-batch turns both ways
    }
  }
}

TEST(EngineTest, DeadlockIsNamed) {
  // Rank 0 waits for micro-batch 0's gradient before sending micro-batch 1's
  // activation; rank 1 wants micro-batch 1 first.
  const graph::Config c = LoadScenario("pp4_1f1b_golden.textproto",
                                       {"parallel.pp=2", "parallel.layout=Ett|ttL",
                                        "batch.num_microbatches=2"});
  Schedule s;
  s.name = "hand";
  s.pp = 2;
  s.microbatches = 2;
  s.ranks = {{{StepKind::kForward, 0, 0}, {StepKind::kBackwardWeight, 0, 0},
              {StepKind::kForward, 1, 0}, {StepKind::kBackwardWeight, 1, 0}},
             {{StepKind::kForward, 1, 0}, {StepKind::kBackwardWeight, 1, 0},
              {StepKind::kForward, 0, 0}, {StepKind::kBackwardWeight, 0, 0}}};
  ASSERT_TRUE(ValidateSchedule(s).ok());
  SimOptions options;
  options.schedule_from_file = true;
  StatusOr<SimResult> r = Simulate(c, s, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(r.status().message(),
            "deadlock: the schedule cannot complete at 100.000000 us\n"
            "  rank 0: BW0 waits for the gradient of micro-batch 0 from stage 1 (rank 1)\n"
            "  rank 1: F1 waits for the activation of micro-batch 1 from stage 0 (rank 0)");
}

TEST(EngineTest, EventBudgetIsCheckedUpFront) {
  const graph::Config c = LoadScenario("pp4_1f1b_golden.textproto");
  StatusOr<Schedule> s = BuildSchedule(c);
  ASSERT_TRUE(s.ok());
  SimOptions options;
  options.max_events = 100;
  StatusOr<SimResult> r = Simulate(c, *s, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find("more than the budget of 100"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace stepsim::sim
