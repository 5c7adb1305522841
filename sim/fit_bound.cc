#include "sim/fit_bound.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "sim/cost_model.h"
#include "sim/plan.h"
#include "sim/step_profile.h"
#include "sim/sweep.h"

namespace stepsim::sim {
namespace {


std::string GibText(int64_t bytes) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f GiB",
                static_cast<double>(bytes) / static_cast<double>(int64_t{1} << 30));
  return buffer;
}

// The scenario without what a cached part does not depend on.
std::string Key(Scenario s, bool keep_batch, bool keep_recompute, const std::string& extra) {
  s.clear_name();
  s.mutable_schedule()->clear_kind();
  s.mutable_batch()->clear_num_microbatches();
  if (!keep_batch) s.clear_batch();
  if (!keep_recompute) s.clear_recompute();
  return DeterministicBytes(s) + "\n" + extra;
}

// Which stage each (rank, chunk) runs, as the engine places them.
std::vector<std::vector<int64_t>> StageOf(const Schedule& schedule, const graph::Config& c) {
  const auto& routes = schedule.routes.empty() ? c.layout.routes : schedule.routes;
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(schedule.pp),
                                        std::vector<int64_t>(static_cast<size_t>(schedule.chunks), -1));
  for (const auto& route : routes) {
    for (size_t s = 0; s < route.size(); ++s) {
      const graph::Hop& hop = route[s];
      if (hop.rank >= 0 && hop.rank < schedule.pp && hop.chunk >= 0 && hop.chunk < schedule.chunks) {
        out[static_cast<size_t>(hop.rank)][static_cast<size_t>(hop.chunk)] = static_cast<int64_t>(s);
      }
    }
  }
  return out;
}

bool PerStageTiming(const Timing& t) {
  return t.forward_us_size() > 1 || t.backward_input_us_size() > 1 ||
         t.backward_weight_us_size() > 1;
}

}  // namespace

std::string StageShape(const graph::Config& config, const graph::Stage& stage) {
  std::string shape;
  for (const graph::Slot& slot : stage.slots) {
    switch (slot.kind) {
      case graph::SlotKind::kEmbedding: shape += 'E'; break;
      case graph::SlotKind::kDecoder: shape += config.model.IsMoeLayer(slot.index) ? 'M' : 'D'; break;
      case graph::SlotKind::kMtp: shape += 'T'; break;
      case graph::SlotKind::kLoss: shape += 'L'; break;
    }
  }
  return shape;
}

// What a stage's profile depends on beyond its shape: the scenario without
// its ZeRO stage (below 2), layout and chunks. Quick uses only a slot's
// step durations without ZeRO-2/3's waits for gathered weights and
// reduce-scatters (a lower bound
// of them), which depend on neither the pipeline size nor DP (which
// follows from it), nor the ZeRO stage (tests/sim/fit_test.cc checks both).
std::string ProfileKeyBase(const Scenario& scenario, const graph::Config& c, bool slot) {
  Scenario s = scenario;
  if (slot || !ProfilesDependOnZero(c)) s.clear_zero();
  s.mutable_parallel()->clear_layout();
  s.mutable_parallel()->clear_vpp();
  if (slot) {
    s.mutable_parallel()->clear_pp();
    s.mutable_parallel()->clear_dp();
  }
  return Key(s, true, true, slot ? "slot " : "");
}

const FitBounder::StageSteps& FitBounder::Steps(const std::string& base_key,
                                                const graph::Config& c,
                                                const graph::Stage& stage) {
  std::string key = base_key + StageShape(c, stage);
  if (PerStageTiming(c.timing)) key += " " + std::to_string(stage.stage);
  key += Context(c, stage);
  return Build(stages_, key, c, stage, /*durations_only=*/false);
}

