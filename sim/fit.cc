#include "sim/fit.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "graph/params.h"
#include "sim/cost_model.h"
#include "sim/process_pool.h"
#include "sim/schedule.h"
#include "sim/sweep_rows.h"

namespace stepsim::sim {
namespace {

constexpr int64_t kBoundSlice = 256;  // candidates per bounding task
constexpr size_t kMaxCached = 4096;   // entries per cache before it is emptied

const char kFits[] = "fits";
const char kNoFit[] = "does not fit (simulated)";
const char kStatic[] = "static memory exceeds the device";
const char kMemoryBound[] = "memory bound exceeds the device";
const char kTimeBound[] = "not in the top K (time bound)";
const char kFailed[] = "failed";

std::string Deterministic(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

std::string GibText(int64_t bytes) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f GiB",
                static_cast<double>(bytes) / static_cast<double>(int64_t{1} << 30));
  return buffer;
}

// "invalid: parallel.ep" for a problem list starting "parallel.ep: ...".
std::string InvalidReason(const Status& error) {
  const std::string& m = error.message();
  const size_t colon = m.find(':');
  const std::string field = m.substr(0, colon);
  const bool is_field = colon != std::string::npos && !field.empty() &&
                        field.find_first_not_of("abcdefghijklmnopqrstuvwxyz_.") == std::string::npos;
  return "invalid: " + (is_field ? field : std::string("schedule"));
}

// Which stage each (rank, chunk) runs, as the engine places them.
std::vector<std::vector<int64_t>> StageOf(const Schedule& schedule,
                                          const graph::Config& config) {
  const auto& routes = schedule.routes.empty() ? config.layout.routes : schedule.routes;
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(schedule.pp),
                                        std::vector<int64_t>(static_cast<size_t>(schedule.chunks), -1));
  for (const auto& route : routes) {
    for (size_t s = 0; s < route.size(); ++s) {
      const graph::Hop& hop = route[s];
      if (hop.rank >= 0 && hop.rank < schedule.pp && hop.chunk >= 0 && hop.chunk < schedule.chunks) {
        out[hop.rank][hop.chunk] = static_cast<int64_t>(s);
      }
    }
  }
  return out;
}

// The key of what a part of the profile depends on: the scenario without
// `cleared` fields, and extra text.
std::string Key(Scenario s, bool clear_batch, bool clear_recompute, const std::string& extra) {
  s.clear_name();
  s.mutable_schedule()->clear_kind();
  if (clear_batch) {
    s.clear_batch();
  } else {
    s.mutable_batch()->clear_num_microbatches();
  }
  if (clear_recompute) s.clear_recompute();
  return Deterministic(s) + extra;
}

// A bound on the wire: [kind][status code][double time][text].
std::string Encode(const FitBound& b) {
  std::string out(2 + sizeof(double), '\0');
  out[0] = static_cast<char>(b.kind);
  out[1] = static_cast<char>(b.error.ok() ? 0 : b.error.code() == StatusCode::kInvalidInput ? 1 : 2);
  std::memcpy(out.data() + 2, &b.time_us, sizeof(double));
  return out + (b.kind == FitBound::kInvalid ? b.error.message() : b.reason);
}

FitBound Decode(const std::string& bytes) {
  FitBound b;
  if (bytes.size() < 2 + sizeof(double)) {
    b.error = Status::Failed("an unreadable bound came back from a worker");
    return b;
  }
  b.kind = static_cast<FitBound::Kind>(bytes[0]);
  std::memcpy(&b.time_us, bytes.data() + 2, sizeof(double));
  std::string text = bytes.substr(2 + sizeof(double));
  if (b.kind == FitBound::kInvalid) {
    b.error = bytes[1] == 1 ? Status::Invalid(text) : Status::Failed(text);
  } else {
    b.reason = std::move(text);
  }
  return b;
}

