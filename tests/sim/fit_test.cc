// stepsim fit: the space it enumerates, bounds that are bounds, and a
// search that finds exactly the K fastest configurations that fit, as
// simulating every candidate would.
#include "sim/fit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>

#include "sim/cost_model.h"
#include "sim/fit_bound.h"
#include "sim/sweep_rows.h"
#include "tests/test_util.h"
#include "traces/run_report.h"

namespace stepsim::sim {
namespace {

// The tiny MoE model on a device of 1.4 MB without workspace: its ranks
// peak at 1.2-1.5 MB, so some layouts fit and others do not.
Scenario Tiny() {
  // A CPU "device" holds no CUDA library workspaces (tens of MiB), so a
  // capacity of 1.4 MB separates what fits from what does not.
  return testing::ReadScenario("pp4_tiny.textproto",
                               {"hardware.gpu=CPU", "hardware.hbm_bytes=1400000",
                                "hardware.comm_workspace_bytes=0"});
}

FitSpace SmallSpace() {
  FitSpace space;
  space.gpus = 16;
  space.global_batch = 32;
  space.top = 5;
  space.pp = {2, 4};
  space.tp = {1, 2};
  space.cp = {1};
  space.ep = {1, 2};
  space.etp = {1};
  space.zero = {0, 3};
  space.mbs = {1, 2};
  space.schedules = {ONE_F_ONE_B, GPIPE, ZB_H1};
  space.recompute = {{NONE, {}}, {FULL, {}}};
  return space;
}

TEST(FitTest, EnumeratesLayoutsThatUseTheGpusAndKeepTheBatch) {
  const Scenario base = FitBase(Tiny());
  StatusOr<graph::Config> config = graph::Resolve(base);
  ASSERT_TRUE(config.ok());
  StatusOr<FitCandidates> fit = EnumerateFit(base, *config, SmallSpace());
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  // PP x TP: (2,1) (2,2) (4,1) (4,2), DP = 16 / (PP*TP) = 8, 4, 4, 2; each
  // with 2 EP x 2 ZeRO x 2 micro-batch sizes x 2 recompute x 3 schedules.
  EXPECT_EQ(fit->candidates.size(), 4u * 2 * 2 * 2 * 2 * 3);
  const FitCandidate& first = fit->candidates.front();
  EXPECT_EQ(first.pp, 2);
  EXPECT_EQ(first.dp, 8);
  EXPECT_EQ(first.microbatches, 4);  // 32 sequences / (1 * DP 8)
  const FitCandidate& last = fit->candidates.back();
  EXPECT_EQ(last.pp, 4);
  EXPECT_EQ(last.tp, 2);
  EXPECT_EQ(last.dp, 2);
  EXPECT_EQ(last.mbs, 2);
  EXPECT_EQ(last.microbatches, 8);  // 32 / (2 * 2)
  EXPECT_EQ(last.schedule, ZB_H1);
  // Every point reproduces with --set: PP 4 is the scenario's, no layout.
  const Point p = fit->PointOf(last);
  EXPECT_NE(std::find(p.begin(), p.end(), std::make_pair(std::string("parallel.dp"),
                                                          std::string("2"))),
            p.end());
  EXPECT_NE(std::find(p.begin(), p.end(), std::make_pair(std::string("parallel.sequence_parallel"),
                                                          std::string("true"))),
            p.end());
}

// Without --etp, a MoE model tries ETP 1 and TP; a dense model only 1 (its
// ETP 1 = TP candidates would all be invalid: no experts to split).
TEST(FitTest, DenseModelsTryOnlyExpertTensorParallelismOne) {
  for (const bool dense : {false, true}) {
    // The tiny GPT (4 layers) and the tiny MoE model (8 layers).
    const char* file = dense ? "pp4_1f1b_golden.textproto" : "pp4_tiny.textproto";
    const std::vector<std::string> sets = {"hardware.gpu=CPU", "hardware.hbm_bytes=1400000",
                                           "hardware.comm_workspace_bytes=0"};
    const Scenario base = FitBase(testing::ReadScenario(file, sets));
    StatusOr<graph::Config> config = graph::Resolve(base);
    ASSERT_TRUE(config.ok()) << config.status().message();
    FitSpace space = SmallSpace();
    space.etp.clear();
    space.ep.clear();
    StatusOr<FitCandidates> fit = EnumerateFit(base, *config, space);
    ASSERT_TRUE(fit.ok()) << fit.status().message();
    std::map<std::pair<int64_t, int64_t>, int64_t> by_tp_etp;
    for (const FitCandidate& c : fit->candidates) ++by_tp_etp[{c.tp, c.etp}];
    // TP 1 and 2 (SmallSpace); ETP 1 for both, and 2 at TP 2 for MoE only.
    const std::pair<int64_t, int64_t> tp1{1, 1}, tp2{2, 1}, etp2{2, 2};
    EXPECT_GT(by_tp_etp[tp1], 0) << dense;
    EXPECT_GT(by_tp_etp[tp2], 0) << dense;
    EXPECT_EQ(by_tp_etp.count(etp2), dense ? 0u : 1u) << dense;
    const std::string want = dense ? "parallel.etp=1" : "parallel.etp=1,TP";
    EXPECT_NE(std::find(fit->space.begin(), fit->space.end(), want), fit->space.end()) << dense;
  }
}

// Bounds start from ScenarioOf, the simulations and the printed overrides
// from PointOf: they must make the same scenario, with or without a
// headroom (which sets hardware.hbm_bytes) and where the base layout is
// cleared (V3's is for PP16; PP4 and PP8 clear it).
TEST(FitTest, ScenarioOfIsApplyPointOfPointOf) {
  FitSpace v3;
  v3.gpus = 2048;
  v3.pp = {4, 8, 16};
  v3.tp = {1, 2};
  v3.ep = {8, 64};
  v3.zero = {1, 3};
  v3.recompute = {{NONE, {}}, {FULL, {}}, {SELECTIVE, {"core_attn", "mla_up_proj"}}};
  for (const auto& [scenario, space] :
       {std::pair{"deepseek_v3.textproto", v3}, std::pair{"pp4_tiny.textproto", SmallSpace()}}) {
    for (int64_t headroom : {int64_t{0}, int64_t{1} << 30}) {
      FitSpace with = space;
      with.headroom_bytes = headroom;
      const Scenario base = FitBase(testing::ReadScenario(scenario));
      StatusOr<graph::Config> config = graph::Resolve(base);
      ASSERT_TRUE(config.ok());
      StatusOr<FitCandidates> fit = EnumerateFit(base, *config, with);
      ASSERT_TRUE(fit.ok()) << fit.status().message();
      EXPECT_EQ(fit->set_capacity, headroom > 0);
      int64_t cleared = 0;
      for (const FitCandidate& candidate : fit->candidates) {
        StatusOr<Scenario> applied = ApplyPoint(base, fit->PointOf(candidate));
        ASSERT_TRUE(applied.ok()) << applied.status().message();
        ASSERT_EQ(fit->ScenarioOf(base, candidate).SerializeAsString(),
                  applied->SerializeAsString())
            << scenario << " candidate " << &candidate - fit->candidates.data();
        cleared += candidate.clear_layout;
      }
      EXPECT_GT(fit->candidates.size(), 100u) << scenario;
      if (scenario == std::string("deepseek_v3.textproto")) {
        EXPECT_GT(cleared, 0);
      }
    }
  }
}

TEST(FitTest, AnEmptySpaceSaysSo) {
  FitSpace space = SmallSpace();
  space.gpus = 7;  // no PP*TP*CP of the lists divides 7 ... except 1, not listed
  StatusOr<SweepReport> r = RunFit(Tiny(), space, traces::ReportRun, FitOptions{});
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find("the search space is empty"), std::string::npos)
      << r.status().message();
  space.gpus = 16;
  space.zero = {4};
  EXPECT_EQ(RunFit(Tiny(), space, traces::ReportRun, FitOptions{}).status().message(),
            "--zero: 4 is outside 0..3");
}

// Every candidate simulated: fits and step time by index.
struct Truth {
  std::map<int64_t, bool> fits;
  std::map<int64_t, double> step_us;
  std::map<int64_t, int64_t> peak;
};
Truth SimulateAll(const Scenario& base, const FitCandidates& fit) {
  Truth truth;
  std::vector<graph::Config> configs;
  std::vector<int64_t> index;
  std::vector<SimJob> jobs;
  configs.reserve(fit.candidates.size());
  for (size_t i = 0; i < fit.candidates.size(); ++i) {
    StatusOr<Scenario> s = ApplyPoint(base, fit.PointOf(fit.candidates[i]));
    StatusOr<graph::Config> c = graph::Resolve(*s);
    if (!c.ok()) continue;
    configs.push_back(*c);
    index.push_back(static_cast<int64_t>(i));
    jobs.push_back({nullptr, ProfileKey(*s, *c)});
  }
  for (size_t j = 0; j < jobs.size(); ++j) jobs[j].config = &configs[j];
  SimulateManyOptions many;
  many.jobs = 2;
  many.on_result = [&](int64_t job, StatusOr<RunReport> run) {
    if (!run.ok()) return;
    const SweepConfig row = RowFromRun(index[job], {}, configs[job], *run);
    truth.fits[index[job]] = row.fits();
    truth.step_us[index[job]] = row.step_time_us();
    truth.peak[index[job]] = row.max_peak_bytes();
  };
  EXPECT_TRUE(SimulateMany(jobs, traces::ReportRun, many).ok());
  return truth;
}

// Over ZeRO-2 and DualPipe too, whose bounds hold reduce-scatters and
// overlapped pairs.
TEST(FitTest, FindsTheFastestThatFitAsSimulatingEverythingWould) {
  const Scenario base = FitBase(Tiny());
  StatusOr<graph::Config> config = graph::Resolve(base);
  FitSpace space = SmallSpace();
  space.zero = {0, 2, 3};
  space.schedules.push_back(DUALPIPE);
  StatusOr<FitCandidates> fit = EnumerateFit(base, *config, space);
  ASSERT_TRUE(fit.ok());
  const Truth truth = SimulateAll(base, *fit);
  std::vector<std::pair<double, int64_t>> fitting;
  for (const auto& [i, fits] : truth.fits) {
    if (fits) fitting.push_back({truth.step_us.at(i), i});
  }
  std::sort(fitting.begin(), fitting.end());
  ASSERT_GT(fitting.size(), 5u);                  // the top 5 is a choice
  ASSERT_LT(fitting.size(), truth.fits.size());   // and some do not fit

  FitOptions options;
  options.jobs = 2;
  StatusOr<SweepReport> report = RunFit(Tiny(), space, traces::ReportRun, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_EQ(report->configs_size(), static_cast<int>(fit->candidates.size()));
  for (int k = 0; k < 5; ++k) {
    const SweepConfig& c = report->configs(k);
    EXPECT_TRUE(c.fits());
    EXPECT_EQ(c.index(), fitting[k].second) << "rank " << k;
    EXPECT_EQ(c.step_time_us(), fitting[k].first);
  }
  // Whatever was not simulated was rightly left out.
  const double fifth = fitting[4].first;
  int64_t skipped = 0;
  for (const SweepConfig& c : report->configs()) {
    if (c.skipped().empty()) continue;
    ++skipped;
    if (truth.fits.count(c.index()) == 0) {
      // Too few micro-batches for DualPipe: refused for its static memory
      // before its schedule is built (CheapBoundsAreBounds).
      EXPECT_EQ(c.skipped().rfind("static memory exceeds the device", 0), 0u) << c.skipped();
      continue;
    }
    if (c.skipped().rfind("not in the top K", 0) == 0) {
      EXPECT_GE(truth.step_us.at(c.index()), fifth) << c.skipped();
    } else {
      EXPECT_FALSE(truth.fits.at(c.index())) << c.skipped();
    }
  }
  EXPECT_GT(skipped, 0);  // the bounds did prune
  int64_t counted = 0;
  for (const auto& [reason, count] : report->reasons()) counted += count;
  EXPECT_EQ(counted, report->configs_size());
}

// Over every ZeRO stage, and DualPipe's overlapped pairs (whose bound on
// the reduce-scatters of ZeRO-2/3 is half theirs: fit_bound.cc).
TEST(FitTest, CheapBoundsAreBounds) {
  const Scenario base = FitBase(Tiny());
  StatusOr<graph::Config> config = graph::Resolve(base);
  FitSpace space = SmallSpace();
  space.zero = {0, 1, 2, 3};
  space.schedules.push_back(DUALPIPE);
  StatusOr<FitCandidates> fit = EnumerateFit(base, *config, space);
  ASSERT_TRUE(fit.ok());
  const Truth truth = SimulateAll(base, *fit);
  FitBounder bounder(fit->capacity_bytes);
  int64_t pruned = 0, bounded = 0, reducing_pairs = 0;
  for (size_t i = 0; i < fit->candidates.size(); ++i) {
    StatusOr<Scenario> s = ApplyPoint(base, fit->PointOf(fit->candidates[i]));
    const FitBound b = bounder.Bound(*s);
    const int64_t index = static_cast<int64_t>(i);
    if (b.kind == FitBound::kInvalid) {
      EXPECT_EQ(truth.fits.count(index), 0u) << b.error.message();
      continue;
    }
    if (truth.fits.count(index) == 0) {
      // Not simulated, for too few micro-batches for DualPipe: Prepare
      // refuses the static memory before it builds the schedule.
      EXPECT_EQ(b.kind, FitBound::kStaticMemory) << index;
      continue;
    }
    if (b.kind == FitBound::kCandidate) {
      ++bounded;
      EXPECT_LE(b.time_us, truth.step_us.at(index));
    } else {
      ++pruned;
      EXPECT_FALSE(truth.fits.at(index)) << b.reason;
      EXPECT_GT(truth.peak.at(index), fit->capacity_bytes);
    }
  }
  EXPECT_GT(pruned, 0);
  EXPECT_GT(bounded, 0);
  // Without a capacity, every candidate simulated gets both time bounds.
  FitBounder unlimited(std::numeric_limits<int64_t>::max());
  for (const auto& [index, step_us] : truth.step_us) {
    const FitCandidate& candidate = fit->candidates[static_cast<size_t>(index)];
    StatusOr<Scenario> s = ApplyPoint(base, fit->PointOf(candidate));
    const FitBound full = unlimited.Bound(*s);
    const FitBound quick = unlimited.Quick(*s);
    ASSERT_EQ(full.kind, FitBound::kCandidate) << full.error.message();
    ASSERT_EQ(quick.kind, FitBound::kCandidate) << quick.error.message();
    EXPECT_LE(full.time_us, step_us) << index << " zero " << candidate.zero << " " << ScheduleKind_Name(candidate.schedule) << " pp " << candidate.pp;
    EXPECT_LE(quick.time_us, step_us) << index;
    reducing_pairs += candidate.zero >= 2 && candidate.schedule == DUALPIPE;
  }
  EXPECT_GT(reducing_pairs, 0);
}

// Quick bounds the time from single slots' step profiles: a step's ops run
// back to back, so a stage's step lasts the sum of its slots' steps, and
// Quick's time bound is Bound's (below it under ZeRO-2/3, whose waits for
// reduce-scatters and gathered weights Quick leaves out), less the allowance for additions in
// another order (relative 1e-9 of each step, and a nanosecond). Checked on
// DeepSeek-V3 (embedding, dense and MoE layers, MTP, loss) and the tiny
// model, across layouts, schedules, recomputation, ZeRO-2/3 and expert
// parallelism.
TEST(FitTest, QuickTimeBoundIsBoundsTimeFromSlots) {
  struct Case {
    const char* scenario;
    FitSpace space;
  };
  FitSpace v3;
  v3.gpus = 2048;
  v3.pp = {4, 16};
  v3.tp = {1, 2};
  v3.cp = {1, 2};
  v3.ep = {8, 64};
  v3.mbs = {1, 2};
  v3.zero = {1, 2, 3};
  v3.vpp = {2};
  FitSpace tiny = SmallSpace();
  tiny.zero = {0, 2, 3};
  for (const Case& test : {Case{"deepseek_v3.textproto", v3}, Case{"pp4_tiny.textproto", tiny}}) {
    const Scenario base = FitBase(testing::ReadScenario(test.scenario));
    StatusOr<graph::Config> config = graph::Resolve(base);
    ASSERT_TRUE(config.ok());
    StatusOr<FitCandidates> fit = EnumerateFit(base, *config, test.space);
    ASSERT_TRUE(fit.ok()) << fit.status().message();
    // No capacity: every valid candidate gets both time bounds.
    FitBounder bounder(std::numeric_limits<int64_t>::max());
    int64_t compared = 0, below = 0;
    for (const FitCandidate& candidate : fit->candidates) {
      StatusOr<Scenario> s = ApplyPoint(base, fit->PointOf(candidate));
      ASSERT_TRUE(s.ok());
      const FitBound full = bounder.Bound(*s);
      const FitBound quick = bounder.Quick(*s);
      ASSERT_EQ(quick.kind, full.kind) << full.error.message() << quick.error.message();
      if (full.kind != FitBound::kCandidate) continue;
      ++compared;
      EXPECT_LE(quick.time_us, full.time_us) << test.scenario << " " << candidate.pp;
      // Under ZeRO-2/3 Quick leaves out the waits for reduce-scatters and
      // gathered weights.
      if (candidate.zero >= 2) {
        below += quick.time_us < full.time_us * (1 - 1e-6);
        continue;
      }
      EXPECT_GE(quick.time_us, full.time_us * (1 - 1e-6) - 1e-3)
          << test.scenario << " pp " << candidate.pp << " schedule "
          << ScheduleKind_Name(candidate.schedule) << " recompute " << candidate.recompute;
    }
    EXPECT_GT(compared, 100) << test.scenario;
    EXPECT_GT(below, 0) << test.scenario;
  }
}

// What FitBounder caches between candidates must not depend on the order
// it sees them in: a bounder that has seen every other candidate first
// gives each the bound a fresh one does. DualPipe (two stages per rank)
// and interleaving against DualPipeV (the same stages, placed otherwise)
// share a layout but not the parameters a rank holds.
TEST(FitTest, BoundsDoNotDependOnTheCandidatesBefore) {
  FitSpace space;
  space.gpus = 2048;
  space.pp = {16};
  space.tp = {1};
  space.cp = {2};
  space.ep = {8};
  space.zero = {1, 3};
  space.mbs = {1};
  space.recompute = {{NONE, {}}};
  const Scenario base = FitBase(testing::ReadScenario("deepseek_v3.textproto"));
  StatusOr<graph::Config> config = graph::Resolve(base);
  ASSERT_TRUE(config.ok());
  for (const std::vector<ScheduleKind>& schedules :
       {std::vector<ScheduleKind>{DUALPIPE, ONE_F_ONE_B, DUALPIPE_V, INTERLEAVED_ONE_F_ONE_B},
        std::vector<ScheduleKind>{ONE_F_ONE_B, DUALPIPE, INTERLEAVED_ONE_F_ONE_B, DUALPIPE_V}}) {
    space.schedules = schedules;
    StatusOr<FitCandidates> fit = EnumerateFit(base, *config, space);
    ASSERT_TRUE(fit.ok());
    FitBounder shared(fit->capacity_bytes);
    // Caches emptied at every candidate (a stage's steps stay valid while
    // its candidate is bounded; ASan sees any that does not).
    FitBounder forgetful(fit->capacity_bytes, 1);
    for (const FitCandidate& candidate : fit->candidates) {
      StatusOr<Scenario> s = ApplyPoint(base, fit->PointOf(candidate));
      ASSERT_TRUE(s.ok());
      shared.Bound(*s);
      shared.Quick(*s);
    }
    for (const FitCandidate& candidate : fit->candidates) {
      StatusOr<Scenario> s = ApplyPoint(base, fit->PointOf(candidate));
      for (bool quick : {false, true}) {
        FitBounder fresh(fit->capacity_bytes);
        const FitBound c = quick ? forgetful.Quick(*s) : forgetful.Bound(*s);
        const FitBound a = quick ? shared.Quick(*s) : shared.Bound(*s);
        const FitBound b = quick ? fresh.Quick(*s) : fresh.Bound(*s);
        const std::string what = ScheduleKind_Name(candidate.schedule) + " zero " +
                                 std::to_string(candidate.zero) + (quick ? " quick" : " full");
        EXPECT_EQ(a.kind, b.kind) << what;
        EXPECT_EQ(a.reason, b.reason) << what;
        EXPECT_EQ(a.memory_bytes, b.memory_bytes) << what;
        EXPECT_EQ(a.time_us, b.time_us) << what;
        EXPECT_EQ(c.kind, b.kind) << what;
        EXPECT_EQ(c.memory_bytes, b.memory_bytes) << what;
        EXPECT_EQ(c.time_us, b.time_us) << what;
      }
    }
  }
}

// FitBounder shares one stage's profiles between ZeRO stages 0 and 1: they
// must not differ (only ZeRO-2/3 reduce-scatter gradients and ZeRO-3
// gathers weights inside a step, and wait for them:
// tests/sim/step_profile_test.cc).
TEST(FitTest, StepProfilesDoNotDependOnZeroStagesBelowTwo) {
  for (const char* scenario : {"pp4_tiny.textproto", "deepseek_v3.textproto"}) {
    std::vector<std::vector<StageProfile>> by_stage;
    for (const char* zero : {"zero.stage=0", "zero.stage=1"}) {
      const graph::Config c = testing::LoadScenario(scenario, {zero});
      StatusOr<std::vector<StageProfile>> p = BuildStageProfiles(c, CostModel(c));
      ASSERT_TRUE(p.ok());
      by_stage.push_back(std::move(*p));
    }
    for (size_t z = 1; z < by_stage.size(); ++z) {
      ASSERT_EQ(by_stage[z].size(), by_stage[0].size());
      for (size_t s = 0; s < by_stage[0].size(); ++s) {
        for (StepKind k : {StepKind::kForward, StepKind::kBackward, StepKind::kWeight,
                           StepKind::kBackwardWeight}) {
          const StepProfile& a = by_stage[0][s].For(k);
          const StepProfile& b = by_stage[z][s].For(k);
          EXPECT_EQ(a.duration, b.duration) << scenario << " stage " << s;
          EXPECT_EQ(a.peak, b.peak) << scenario << " stage " << s;
          EXPECT_EQ(a.net, b.net) << scenario << " stage " << s;
        }
      }
    }
  }
}

// FitBounder builds one profile per stage shape: stages of one shape must
// have the same steps, whatever layers they hold.
TEST(FitTest, StagesOfOneShapeHaveTheSameSteps) {
  for (const char* scenario : {"pp4_tiny.textproto", "deepseek_v3.textproto"}) {
    const graph::Config c = testing::LoadScenario(scenario, {"recompute.policy=FULL",
                                                             "recompute.modules="});
    StatusOr<std::vector<StageProfile>> p = BuildStageProfiles(c, CostModel(c));
    ASSERT_TRUE(p.ok());
    std::map<std::string, size_t> first;
    int64_t shared = 0;
    for (size_t s = 0; s < p->size(); ++s) {
      const std::string shape = StageShape(c, c.layout.stages[s]);
      auto [it, inserted] = first.emplace(shape, s);
      if (inserted) continue;
      ++shared;
      for (StepKind k : {StepKind::kForward, StepKind::kBackward, StepKind::kWeight,
                         StepKind::kBackwardWeight}) {
        const StepProfile& a = (*p)[it->second].For(k);
        const StepProfile& b = (*p)[s].For(k);
        EXPECT_EQ(a.duration, b.duration) << scenario << " " << shape << " stage " << s;
        EXPECT_EQ(a.peak, b.peak) << scenario << " " << shape << " stage " << s;
        EXPECT_EQ(a.net, b.net) << scenario << " " << shape << " stage " << s;
      }
    }
    EXPECT_GT(shared, 0) << scenario;  // V3: 14 stages of "MMMM"
  }
  const graph::Config v3 = testing::LoadScenario("deepseek_v3.textproto");
  EXPECT_EQ(StageShape(v3, v3.layout.stages[0]), "EDDDM");
  EXPECT_EQ(StageShape(v3, v3.layout.stages[15]), "MTL");
}

TEST(FitTest, ShardsMergeIntoTheSameTopK) {
  FitOptions options;
  StatusOr<SweepReport> whole = RunFit(Tiny(), SmallSpace(), traces::ReportRun, options);
  ASSERT_TRUE(whole.ok());
  std::vector<std::pair<std::string, SweepReport>> shards;
  for (int64_t k = 1; k <= 3; ++k) {
    options.shard = {k, 3};
    StatusOr<SweepReport> part = RunFit(Tiny(), SmallSpace(), traces::ReportRun, options);
    ASSERT_TRUE(part.ok());
    shards.emplace_back(std::to_string(k), *part);
  }
  StatusOr<SweepReport> merged = MergeShards(shards);
  ASSERT_TRUE(merged.ok()) << merged.status().message();
  ASSERT_EQ(merged->configs_size(), whole->configs_size());
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(merged->configs(k).index(), whole->configs(k).index());
    EXPECT_EQ(merged->configs(k).step_time_us(), whole->configs(k).step_time_us());
  }
}

// ZeRO-2 on DeepSeek-V3 at PP16, CP2, DP64, EP8 (EDP 64*2/8 = 16, across
// nodes), 240 micro-batches: each backward reduce-scatters its stage's
// gradients over the network, so both time bounds, without simulating, put
// it beyond ZeRO-1's simulated step, and are still bounds of its own. Quick
// (whose slot profiles leave the waits out) by the reduce-scatters alone.
// DualPipe: overlapped pairs.
TEST(FitTest, ZeroTwoTimeBoundHoldsItsReduceScatters) {
  const std::vector<std::string> layout = {
      "parallel.cp=2",           "parallel.dp=64",      "parallel.ep=8",
      "parallel.tp=1",           "parallel.sequence_parallel=false",
      "batch.num_microbatches=240", "recompute.policy=NONE", "recompute.modules="};
  for (const char* schedule : {"schedule.kind=ZB_H1", "schedule.kind=DUALPIPE"}) {
    std::vector<graph::Config> configs;
    std::vector<FitBound> bounds, quick;
    FitBounder bounder(std::numeric_limits<int64_t>::max());
    for (const char* zero : {"zero.stage=1", "zero.stage=2"}) {
      std::vector<std::string> sets = layout;
      sets.push_back(schedule);
      sets.push_back(zero);
      const Scenario s = testing::ReadScenario("deepseek_v3.textproto", sets);
      bounds.push_back(bounder.Bound(s));
      quick.push_back(bounder.Quick(s));
      ASSERT_EQ(bounds.back().kind, FitBound::kCandidate) << bounds.back().error.message();
      ASSERT_EQ(quick.back().kind, FitBound::kCandidate) << quick.back().error.message();
      StatusOr<graph::Config> c = graph::Resolve(s);
      ASSERT_TRUE(c.ok());
      configs.push_back(*c);
    }
    std::vector<SimJob> jobs = {{&configs[0], "zero 1"}, {&configs[1], "zero 2"}};
    std::vector<double> step_us(2, 0);
    SimulateManyOptions many;
    many.jobs = 2;
    many.on_result = [&](int64_t job, StatusOr<RunReport> run) {
      ASSERT_TRUE(run.ok()) << run.status().message();
      step_us[static_cast<size_t>(job)] = run->step_time_us();
    };
    ASSERT_TRUE(SimulateMany(jobs, traces::ReportRun, many).ok());
    for (size_t z = 0; z < 2; ++z) {
      EXPECT_LE(quick[z].time_us, bounds[z].time_us) << schedule;
      EXPECT_LE(bounds[z].time_us, step_us[z]) << schedule;
    }
    EXPECT_GT(quick[1].time_us, step_us[0]) << schedule;
    EXPECT_GT(bounds[1].time_us, step_us[0]) << schedule;
  }
}

// DeepSeek-V3's DualPipe and DualPipeV on H800s, whose SMs kept for the
// all-to-alls slow the overlapped pairs' compute: both time bounds stay
// below every simulated step, across EP, ZeRO stages and recomputation.
TEST(FitTest, TimeBoundsHoldForV3sOverlappedPairs) {
  const Scenario base = FitBase(testing::ReadScenario("deepseek_v3.textproto"));
  StatusOr<graph::Config> config = graph::Resolve(base);
  ASSERT_TRUE(config.ok());
  ASSERT_GT(config->communication_sms, 0);
  FitSpace space;
  space.gpus = 2048;
  space.pp = {16};
  space.tp = {1};
  space.cp = {2};
  space.ep = {8, 64};
  space.etp = {1};
  space.mbs = {1};
  space.zero = {1, 2};
  space.schedules = {DUALPIPE, DUALPIPE_V};
  StatusOr<FitCandidates> fit = EnumerateFit(base, *config, space);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  const Truth truth = SimulateAll(base, *fit);
  ASSERT_GE(truth.step_us.size(), 20u);
  FitBounder bounder(std::numeric_limits<int64_t>::max());
  for (const auto& [index, step_us] : truth.step_us) {
    StatusOr<Scenario> s = ApplyPoint(base, fit->PointOf(fit->candidates[index]));
    const FitBound full = bounder.Bound(*s);
    const FitBound quick = bounder.Quick(*s);
    ASSERT_EQ(full.kind, FitBound::kCandidate) << full.error.message();
    EXPECT_LE(full.time_us, step_us) << index;
    EXPECT_LE(quick.time_us, full.time_us) << index;
  }
}

}  // namespace
}  // namespace stepsim::sim