// What a stage's profile takes from where it sits: whether it receives an
// output gradient (every stage but the last), and under ZeRO-2/3 the shapes
// of the other stages on its ranks (whose weights it shares, so does not
// gather or reduce). Only the first matters to the step durations.
std::string FitBounder::Position(const graph::Config& c, const graph::Stage& stage) {
  return stage.stage + 1 < static_cast<int64_t>(c.layout.stages.size()) ? "" : " last";
}

std::string FitBounder::Context(const graph::Config& c, const graph::Stage& stage) {
  std::string out = Position(c, stage);
  if (!ProfilesDependOnZero(c)) return out;
  for (const auto& chunks : c.layout.rank_stages) {
    if (std::find(chunks.begin(), chunks.end(), stage.stage) == chunks.end()) continue;
    out += " with";
    for (int64_t other : chunks) {
      if (other != stage.stage && other >= 0 &&
          other < static_cast<int64_t>(c.layout.stages.size())) {
        out += " " + StageShape(c, c.layout.stages[static_cast<size_t>(other)]);
      }
    }
  }
  return out;
}

const FitBounder::StageSteps& FitBounder::SlotSteps(const std::string& base_key,
                                                    const graph::Config& c,
                                                    const graph::Stage& stage,
                                                    const graph::Slot& slot) {
  graph::Stage one = stage;  // where the slot sits, holding it alone
  one.slots = {slot};
  return Build(slots_, base_key + StageShape(c, one) + Position(c, stage), c, one,
               /*durations_only=*/true);
}

const FitBounder::StageSteps& FitBounder::Build(
    std::unordered_map<std::string, StageSteps>& cache, const std::string& key,
    const graph::Config& c, const graph::Stage& stage, bool durations_only) {
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  // Durations only: without ZeRO-3's waits for gathered weights and
  // ZeRO-2/3's for reduce-scatters, which depend on DP and on the slots
  // around (a lower bound of the durations with them).
  std::optional<graph::Config> without;
  if (durations_only && ProfilesDependOnZero(c)) {
    without = c;
    without->zero_stage = 0;
  }
  const graph::Config& built_as = without ? *without : c;
  StatusOr<std::vector<StageProfile>> built =
      BuildStageProfiles(built_as, CostModel(built_as), {stage});
  StageSteps steps;
  if (!built.ok()) {
    steps.status = built.status();
  } else {
    const StageProfile& p = built->front();
    for (StepKind k : {StepKind::kForward, StepKind::kBackward, StepKind::kWeight,
                       StepKind::kBackwardWeight}) {
      const StepProfile& step = p.For(k);
      steps.duration[static_cast<size_t>(k)] = step.duration;
      steps.comm[static_cast<size_t>(k)] = step.comm_seconds;
      steps.waits[static_cast<size_t>(k)] = step.gather_seconds + step.reduce_seconds;
      steps.peak[static_cast<size_t>(k)] = step.peak;
    }
    steps.kept = std::max<int64_t>(0, Total(p.forward.net));
    if (durations_only) {
      steps.peak = {};
      steps.kept = 0;
    }
  }
  return cache.emplace(key, std::move(steps)).first->second;
}