// With every stage's profiles, right before a simulation: a memory bound
// over all the stages of each rank (as Bound does for one), and a step-time
// bound with the pipeline's fill and drain. Rank r cannot start before a
// micro-batch's forward has crossed the stages before its first one, runs
// all its steps after that, and after its last backward that micro-batch's
// backward must still cross the stages before it. "" when neither bound
// rules the configuration out.
std::string GateWithProfiles(const graph::Config& c, const Schedule& schedule,
                             const std::vector<StageProfile>& stages, int64_t capacity,
                             double limit_us, int64_t top) {
  StatusOr<graph::ModelParams> params = graph::CountParams(c);
  if (!params.ok()) return "";
  graph::Config placed = c;
  const std::vector<std::vector<int64_t>> stage_of = StageOf(schedule, c);
  placed.layout.rank_stages = stage_of;
  StatusOr<std::vector<graph::RankStatic>> statics = graph::StaticMemoryPerRank(placed, *params);
  if (!statics.ok() || static_cast<int64_t>(statics->size()) != schedule.pp) return "";
  const size_t n = stages.size();
  std::vector<double> fill(n + 1, 0), drain(n + 1, 0);
  std::vector<int64_t> kept(n, 0);
  for (size_t s = 0; s < n; ++s) {
    fill[s + 1] = fill[s] + stages[s].forward.duration;
    drain[s + 1] = drain[s] + std::min(stages[s].backward.duration,
                                       stages[s].backward_weight.duration);
    kept[s] = std::max<int64_t>(0, Total(stages[s].forward.net));
  }
  const CostModel cost(c);
  double time = 0;
  for (int64_t rank = 0; rank < schedule.pp; ++rank) {
    const auto& steps = schedule.ranks[static_cast<size_t>(rank)];
    const graph::RankStatic& r = (*statics)[static_cast<size_t>(rank)];
    double start = std::numeric_limits<double>::infinity(), busy = 0, after = 0, chain = 0;
    int64_t live = 0, peak = 0;
    for (const Step& step : steps) {
      const int64_t s = stage_of[rank][step.chunk];
      if (s < 0 || s >= static_cast<int64_t>(n)) return "";
      const StepProfile& p = stages[static_cast<size_t>(s)].For(step.kind);
      start = std::min(start, fill[static_cast<size_t>(s)]);
      busy += p.duration;
      after += p.duration;
      peak = std::max(peak, live + p.peak);
      if (step.kind == StepKind::kForward) live += kept[static_cast<size_t>(s)];
      if (step.kind == StepKind::kBackward || step.kind == StepKind::kBackwardWeight) {
        live -= kept[static_cast<size_t>(s)];
        after = 0;  // the steps after the last backward
        chain = drain[static_cast<size_t>(s)];
      }
    }
    const int64_t low = r.memory.total_bytes() + c.hardware.comm_workspace_bytes + peak;
    if (low > capacity) {
      return std::string(kMemoryBound) + ": rank " + std::to_string(rank) + " needs at least " +
             GibText(low) + " (its static state, the activations of its micro-batches in flight "
             "and a step's peak), more than the " + GibText(capacity) + " available";
    }
    if (steps.empty()) continue;
    const double sync = cost.GradientSyncSeconds(r.memory.dense_params * c.precision.gradient,
                                                 r.memory.expert_params * c.precision.gradient);
    time = std::max(time, start + busy + std::max(sync, chain - after));
  }
  const double time_us = std::max(0.0, std::floor(time * 1e9) - 1) / 1e3;
  if (time_us > limit_us) {
    char text[200];
    std::snprintf(text, sizeof text,
                  "%s: at least %.3f ms, slower than the %lld fastest that fit (%.3f ms)",
                  kTimeBound, time_us / 1000, static_cast<long long>(top), limit_us / 1000);
    return text;
  }
  return "";
}

}  // namespace

