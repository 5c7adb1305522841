#include "sim/fit.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

#include "sim/fit_bound.h"
#include "sim/process_pool.h"
#include "sim/sweep_rows.h"

namespace stepsim::sim {
namespace {

constexpr int64_t kBoundSlice = 256;  // candidates per bounding task

const char kFits[] = "fits";
const char kNoFit[] = "does not fit (simulated)";
const char kStatic[] = "static memory exceeds the device";
const char kMemoryBound[] = "memory bound exceeds the device";
const char kTimeBound[] = "not in the top K (time bound)";
const char kFailed[] = "failed";

// "invalid: parallel.ep" for a problem list starting "parallel.ep: ...".
std::string InvalidReason(const Status& error) {
  const std::string& m = error.message();
  const size_t colon = m.find(':');
  const std::string field = m.substr(0, colon);
  const bool is_field = colon != std::string::npos && !field.empty() &&
                        field.find_first_not_of("abcdefghijklmnopqrstuvwxyz_.") == std::string::npos;
  return "invalid: " + (is_field ? field : std::string("schedule"));
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

// "not in the top K (time bound): at least 25000.000 ms, slower than ...";
// `what` is "at least" for a bound, "simulated" for a simulated step.
std::string TimeBoundText(const char* what, double step_us, int64_t top, double limit_us) {
  char text[200];
  std::snprintf(text, sizeof text, "%s: %s %.3f ms, slower than the %lld fastest that fit (%.3f ms)",
                kTimeBound, what, step_us / 1000, static_cast<long long>(top), limit_us / 1000);
  return text;
}

// Bounds candidates `items` (indices into the shard) in worker processes,
// Quick or full, calling progress(phase, done, total) as they come back.
// A task sends its slice's bounds back at once: [u32 size][bound]...
std::vector<FitBound> BoundInWorkers(const Scenario& base, const FitCandidates& fit,
                                     int64_t begin, const std::vector<int64_t>& items,
                                     bool quick, FitBounder& bounder, const FitOptions& options,
                                     const char* phase, int64_t* done, int64_t total) {
  const int64_t count = static_cast<int64_t>(items.size());
  std::vector<FitBound> bounds(items.size());
  const int64_t tasks = (count + kBoundSlice - 1) / kBoundSlice;
  std::vector<bool> answered(items.size(), false);
  auto slice = [&](int64_t task) {
    return std::pair<int64_t, int64_t>(task * kBoundSlice,
                                       std::min(count, (task + 1) * kBoundSlice));
  };
  if (options.progress) options.progress(phase, *done, total);  // starts the phase's clock
  PoolOptions pool;
  pool.jobs = std::max(1, options.jobs);
  Status s = RunPool(
      tasks, pool,
      [&](int64_t task, const Emit& emit) {
        std::string out;
        for (int64_t i = slice(task).first; i < slice(task).second; ++i) {
          const int64_t index = begin + items[static_cast<size_t>(i)];
          const Scenario candidate =
              fit.ScenarioOf(base, fit.candidates[static_cast<size_t>(index)]);
          const FitBound b = quick ? bounder.Quick(candidate) : bounder.Bound(candidate);
          const std::string one = Encode(b);
          const uint32_t size = static_cast<uint32_t>(one.size());
          out.append(reinterpret_cast<const char*>(&size), sizeof size);
          out += one;
        }
        emit(task, out);
      },
      [&](int64_t task, StatusOr<std::string> bytes) {
        if (task < 0 || task >= tasks) return;
        const auto [first, last] = slice(task);
        size_t at = 0;
        for (int64_t i = first; i < last; ++i) {
          answered[i] = true;
          uint32_t size = 0;
          if (bytes.ok() && at + sizeof size <= bytes->size()) {
            std::memcpy(&size, bytes->data() + at, sizeof size);
            at += sizeof size;
          }
          if (!bytes.ok()) {
            bounds[i].error = bytes.status();
          } else if (size == 0 || at + size > bytes->size()) {
            bounds[i].error = Status::Failed("an unreadable bound came back from a worker");
          } else {
            bounds[i] = Decode(bytes->substr(at, size));
            at += size;
          }
        }
        if (options.progress) options.progress(phase, *done += last - first, total);
      });
  for (int64_t i = 0; i < count; ++i) {
    if (!answered[i]) {
      bounds[i].kind = FitBound::kInvalid;
      bounds[i].error = Status::Failed("no bound came back: " + s.message());
    }
  }
  return bounds;
}

}  // namespace

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
  // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
  const std::pair<int64_t, int64_t> range = ShardRange(options.shard, total);
  const int64_t begin = range.first, end = range.second;
  const int64_t count = end - begin;
  auto& reasons = *report.mutable_reasons();