FitBounder::Prepared FitBounder::Prepare(const Scenario& scenario) {
  Prepared out;
  StatusOr<graph::Config> resolved = graph::Resolve(scenario);
  if (!resolved.ok()) {
    out.bound.error = resolved.status();
    return out;
  }
  out.config = std::move(*resolved);
  const graph::Config& c = out.config;

  // Static memory of every rank, as the stages are placed.
  std::string describe, placement;
  for (const graph::Stage& stage : c.layout.stages) describe += stage.Describe() + "|";
  for (const auto& chunks : c.layout.rank_stages) {
    for (int64_t s : chunks) placement += std::to_string(s) + ",";
    placement += ";";
  }
  const std::string static_key = Key(scenario, false, false, describe + "\n" + placement);
  if (statics_.size() > max_cached_) statics_.clear();
  auto st = statics_.find(static_key);
  if (st == statics_.end()) {
    // Parameter counts do not depend on ZeRO, but on where the stages are
    // (a DualPipe rank holds two stages).
    Scenario any_zero = scenario;
    any_zero.clear_zero();
    const std::string params_key = Key(any_zero, false, false, describe + "\n" + placement);
    if (params_.size() > max_cached_) params_.clear();
    auto p = params_.find(params_key);
    if (p == params_.end()) p = params_.emplace(params_key, graph::CountParams(c)).first;
    st = statics_
             .emplace(static_key, p->second.ok()
                                      ? graph::StaticMemoryPerRank(c, *p->second)
                                      : StatusOr<std::vector<graph::RankStatic>>(p->second.status()))
             .first;
  }
  if (!st->second.ok()) {
    out.bound.error = st->second.status();
    return out;
  }
  const std::vector<graph::RankStatic>& statics = *st->second;
  const int64_t workspace = c.hardware.comm_workspace_bytes;
  for (const graph::RankStatic& r : statics) {
    const int64_t total = r.memory.total_bytes() + workspace;
    if (total > capacity_) {
      out.bound.kind = FitBound::kStaticMemory;
      out.bound.reason = "rank " + std::to_string(r.pp_rank) + " holds " + GibText(total) +
                         " of weights, gradients, optimizer state and workspace, more than the " +
                         GibText(capacity_) + " available";
      return out;
    }
  }
  // The schedule, once the static memory fits (a third of V3's candidates
  // at 2,048 GPUs do not, many of them at small DP with many micro-batches,
  // whose schedules cost the most to build and check): its generators read
  // only these.
  const std::string schedule_key =
      ScheduleKind_Name(c.schedule) + (c.overlap_forward_backward ? " overlapped " : " ") +
      std::to_string(c.parallel.pp) + " " +
      std::to_string(c.parallel.vpp) + " " + std::to_string(c.batch.microbatches) + " " +
      std::to_string(c.layout.stages.size());
  if (schedules_.size() > max_cached_) schedules_.clear();
  auto sc = schedules_.find(schedule_key);
  if (sc == schedules_.end()) {
    ScheduleEntry entry{BuildSchedule(c), {}};
    if (entry.schedule.ok()) entry.ranks = Summarize(*entry.schedule, c);
    sc = schedules_.emplace(schedule_key, std::move(entry)).first;
  }
  const StatusOr<Schedule>& schedule = sc->second.schedule;
  if (!schedule.ok()) {
    out.bound.error = schedule.status();
    return out;
  }
  if (static_cast<int64_t>(statics.size()) != schedule->pp) {
    out.bound.error = Status::Failed("fit: static memory for " + std::to_string(statics.size()) +
                                     " ranks, a schedule of " + std::to_string(schedule->pp));
    return out;
  }
  out.schedule = &*schedule;
  out.summary = &sc->second.ranks;
  out.statics = &statics;
  return out;
}

std::vector<FitBounder::RankSummary> FitBounder::Summarize(const Schedule& schedule,
                                                           const graph::Config& c) {
  const std::vector<std::vector<int64_t>> stage_of = StageOf(schedule, c);
  const int64_t n = static_cast<int64_t>(c.layout.stages.size());
  std::vector<RankSummary> out(static_cast<size_t>(schedule.pp));
  for (int64_t rank = 0; rank < schedule.pp; ++rank) {
    RankSummary& r = out[static_cast<size_t>(rank)];
    const std::vector<Step>& steps = schedule.ranks[static_cast<size_t>(rank)];
    // Overlapped pairs, as plan.cc forms them.
    std::vector<bool> paired(steps.size(), false);
    for (size_t i = 0; c.overlap_forward_backward && i + 1 < steps.size(); ++i) {
      if (FormsOverlappedPair(steps[i], steps[i + 1])) {
        paired[i] = paired[i + 1] = true;
        ++i;
      }
    }
    std::map<std::pair<int64_t, int>, std::pair<int64_t, int64_t>> counts;  // (all, paired)
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& step = steps[i];
      const int64_t s = stage_of[static_cast<size_t>(rank)][static_cast<size_t>(step.chunk)];
      if (s < 0 || s >= n) continue;
      const int k = static_cast<int>(step.kind);
      auto& [all, in_pairs] = counts[{s, k}];
      ++all;
      in_pairs += paired[i];
      r.tail.push_back({s, k});
      if (step.kind == StepKind::kBackward || step.kind == StepKind::kBackwardWeight) {
        r.tail.clear();  // what runs after the rank's last backward
        r.last_backward_stage = s;
      }
    }
    for (const auto& [sk, count] : counts) {
      r.counts.push_back({sk.first, sk.second, count.first - count.second, count.second});
    }
  }
  return out;
}