FitBound FitBounder::Bound(const Scenario& scenario) {
  FitBound out;
  StatusOr<graph::Config> resolved = graph::Resolve(scenario);
  if (!resolved.ok()) {
    out.error = resolved.status();
    return out;
  }
  const graph::Config& c = *resolved;

  // Static memory of every rank.
  std::string placement;
  for (const auto& chunks : c.layout.rank_stages) {
    for (int64_t s : chunks) placement += std::to_string(s) + ",";
    placement += ";";
  }
  std::string describe;
  for (const graph::Stage& stage : c.layout.stages) describe += stage.Describe() + "|";
  const std::string static_key = Key(scenario, true, true, "\n" + describe + "\n" + placement);
  if (statics_.size() > kMaxCached) statics_.clear();
  auto it = statics_.find(static_key);
  if (it == statics_.end()) {
    // Parameter counts do not depend on the ZeRO stage.
    Scenario any_zero = scenario;
    any_zero.clear_zero();
    const std::string params_key = Key(any_zero, true, true, "\n" + describe);
    if (params_.size() > kMaxCached) params_.clear();
    auto p = params_.find(params_key);
    if (p == params_.end()) p = params_.emplace(params_key, graph::CountParams(c)).first;
    it = statics_
             .emplace(static_key, p->second.ok()
                                      ? graph::StaticMemoryPerRank(c, *p->second)
                                      : StatusOr<std::vector<graph::RankStatic>>(p->second.status()))
             .first;
  }
  if (!it->second.ok()) {
    out.error = it->second.status();
    return out;
  }
  const std::vector<graph::RankStatic>& statics = *it->second;
  const int64_t workspace = c.hardware.comm_workspace_bytes;
  for (const graph::RankStatic& r : statics) {
    const int64_t total = r.memory.total_bytes() + workspace;
    if (total > capacity_) {
      out.kind = FitBound::kStaticMemory;
      out.reason = "rank " + std::to_string(r.pp_rank) + " holds " + GibText(total) +
                   " of weights, gradients, optimizer state and workspace, more than the " +
                   GibText(capacity_) + " available";
      return out;
    }
  }

  // The schedule: its generators only read these.
  const std::string schedule_key = ScheduleKind_Name(c.schedule) + " " + std::to_string(c.parallel.pp) +
                                   " " + std::to_string(c.parallel.vpp) + " " +
                                   std::to_string(c.batch.microbatches) + " " +
                                   std::to_string(c.layout.stages.size());
  if (schedules_.size() > kMaxCached) schedules_.clear();
  auto sc = schedules_.find(schedule_key);
  if (sc == schedules_.end()) sc = schedules_.emplace(schedule_key, BuildSchedule(c)).first;
  if (!sc->second.ok()) {
    out.error = sc->second.status();
    return out;
  }
  const Schedule* schedule = &*sc->second;
  const std::vector<std::vector<int64_t>> stage_of = StageOf(*schedule, c);

  // The profiles of the stage with the most decoder layers.
  size_t chosen = 0;
  for (size_t s = 1; s < c.layout.stages.size(); ++s) {
    if (c.layout.stages[s].DecoderLayers() > c.layout.stages[chosen].DecoderLayers()) chosen = s;
  }
  const graph::Stage& stage = c.layout.stages[chosen];
  // Step profiles depend on the ZeRO stage only through ZeRO-3's gathered
  // weights (sim/step_profile.h; tests/sim/fit_test.cc checks it), so
  // stages 0-2 share them.
  Scenario profile_scenario = scenario;
  if (c.zero_stage < 3) profile_scenario.clear_zero();
  const std::string stage_key = Key(profile_scenario, false, false,
                                    "\n" + std::to_string(chosen) + " " + stage.Describe());
  if (stages_.size() > kMaxCached) stages_.clear();
  auto st = stages_.find(stage_key);
  if (st == stages_.end()) {
    graph::Config one = c;
    one.layout.stages = {stage};
    StatusOr<std::vector<StageProfile>> built = BuildStageProfiles(one, CostModel(one));
    StageSteps steps;
    if (!built.ok()) {
      steps.status = built.status();
    } else {
      const StageProfile& p = built->front();
      steps.steps = {p.forward, p.backward, p.weight, p.backward_weight};
      for (StepProfile& step : steps.steps) step.phases.clear();  // only totals are needed
    }
    st = stages_.emplace(stage_key, std::move(steps)).first;
  }
  if (!st->second.status.ok()) {
    out.error = st->second.status;
    return out;
  }
  const std::vector<StepProfile>& steps = st->second.steps;
  auto step_of = [&](StepKind kind) -> const StepProfile& {
    return steps[static_cast<size_t>(kind)];
  };
  const CostModel cost(c);
  double time = 0;
  for (const graph::RankStatic& r : statics) {
    time = std::max(time, cost.GradientSyncSeconds(r.memory.dense_params * c.precision.gradient,
                                                   r.memory.expert_params * c.precision.gradient));
  }
  // Each rank that runs the stage, walking its steps in order: the
  // micro-batches whose forward on the stage is done and whose backward is
  // not still hold what the forward kept, and each step adds its own peak.
  const int64_t kept = std::max<int64_t>(0, Total(step_of(StepKind::kForward).net));
  for (int64_t rank = 0; rank < schedule->pp; ++rank) {
    double busy = 0;
    int64_t peak = -1, inflight = 0;
    for (const Step& step : schedule->ranks[rank]) {
      if (stage_of[rank][step.chunk] != static_cast<int64_t>(chosen)) continue;
      const StepProfile& p = step_of(step.kind);
      busy += p.duration;
      const bool backward = step.kind == StepKind::kBackward || step.kind == StepKind::kBackwardWeight;
      peak = std::max(peak, inflight * kept + p.peak);
      if (step.kind == StepKind::kForward) ++inflight;
      if (backward) --inflight;
    }
    if (peak < 0) continue;  // this rank does not run the stage
    const graph::RankStatic& r = statics[static_cast<size_t>(rank)];
    const int64_t low = r.memory.total_bytes() + workspace + peak;
    if (low > capacity_) {
      out.kind = FitBound::kMemoryBound;
      out.reason = "rank " + std::to_string(rank) + " needs at least " + GibText(low) +
                   " (its static state, the activations of the micro-batches in flight on "
                   "stage " + std::to_string(chosen) + " and a step's peak), more than the " +
                   GibText(capacity_) + " available";
      return out;
    }
    time = std::max(time, busy + cost.GradientSyncSeconds(
                                     r.memory.dense_params * c.precision.gradient,
                                     r.memory.expert_params * c.precision.gradient));
  }
  out.kind = FitBound::kCandidate;
  // In microseconds, a nanosecond under: reports round step times to whole
  // nanoseconds, and sums in another order may differ in the last bits.
  out.time_us = std::max(0.0, std::floor(time * 1e9) - 1) / 1e3;
  return out;
}

