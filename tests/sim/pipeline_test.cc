// What each schedule does to time and memory, emerging from simulating it
// with fixed op times F = B = W = 100 us per chunk and free hops. The tiny
// GPT of pp4_1f1b_golden gets 8 layers: 4 stages of 2 layers, or 8 stages
// of 1 for the two-chunk schedules. One SimGrid engine per process: one
// test per process.
#include <gtest/gtest.h>

#include "sim/engine.h"
#include "tests/test_util.h"

namespace stepsim::sim {
namespace {

constexpr double kOp = 100;  // F = B = W, microseconds
// Step times here are the pipeline's: until the slowest rank's last step
// ends (SimResult::compute_end), before the optimizer step that follows.

SimResult Simulated(const std::string& kind, const std::string& layout, int64_t microbatches = 8) {
  const graph::Config c = testing::LoadScenario(
      "pp4_1f1b_golden.textproto",
      {"model.num_layers=8", "parallel.layout=" + layout, "schedule.kind=" + kind,
       "timing.forward_us=100", "timing.backward_input_us=100", "timing.backward_weight_us=100",
       "batch.num_microbatches=" + std::to_string(microbatches)});
  StatusOr<Schedule> s = BuildSchedule(c);
  EXPECT_TRUE(s.ok()) << s.status().message();
  StatusOr<SimResult> r = Simulate(c, *s, SimOptions{});
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(*r) : SimResult{};
}

constexpr char kFour[] = "Ett|tt|tt|ttL";
constexpr char kEight[] = "Et|t|t|t|t|t|t|tL";

// (micro-batch, chunk) pairs whose forward started and backward had not
// finished at the rank's peak.
int64_t InFlightAtPeak(const RankRun& run) {
  const int64_t at = std::llround(run.memory.peak.time * 1e9);
  int64_t n = 0;
  for (const StepRecord& r : run.ledger.steps()) {
    const int64_t start = std::llround(r.start * 1e9);
    const int64_t end = std::llround((r.start + r.stage->For(r.step.kind).duration) * 1e9);
    if (r.step.kind == StepKind::kForward && start <= at) ++n;
    if ((r.step.kind == StepKind::kBackward || r.step.kind == StepKind::kBackwardWeight) &&
        end <= at) {
      --n;
    }
  }
  return n;
}

TEST(PipelineTest, OneFOneB) {
  // (m + PP - 1)(F + B + W) = 11 * 300 us; rank r peaks holding PP - r.
  const SimResult r = Simulated("ONE_F_ONE_B", kFour);
  EXPECT_NEAR(r.compute_end * 1e6, (8 + 4 - 1) * 3 * kOp, 1e-6);
  for (const RankRun& run : r.ranks) EXPECT_EQ(InFlightAtPeak(run), 4 - run.rank);
}

TEST(PipelineTest, GPipe) {
  // (m + PP - 1)(F + B + W); every rank holds all m micro-batches.
  const SimResult r = Simulated("GPIPE", kFour);
  EXPECT_NEAR(r.compute_end * 1e6, (8 + 4 - 1) * 3 * kOp, 1e-6);
  for (const RankRun& run : r.ranks) EXPECT_EQ(InFlightAtPeak(run), 8);
}

TEST(PipelineTest, ZeroBubbleH1) {
  // m(F + B + W) + (PP - 1)(F + B - W) = 8 * 300 + 3 * 100 us; no rank holds
  // more than under 1F1B.
  const SimResult r = Simulated("ZB_H1", kFour);
  EXPECT_NEAR(r.compute_end * 1e6, 8 * 3 * kOp + 3 * kOp, 1e-6);
  for (const RankRun& run : r.ranks) EXPECT_LE(InFlightAtPeak(run), 4 - run.rank);
}

TEST(PipelineTest, ZeroBubbleH2) {
  // No bubble inside a stage once m >= 2PP - 1: each rank is busy from its
  // first forward to its last W; stage 0 holds up to 2PP - 1 = 7.
  const SimResult r = Simulated("ZB_H2", kFour);
  for (const RankRun& run : r.ranks) {
    const double first = run.ledger.steps().front().start;
    EXPECT_NEAR((run.compute_end - first) * 1e6, 8 * 3 * kOp, 1e-6) << run.rank;
    EXPECT_LE(InFlightAtPeak(run), 2 * 4 - 1);
  }
  EXPECT_EQ(InFlightAtPeak(r.ranks[0]), 7);
}

TEST(PipelineTest, InterleavedShrinksTheBubbleByVpp) {
  // With 2 chunks of one layer each per rank, per-chunk F = B = W = 100 us:
  // (m V + PP - 1)(F + B + W) = (16 + 3) * 300 us. The same work as 1F1B
  // with 200 us per op, whose bubble (PP - 1) * 600 us is twice this one's
  // (PP - 1) * 300 us.
  const SimResult r = Simulated("INTERLEAVED_ONE_F_ONE_B", kEight);
  EXPECT_NEAR(r.compute_end * 1e6, (16 + 3) * 3 * kOp, 1e-6);
  const double bubble = r.compute_end * 1e6 - 16 * 3 * kOp;
  EXPECT_NEAR(bubble, (4 - 1) * 2 * 3 * kOp / 2, 1e-6);
  // Rank 0 holds PP + (PP - 1)/VPP = 5.5 stage-equivalents: 11 chunk-passes.
  EXPECT_EQ(InFlightAtPeak(r.ranks[0]), 11);
}

TEST(PipelineTest, DualPipeHoldsAtMostPpPlusOneWithTwiceTheWeights) {
  const SimResult r = Simulated("DUALPIPE", kFour, 16);
  for (const RankRun& run : r.ranks) EXPECT_LE(InFlightAtPeak(run), 4 + 1) << run.rank;
  EXPECT_EQ(InFlightAtPeak(r.ranks[0]), 4 + 1);
  // Rank r holds stage r and stage 3 - r, so twice a 1F1B rank's weights on
  // average. Parameters: a layer 33,472; stage 0 adds the embedding 16,384
  // (83,328 in all); stage 3 the final norm 128 and the tied head's copy
  // 16,384 (83,456); stages 1 and 2 two layers (66,944). 2 B each.
  constexpr int kWeights = static_cast<int>(graph::Category::kWeights);
  EXPECT_EQ(r.ranks[0].static_bytes[kWeights], 2 * (83'328 + 83'456));
  EXPECT_EQ(r.ranks[3].static_bytes[kWeights], 2 * (83'328 + 83'456));
  EXPECT_EQ(r.ranks[1].static_bytes[kWeights], 2 * (66'944 + 66'944));
  EXPECT_EQ(r.ranks[2].static_bytes[kWeights], 2 * (66'944 + 66'944));
}

TEST(PipelineTest, DualPipeVHoldsAtMostPpPlusOne) {
  // 2PP stages of one layer: PP + 1 = 5 stage-equivalents = 10 chunk-passes.
  const SimResult r = Simulated("DUALPIPE_V", kEight, 8);
  for (const RankRun& run : r.ranks) EXPECT_LE(InFlightAtPeak(run), 2 * (4 + 1)) << run.rank;
}

}  // namespace
}  // namespace stepsim::sim