// Under ZeRO-2/3, each W or BW step reduce-scatters the gradients of its
// stage's groups one after another on the DP stream, and the step ends
// when the last completes (sim/step_profile.cc), so a rank's steps last at
// least all its reduce-scatters. With m backwards of each stage the rank
// holds, they take at least m reduce-scatters of its whole gradients
// (`whole`: GradientSyncSeconds of them): a ring's cost is latency terms
// plus a term linear in the bytes, so one of the sum costs no more than
// the groups' one by one. A backward in an
// overlapped pair counts half: the pair lasts at least half its two steps
// alone (max(compute, comm) >= (compute + comm) / 2, and the waits in
// full), and its reduce-scatters run inside the backward's time alone. A
// relative 1e-9 under, for additions in another order.
double FitBounder::ReduceScatters(const graph::Config& c, double whole,
                                  const RankSummary& summary, int64_t rank) {
  std::map<int64_t, double> backwards;  // per stage, pairs counted half
  for (const auto& [s, k, alone, paired] : summary.counts) {
    const StepKind kind = static_cast<StepKind>(k);
    if (kind == StepKind::kWeight || kind == StepKind::kBackwardWeight) {
      backwards[s] += static_cast<double>(alone) + 0.5 * static_cast<double>(paired);
    }
  }
  const std::vector<int64_t>& held = c.layout.rank_stages[static_cast<size_t>(rank)];
  if (backwards.size() != held.size()) return 0;
  double each = std::numeric_limits<double>::infinity();
  for (int64_t s : held) {
    const auto it = backwards.find(s);
    if (it == backwards.end()) return 0;
    each = std::min(each, it->second);
  }
  return each * whole * (1 - 1e-9);
}