StatusOr<SweepReport> RunFit(const Scenario& scenario, const FitSpace& space,
                             const Reporter& reporter, const FitOptions& options) {
  const Scenario base = FitBase(scenario);
  StatusOr<graph::Config> base_config = graph::Resolve(base);
  if (!base_config.ok()) return base_config.status();
  StatusOr<FitCandidates> space_or = EnumerateFit(base, *base_config, space);
  if (!space_or.ok()) return space_or.status();
  const FitCandidates& fit = *space_or;
  const int64_t total = static_cast<int64_t>(fit.candidates.size());
  if (total == 0) {
    return Status::Invalid("fit: the search space is empty: no layout of the given PP, TP and "
                           "CP uses " + std::to_string(space.gpus) +
                           " GPUs with a DP and micro-batch size that divide the global batch "
                           "of " + std::to_string(fit.global_batch) + " sequences");
  }
  if (options.shard.n > total) {
    return Status::Invalid("--shard " + ShardName(options.shard) + ": the search has only " +
                           std::to_string(total) + " candidates, fewer than " +
                           std::to_string(options.shard.n) + " shards");
  }
  SweepReport report;
  report.set_scenario(base.name());
  report.set_command("fit");
  for (const std::string& line : options.context) report.add_space(line);
  for (const std::string& line : fit.space) report.add_space(line);
  report.set_total(total);
  if (!options.shard.whole()) report.set_shard(ShardName(options.shard));
  const auto [begin, end] = ShardRange(options.shard, total);
  const int64_t count = end - begin;
  auto& reasons = *report.mutable_reasons();

  // 1. Bounds, in workers.
  std::vector<FitBound> bounds(static_cast<size_t>(count));
  {
    FitBounder bounder(fit.capacity_bytes);
    const int64_t tasks = (count + kBoundSlice - 1) / kBoundSlice;
    int64_t done = 0;
    std::vector<bool> answered(static_cast<size_t>(count), false);
    PoolOptions pool;
    pool.jobs = std::max(1, options.jobs);
    Status s = RunPool(
        tasks, pool,
        [&](int64_t task, const Emit& emit) {
          for (int64_t i = task * kBoundSlice; i < std::min(count, (task + 1) * kBoundSlice); ++i) {
            StatusOr<Scenario> candidate =
                ApplyPoint(base, fit.PointOf(fit.candidates[static_cast<size_t>(begin + i)]));
            FitBound b;
            if (!candidate.ok()) {
              b.error = candidate.status();
            } else {
              b = bounder.Bound(*candidate);
            }
            emit(i, Encode(b));
          }
        },
        [&](int64_t item, StatusOr<std::string> bytes) {
          if (item < 0 || item >= count) return;
          answered[item] = true;
          if (bytes.ok()) {
            bounds[item] = Decode(*bytes);
          } else {
            bounds[item].error = bytes.status();
          }
          if (options.progress) options.progress("bounds", ++done, count);
        });
    for (int64_t i = 0; i < count; ++i) {
      if (!answered[i]) {
        bounds[i].kind = FitBound::kInvalid;
        bounds[i].error = Status::Failed("no bound came back: " + s.message());
      }
    }
  }

  // 2. Simulations in rounds, in order of the time bound.
  std::vector<int64_t> order;
  for (int64_t i = 0; i < count; ++i) {
    const FitBound& b = bounds[i];
    const int64_t index = begin + i;
    const Point point = fit.PointOf(fit.candidates[static_cast<size_t>(index)]);
    switch (b.kind) {
      case FitBound::kInvalid:
        *report.add_configs() = RowWithError(index, point, b.error);
        ++reasons[b.error.code() == StatusCode::kInvalidInput ? InvalidReason(b.error) : kFailed];
        break;
      case FitBound::kStaticMemory:
        *report.add_configs() = RowSkipped(index, point, kStatic + (": " + b.reason));
        ++reasons[kStatic];
        break;
      case FitBound::kMemoryBound:
        *report.add_configs() = RowSkipped(index, point, kMemoryBound + (": " + b.reason));
        ++reasons[kMemoryBound];
        break;
      case FitBound::kCandidate:
        order.push_back(i);
        break;
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return bounds[a].time_us < bounds[b].time_us; });
  std::vector<double> fitting;  // step times of those that fit, so far
  auto threshold = [&] {
    if (static_cast<int64_t>(fitting.size()) < space.top) {
      return std::numeric_limits<double>::infinity();
    }
    std::nth_element(fitting.begin(), fitting.begin() + (space.top - 1), fitting.end());
    return fitting[static_cast<size_t>(space.top - 1)];
  };
  int64_t simulated = 0;
  for (size_t next = 0; next < order.size();) {
    const double limit = threshold();
    std::vector<int64_t> round;
    while (next < order.size() && static_cast<int64_t>(round.size()) < kFitRound &&
           bounds[order[next]].time_us <= limit) {
      round.push_back(order[next++]);
    }
    if (round.empty()) {
      // Every remaining bound exceeds the K-th fastest step time.
      for (; next < order.size(); ++next) {
        const int64_t i = order[next];
        const FitBound& b = bounds[i];
        char text[160];
        std::snprintf(text, sizeof text,
                      "%s: at least %.3f ms, slower than the %lld fastest that fit (%.3f ms)",
                      kTimeBound, b.time_us / 1000, static_cast<long long>(space.top),
                      limit / 1000);
        *report.add_configs() =
            RowSkipped(begin + i, fit.PointOf(fit.candidates[static_cast<size_t>(begin + i)]), text);
        ++reasons[kTimeBound];
      }
      break;
    }
    std::vector<graph::Config> configs;
    std::vector<Point> points;
    std::vector<SimJob> jobs;
    configs.reserve(round.size());
    for (int64_t i : round) {
      points.push_back(fit.PointOf(fit.candidates[static_cast<size_t>(begin + i)]));
      StatusOr<Scenario> s = ApplyPoint(base, points.back());
      StatusOr<graph::Config> c = s.ok() ? graph::Resolve(*s) : StatusOr<graph::Config>(s.status());
      if (!c.ok()) return Status::Failed("fit: a bounded candidate no longer resolves: " +
                                         c.status().message());
      configs.push_back(std::move(*c));
      jobs.push_back({nullptr, ProfileKey(*s, configs.back())});
    }
    for (size_t j = 0; j < jobs.size(); ++j) jobs[j].config = &configs[j];
    SimulateManyOptions many;
    many.jobs = options.jobs;
    const int64_t capacity = fit.capacity_bytes, top = space.top;
    many.gate = [capacity, limit, top](const graph::Config& c, const Schedule& schedule,
                                       const std::vector<StageProfile>& stages) {
      return GateWithProfiles(c, schedule, stages, capacity, limit, top);
    };
    std::vector<std::optional<SweepConfig>> rows(round.size());
    many.on_skipped = [&](int64_t job, std::string reason) {
      rows[job] = RowSkipped(begin + round[static_cast<size_t>(job)],
                             points[static_cast<size_t>(job)], reason);
      if (options.progress) options.progress("simulating", ++simulated, static_cast<int64_t>(order.size()));
    };
    many.on_result = [&](int64_t job, StatusOr<RunReport> run) {
      const int64_t index = begin + round[static_cast<size_t>(job)];
      const Point& point = points[static_cast<size_t>(job)];
      rows[job] = run.ok() ? RowFromRun(index, point, configs[job], *run)
                           : RowWithError(index, point, run.status());
      if (options.progress) options.progress("simulating", ++simulated, static_cast<int64_t>(order.size()));
    };
    if (Status s = SimulateMany(jobs, reporter, many); !s.ok()) return s;
    for (std::optional<SweepConfig>& row : rows) {
      if (!row->skipped().empty()) {
        ++reasons[row->skipped().rfind(kTimeBound, 0) == 0 ? kTimeBound : kMemoryBound];
      } else if (row->simulated()) {
        ++reasons[row->fits() ? kFits : kNoFit];
        if (row->fits()) fitting.push_back(row->step_time_us());
      } else {
        ++reasons[row->valid() ? kFailed : InvalidReason(Status::Invalid(row->error()))];
      }
      *report.add_configs() = std::move(*row);
    }
  }
  SortConfigs(&report);
  return report;
}

}  // namespace stepsim::sim