  // 1. Quick bounds (static memory, time from single slots), in workers.
  FitBounder bounder(fit.capacity_bytes);
  std::vector<int64_t> all(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) all[static_cast<size_t>(i)] = i;
  int64_t quick_done = 0;
  const std::vector<FitBound> quick =
      BoundInWorkers(base, fit, begin, all, true, bounder, options, "bounds", &quick_done, count);
  auto point_of = [&](int64_t i) {
    return fit.PointOf(fit.candidates[static_cast<size_t>(begin + i)]);
  };
  // Records a candidate its bound rules out; false for one still in the race.
  auto settled = [&](int64_t i, const FitBound& b) {
    switch (b.kind) {
      case FitBound::kInvalid:
        *report.add_configs() = RowWithError(begin + i, point_of(i), b.error);
        ++reasons[b.error.code() == StatusCode::kInvalidInput ? InvalidReason(b.error) : kFailed];
        return true;
      case FitBound::kStaticMemory:
        *report.add_configs() = RowSkipped(begin + i, point_of(i), kStatic + (": " + b.reason));
        ++reasons[kStatic];
        return true;
      case FitBound::kMemoryBound:  // full bounds only
        *report.add_configs() =
            RowSkipped(begin + i, point_of(i), kMemoryBound + (": " + b.reason));
        ++reasons[kMemoryBound];
        return true;
      case FitBound::kCandidate: return false;
    }
    return false;
  };
  std::vector<int64_t> order;  // past static memory, by quick time bound
  for (int64_t i = 0; i < count; ++i) {
    if (!settled(i, quick[static_cast<size_t>(i)])) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return quick[static_cast<size_t>(a)].time_us < quick[static_cast<size_t>(b)].time_us;
  });

  // 2. Full bounds and simulations, in order of the time bounds. A
  // candidate's full time bound is at least its quick one, so once a
  // candidate's full bound is below the quick bound of every candidate not
  // yet fully bounded, no candidate can come before it.
  std::vector<double> fitting;  // step times of those that fit, so far
  auto threshold = [&] {
    if (static_cast<int64_t>(fitting.size()) < space.top) {
      return std::numeric_limits<double>::infinity();
    }
    std::nth_element(fitting.begin(), fitting.begin() + (space.top - 1), fitting.end());
    return fitting[static_cast<size_t>(space.top - 1)];
  };
  std::vector<std::pair<double, int64_t>> ready;  // (full time bound, candidate), sorted
  size_t next = 0;  // the next candidate of `order` to bound in full
  int64_t bounded = 0, simulated = 0;
  for (;;) {
    const double limit = threshold();
    const double frontier = next < order.size() && quick[order[next]].time_us <= limit
                                ? quick[order[next]].time_us
                                : std::numeric_limits<double>::infinity();
    const double safe = std::min(frontier, limit);
    int64_t can_run = 0;
    while (can_run < static_cast<int64_t>(ready.size()) && can_run < kFitRound &&
           ready[static_cast<size_t>(can_run)].first <= safe) {
      ++can_run;
    }
    if (can_run < kFitRound && frontier != std::numeric_limits<double>::infinity()) {
      // Bound the next candidates in full.
      std::vector<int64_t> batch;
      while (next < order.size() && static_cast<int64_t>(batch.size()) < kFitBoundBatch &&
             quick[order[next]].time_us <= limit) {
        batch.push_back(order[next++]);
      }
      const std::vector<FitBound> full = BoundInWorkers(
          base, fit, begin, batch, false, bounder, options, "profiles", &bounded,
          static_cast<int64_t>(order.size()));
      for (size_t j = 0; j < batch.size(); ++j) {
        if (!settled(batch[j], full[j])) ready.emplace_back(full[j].time_us, batch[j]);
      }
      std::stable_sort(ready.begin(), ready.end());
      continue;
    }
    if (can_run == 0) {
      // Every remaining bound exceeds the K-th fastest step time.
      for (const auto& [bound, i] : ready) {
        *report.add_configs() =
            RowSkipped(begin + i, point_of(i), TimeBoundText("at least", bound, space.top, limit));
        ++reasons[kTimeBound];
      }
      for (; next < order.size(); ++next) {
        const int64_t i = order[next];
        *report.add_configs() = RowSkipped(
            begin + i, point_of(i), TimeBoundText("at least", quick[i].time_us, space.top, limit));
        ++reasons[kTimeBound];
      }
      break;
    }
    const int64_t racing = static_cast<int64_t>(order.size());
    std::vector<int64_t> round;
    for (int64_t j = 0; j < can_run; ++j) round.push_back(ready[static_cast<size_t>(j)].second);
    ready.erase(ready.begin(), ready.begin() + can_run);
    std::vector<graph::Config> configs;
    std::vector<Point> points;
    std::vector<SimJob> jobs;
    configs.reserve(round.size());
    for (int64_t i : round) {
      points.push_back(point_of(i));
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
    std::vector<std::optional<SweepConfig>> rows(round.size());
    const bool can_skip = options.timing_reporter && limit != std::numeric_limits<double>::infinity();
    auto slower = [&](const RunReport& run) { return can_skip && run.step_time_us() > limit; };
    const Reporter round_reporter = [&](const graph::Config& c,
                                        const SimResult& result) -> StatusOr<RunReport> {
      if (can_skip) {
        StatusOr<RunReport> timed = options.timing_reporter(c, result);
        if (!timed.ok() || slower(*timed)) return timed;
      }
      return reporter(c, result);
    };
    many.on_result = [&](int64_t job, StatusOr<RunReport> run) {
      const int64_t index = begin + round[static_cast<size_t>(job)];
      const Point& point = points[static_cast<size_t>(job)];
      if (run.ok() && slower(*run)) {
        rows[job] = RowSkipped(index, point,
                               TimeBoundText("simulated", run->step_time_us(), space.top, limit));
      } else {
        rows[job] = run.ok() ? RowFromRun(index, point, configs[job], *run)
                             : RowWithError(index, point, run.status());
      }
      if (options.progress) options.progress("simulating", ++simulated, racing);
    };
    if (options.progress) options.progress("simulating", simulated, racing);
    if (Status s = SimulateMany(jobs, round_reporter, many); !s.ok()) return s;
    for (std::optional<SweepConfig>& row : rows) {
      if (!row->skipped().empty()) {
        ++reasons[kTimeBound];
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