FitBound FitBounder::Walk(const Prepared& prepared, const std::vector<const StageSteps*>& steps,
                          bool memory_bound) const {
  const graph::Config& c = prepared.config;
  const Schedule& schedule = *prepared.schedule;
  const std::vector<graph::RankStatic>& statics = *prepared.statics;
  const int64_t workspace = c.hardware.comm_workspace_bytes;
  // Every stage's steps, and the fill and drain of the pipeline before it.
  // In overlapped pairs (DualPipe) a step lasts at least half its time
  // alone (plan.cc scales both by the pair's over their sum, at least 1/2).
  const size_t n = steps.size();
  const double least = c.overlap_forward_backward ? 0.5 : 1.0;
  std::vector<double> fill(n + 1, 0), drain(n + 1, 0);
  for (size_t s = 0; s < n; ++s) {
    const auto& d = steps[s]->duration;
    fill[s + 1] = fill[s] + least * d[static_cast<size_t>(StepKind::kForward)];
    drain[s + 1] = drain[s] + least * std::min(d[static_cast<size_t>(StepKind::kBackward)],
                                               d[static_cast<size_t>(StepKind::kBackwardWeight)]);
  }
  const CostModel cost(c);
  const double slowdown = OverlapSlowdown(c.hardware.sm_count, c.communication_sms);
  const std::vector<std::vector<int64_t>> stage_of =
      memory_bound ? StageOf(schedule, c) : std::vector<std::vector<int64_t>>{};
  // Fixed backward times hold no waits for the reduce-scatters.
  const bool reduce_bound = ReducesPerMicrobatch(c) && c.timing.backward_input_us_size() == 0 &&
                            c.timing.backward_weight_us_size() == 0;
  double time = 0;
  int64_t memory = 0, memory_rank = 0;
  for (int64_t rank = 0; rank < schedule.pp; ++rank) {
    const graph::RankStatic& r = statics[static_cast<size_t>(rank)];
    const RankSummary& summary = (*prepared.summary)[static_cast<size_t>(rank)];
    // Time: from the steps' counts per stage and kind, and those after the
    // rank's last backward. Overlapped pairs last the longer of their
    // compute (slowed by the SMs kept for communication) and their
    // all-to-alls, and their waits (OverlappedPairSeconds): so all of the
    // rank's pairs at least the longer of their sums.
    double start = std::numeric_limits<double>::infinity(), busy = 0, after = 0, chain = 0;
    double pair_compute = 0, pair_comm = 0;
    for (const auto& [s, k, alone, paired] : summary.counts) {
      start = std::min(start, fill[static_cast<size_t>(s)]);
      const StageSteps& st = *steps[static_cast<size_t>(s)];
      const size_t kind = static_cast<size_t>(k);
      busy += static_cast<double>(alone) * st.duration[kind];
      if (paired == 0) continue;
      const double n_paired = static_cast<double>(paired);
      busy += n_paired * st.waits[kind];
      pair_comm += n_paired * st.comm[kind];
      pair_compute += n_paired * std::max(0.0, st.duration[kind] - st.comm[kind] - st.waits[kind]);
    }
    // The difference of two sums, a relative 1e-9 under.
    busy += std::max(pair_compute * slowdown, pair_comm) * (1 - 1e-9);
    if (summary.last_backward_stage >= 0) {
      for (const auto& [s, k] : summary.tail) {
        after += steps[static_cast<size_t>(s)]->duration[static_cast<size_t>(k)];
      }
      chain = drain[static_cast<size_t>(summary.last_backward_stage)];
    } else {
      after = busy;
    }
    // The rank's whole gradients over its DP groups: reduced after the last
    // step, or under ZeRO-2/3 inside the backwards (whose durations here
    // leave it out).
    const double whole = cost.GradientSyncSeconds(r.memory.dense_params * c.precision.gradient,
                                                  r.memory.expert_params * c.precision.gradient);
    const double sync = ReducesPerMicrobatch(c) ? 0.0 : whole;
    // Under ZeRO-1/2 the weights' all-gather follows everything else.
    const double gather =
        GathersWeightsAfterStep(c)
            ? cost.ParamGatherSeconds(r.memory.dense_params * c.precision.weight,
                                      r.memory.expert_params * c.precision.weight)
            : 0.0;
    // Then the optimizer step and the gather (after the wait for every
    // rank's reduction, which only delays them).
    const double tail =
        cost.OptimizerStepSeconds(r.memory.dense_params, r.memory.expert_params) + gather;
    if (busy == 0) start = 0;
    time = std::max(time, start + busy + std::max(sync, chain - after) + tail);
    if (reduce_bound) {
      time = std::max(time, start + ReduceScatters(c, whole, summary, rank) + tail);
    }
    if (!memory_bound) continue;
    // Memory: the rank's steps in order, the micro-batches in flight.
    int64_t live = 0, peak = 0;
    for (const Step& step : schedule.ranks[static_cast<size_t>(rank)]) {
      const int64_t s = stage_of[static_cast<size_t>(rank)][static_cast<size_t>(step.chunk)];
      if (s < 0 || s >= static_cast<int64_t>(n)) continue;
      const StageSteps& st_steps = *steps[static_cast<size_t>(s)];
      const size_t k = static_cast<size_t>(step.kind);
      peak = std::max(peak, live + st_steps.peak[k]);
      if (step.kind == StepKind::kForward) live += st_steps.kept;
      if (step.kind == StepKind::kBackward || step.kind == StepKind::kBackwardWeight) {
        live -= st_steps.kept;
      }
    }
    const int64_t low = r.memory.total_bytes() + workspace + peak;
    if (low > memory) memory = low, memory_rank = rank;
  }
  FitBound out;
  out.memory_bytes = memory;
  if (memory_bound && memory > capacity_) {
    out.kind = FitBound::kMemoryBound;
    out.reason = "rank " + std::to_string(memory_rank) + " needs at least " + GibText(memory) +
                 " (static state, the activations of its micro-batches in flight and a step's "
                 "peak), more than the " + GibText(capacity_) + " available";
    return out;
  }
  out.kind = FitBound::kCandidate;
  // In microseconds, a nanosecond under: reports round step times to whole
  // nanoseconds, and sums in another order may differ in the last bits.
  out.time_us = std::max(0.0, std::floor(time * 1e9) - 1) / 1e3;
  return out;
}

