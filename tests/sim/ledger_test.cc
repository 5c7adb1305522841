// The ledger replays steps and single deltas in time order and finds the
// peak. Profiles here are written by hand.
#include "sim/ledger.h"

#include <gtest/gtest.h>

#include <random>

namespace stepsim::sim {
namespace {

constexpr int kAct = static_cast<int>(graph::Category::kActivations);
constexpr int kComm = static_cast<int>(graph::Category::kComm);
constexpr int kWork = static_cast<int>(graph::Category::kWorkspace);

// A stage whose forward keeps 100 B of activations with a 50 B transient
// output, and whose BW allocates a 30 B gradient then frees everything.
StageProfile MakeStage() {
  StageProfile s;
  graph::Op f;
  f.name = "f";
  f.kind = graph::OpKind::kForward;
  graph::Op b = f;
  b.name = "b";
  b.kind = graph::OpKind::kBackwardInput;
  s.dag.ops = {f, b};
  Phase fp;
  fp.op = 0;
  fp.end = 1.0;
  fp.alloc[kAct] = 100;
  fp.alloc[kWork] = 50;
  fp.free[kWork] = 50;
  s.forward.phases = {fp};
  s.forward.duration = 1.0;
  s.forward.net[kAct] = 100;
  s.forward.peak = 150;
  s.forward.peak_phase = 0;
  s.forward.at_peak[kAct] = 100;
  s.forward.at_peak[kWork] = 50;
  Phase bp;
  bp.op = 1;
  bp.end = 2.0;
  bp.alloc[kWork] = 30;
  bp.free[kWork] = 30;
  bp.free[kAct] = 100;
  s.backward_weight.phases = {bp};
  s.backward_weight.duration = 2.0;
  s.backward_weight.net[kAct] = -100;
  s.backward_weight.peak = 30;
  s.backward_weight.peak_phase = 0;
  s.backward_weight.at_peak[kWork] = 30;
  return s;
}

TEST(LedgerTest, PeakOfTwoForwardsThenBackwards) {
  const StageProfile stage = MakeStage();
  Bytes initial{};
  initial[0] = 1000;  // weights
  Ledger ledger(initial);
  ledger.AddStep({0.0, &stage, {StepKind::kForward, 0, 0}});
  ledger.AddStep({1.0, &stage, {StepKind::kForward, 1, 0}});
  ledger.AddStep({2.0, &stage, {StepKind::kBackwardWeight, 0, 0}});
  ledger.AddStep({4.0, &stage, {StepKind::kBackwardWeight, 1, 0}});
  // Second forward: 1000 + 100 (F0 kept) + 150 = 1250 at t = 1.
  const LedgerResult r = ledger.Replay();
  EXPECT_EQ(r.peak.total, 1250);
  EXPECT_DOUBLE_EQ(r.peak.time, 1.0);
  EXPECT_EQ(r.peak.step, "F1");
  EXPECT_EQ(r.peak.op, "F f");
  EXPECT_EQ(r.peak.breakdown[kAct], 200);
  EXPECT_EQ(r.end, initial);
}

TEST(LedgerTest, DeltaInsideAStepIsInterleaved) {
  const StageProfile stage = MakeStage();
  Ledger ledger(Bytes{});
  ledger.AddStep({0.0, &stage, {StepKind::kForward, 0, 0}});
  ledger.AddStep({1.0, &stage, {StepKind::kBackwardWeight, 0, 0}});
  // A 500 B buffer arrives during the backward (t = 2) and leaves at 10.
  ledger.AddDelta({2.0, graph::Category::kComm, 500, "recv", 3, 0});
  ledger.AddDelta({10.0, graph::Category::kComm, -500, "recv", 3, 1});
  // During BW: 100 kept + 30 gradient from t = 1; the buffer arrives at
  // t = 2 before the gradient is freed at t = 3: 630.
  const LedgerResult r = ledger.Replay();
  EXPECT_EQ(r.peak.total, 630);
  EXPECT_DOUBLE_EQ(r.peak.time, 2.0);
  EXPECT_EQ(r.peak.op, "recv");
  EXPECT_EQ(r.peak.breakdown[kComm], 500);
  EXPECT_EQ(r.end, Bytes{});
}

TEST(LedgerTest, ArrivalBeforeConsumptionAtOneInstant) {
  // A buffer that arrives and is consumed when a step starts: it never adds
  // to the step's own peak.
  const StageProfile stage = MakeStage();
  Ledger ledger(Bytes{});
  ledger.AddDelta({5.0, graph::Category::kComm, -40, "consume", 0, 1});  // recorded first
  ledger.AddDelta({5.0, graph::Category::kComm, 40, "arrive", 0, 0});
  ledger.AddStep({5.0, &stage, {StepKind::kForward, 0, 0}});
  ledger.AddStep({6.0, &stage, {StepKind::kBackwardWeight, 0, 0}});
  const LedgerResult r = ledger.Replay();
  EXPECT_EQ(r.peak.total, 150);
  EXPECT_EQ(r.peak.op, "F f");
}

TEST(LedgerTest, OnChangeSeesEveryEventAndTheSamePeak) {
  const StageProfile stage = MakeStage();
  Ledger ledger(Bytes{});
  ledger.AddStep({0.0, &stage, {StepKind::kForward, 0, 0}});
  ledger.AddStep({1.0, &stage, {StepKind::kBackwardWeight, 0, 0}});
  std::vector<std::pair<double, int64_t>> seen;
  const LedgerResult r = ledger.Replay([&](double t, const Bytes& live) {
    int64_t total = 0;
    for (int64_t b : live) total += b;
    seen.emplace_back(t, total);
  });
  // F: +150 at 0, -50 at 1; BW: +30 at 1, -130 at 3.
  const std::vector<std::pair<double, int64_t>> expected = {
      {0.0, 150}, {1.0, 100}, {1.0, 130}, {3.0, 0}};
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(r.peak.total, 150);
  EXPECT_EQ(r.peak.total, ledger.Replay().peak.total);
}


// A stage whose forward has `n` ops with random allocations and frees
// (some empty), for comparing the indexed replay with the event by event one.
StageProfile RandomStage(int n, std::mt19937& rng) {
  StageProfile s;
  std::uniform_int_distribution<int64_t> bytes(0, 1000);
  std::uniform_int_distribution<int> pick(0, 3);
  double t = 0;
  for (int i = 0; i < n; ++i) {
    graph::Op op;
    op.name = "op" + std::to_string(i);
    op.kind = graph::OpKind::kForward;
    s.dag.ops.push_back(op);
    Phase ph;
    ph.op = i;
    ph.start = t;
    t += pick(rng) == 0 ? 0.0 : 1.0;  // some ops take no time
    ph.end = t;
    if (pick(rng) != 0) ph.alloc[kAct] = bytes(rng);
    if (pick(rng) != 0) ph.alloc[kWork] = bytes(rng);
    ph.free[kWork] = ph.alloc[kWork];  // transient output
    s.forward.phases.push_back(ph);
    for (int k = 0; k < graph::kNumCategories; ++k) s.forward.net[k] += ph.alloc[k] - ph.free[k];
  }
  s.forward.duration = t;
  // The profile's own peak, as BuildStageProfiles computes it.
  int64_t level = 0;
  Bytes cum{};
  for (size_t i = 0; i < s.forward.phases.size(); ++i) {
    const Phase& ph = s.forward.phases[i];
    for (int k = 0; k < graph::kNumCategories; ++k) cum[k] += ph.alloc[k];
    level = Total(cum);
    if (level > s.forward.peak) {
      s.forward.peak = level;
      s.forward.peak_phase = static_cast<int>(i);
      s.forward.at_peak = cum;
    }
    for (int k = 0; k < graph::kNumCategories; ++k) cum[k] -= ph.free[k];
  }
  return s;
}

TEST(LedgerTest, IndexedReplayMatchesEventByEvent) {
  // Random steps with deltas inside every one of them (on op boundaries
  // too, where the order rules matter): the report's replay, which jumps
  // over runs of ops, finds what visiting every event finds.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const StageProfile stage = RandomStage(40 + trial, rng);
    const double d = stage.forward.duration;
    Ledger ledger(Bytes{});
    std::uniform_int_distribution<int64_t> bytes(1, 3000);
    std::uniform_int_distribution<int> offset(0, static_cast<int>(2 * d));
    for (int i = 0; i < 12; ++i) {
      const double start = i * d;
      ledger.AddStep({start, &stage, {StepKind::kForward, i, 0}});
      for (int j = 0; j < 3; ++j) {
        const double at = start + 0.5 * offset(rng);  // whole and half op boundaries
        const int64_t b = bytes(rng);
        ledger.AddDelta({at, graph::Category::kComm, b, "in" + std::to_string(j), i, j % 3});
        ledger.AddDelta({at + 0.5, graph::Category::kComm, -b, "out", i, 2});
      }
    }
    int64_t visits = 0;
    const LedgerResult slow = ledger.ReplayChanges([&](const Ledger::Change&) { ++visits; });
    const LedgerResult fast = ledger.Replay();
    EXPECT_EQ(fast.peak.total, slow.peak.total) << trial;
    EXPECT_EQ(fast.peak.time, slow.peak.time) << trial;
    EXPECT_EQ(fast.peak.op, slow.peak.op) << trial;
    EXPECT_EQ(fast.peak.step, slow.peak.step) << trial;
    EXPECT_EQ(fast.peak.breakdown, slow.peak.breakdown) << trial;
    EXPECT_EQ(fast.end, slow.end) << trial;
    EXPECT_EQ(slow.events, visits) << trial;
  }
}

TEST(LedgerTest, ReplayChangesTellsWhatChangedMemory) {
  const StageProfile stage = MakeStage();
  Ledger ledger(Bytes{});
  ledger.AddStep({0.0, &stage, {StepKind::kForward, 0, 0}});
  ledger.AddDelta({0.5, graph::Category::kComm, 7, "recv", 1, 0});
  std::vector<std::string> seen;
  ledger.ReplayChanges([&](const Ledger::Change& c) {
    if (c.delta != nullptr) {
      seen.push_back(c.delta->what + " " + std::to_string(Total(*c.live)));
    } else {
      seen.push_back(stage.dag.ops[c.phase->op].name + (c.free ? " free " : " alloc ") +
                     StepName(c.step->step) + " " + std::to_string(Total(*c.live)));
    }
  });
  // F: +150 at 0, the buffer +7 at 0.5, the transient -50 at 1.
  const std::vector<std::string> expected = {"f alloc F0 150", "recv 157", "f free F0 107"};
  EXPECT_EQ(seen, expected);
}

}  // namespace
}  // namespace stepsim::sim