FitBound FitBounder::Bound(const Scenario& scenario) {
  // Emptied only here, before this candidate holds pointers into it.
  if (stages_.size() > max_cached_) stages_.clear();
  Prepared prepared = Prepare(scenario);
  if (prepared.schedule == nullptr) return prepared.bound;
  const graph::Config& c = prepared.config;
  const size_t n = c.layout.stages.size();
  std::vector<const StageSteps*> steps(n);
  const std::string base_key = ProfileKeyBase(scenario, c, /*slot=*/false);
  for (size_t s = 0; s < n; ++s) {
    steps[s] = &Steps(base_key, c, c.layout.stages[s]);
    if (!steps[s]->status.ok()) {
      FitBound out;
      out.error = steps[s]->status;
      return out;
    }
  }
  return Walk(prepared, steps, /*memory_bound=*/true);
}

FitBound FitBounder::Quick(const Scenario& scenario) {
  if (slots_.size() > max_cached_) slots_.clear();  // as stages_ in Bound
  Prepared prepared = Prepare(scenario);
  if (prepared.schedule == nullptr) return prepared.bound;
  const graph::Config& c = prepared.config;
  const size_t n = c.layout.stages.size();
  std::vector<StageSteps> composed(n);
  std::vector<const StageSteps*> steps(n);
  // With fixed step times the stages' durations are not their slots' sums:
  // no time bound then (0), only static memory.
  const bool fixed = c.timing.forward_us_size() > 0 || c.timing.backward_input_us_size() > 0 ||
                     c.timing.backward_weight_us_size() > 0;
  const std::string base_key = fixed ? "" : ProfileKeyBase(scenario, c, /*slot=*/true);
  std::map<std::string, const StageSteps*> by_kind;  // this candidate's slot kinds
  for (size_t s = 0; s < n; ++s) {
    steps[s] = &composed[s];
    if (fixed) continue;
    const std::string context = Position(c, c.layout.stages[s]);
    for (const graph::Slot& slot : c.layout.stages[s].slots) {
      graph::Stage alone;
      alone.slots = {slot};
      const StageSteps*& one = by_kind[StageShape(c, alone) + context];
      if (one == nullptr) one = &SlotSteps(base_key, c, c.layout.stages[s], slot);
      if (!one->status.ok()) {
        FitBound out;
        out.error = one->status;
        return out;
      }
      for (size_t k = 0; k < 4; ++k) {
        composed[s].duration[k] += one->duration[k];
        composed[s].comm[k] += one->comm[k];  // built without waits
      }
    }
    // A step's ops run back to back, so a stage's step lasts the sum of
    // its slots' (in another order of additions: a relative 1e-9 under),
    // and so do its all-to-alls.
    for (double& d : composed[s].duration) d *= 1 - 1e-9;
  }
  return Walk(prepared, steps, /*memory_bound=*/false);
}

}  // namespace stepsim::sim
