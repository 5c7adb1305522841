// stepsim compare: a sweep over schedule.kind, shown per schedule.
#include <algorithm>
#include <iostream>
#include <limits>

#include "sim/budget.h"
#include "sim/process_pool.h"
#include "sim/sweep.h"
#include "tools/output_plan.h"
#include "tools/commands.h"
#include "tools/sweep_names.h"
#include "traces/format.h"
#include "traces/json.h"
#include "traces/run_report.h"
#include "traces/table.h"

namespace stepsim::tools {
namespace {

int64_t SatAdd(int64_t a, int64_t b) {
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max()
                                                     : a + b;
}

// run's budget (sim/budget.h) for the comparison: each schedule within the
// events a run may hold, and the schedules together, the sum of their
// estimated CPU seconds (the same on every machine), within `max_seconds`.
// A schedule that cannot be configured costs nothing: the sweep reports it.
Status CheckCompareBudget(const ScenarioArgs& args, const std::vector<ScheduleKind>& kinds,
                          double max_seconds) {
  sim::RunCost sum;
  const graph::Config* shown = nullptr;
  std::string names;
  std::vector<graph::Config> configs;
  configs.reserve(kinds.size());
  for (ScheduleKind kind : kinds) {
    ScenarioArgs one = args;
    one.sets.push_back("schedule.kind=" + ScheduleKind_Name(kind));
    StatusOr<graph::Config> config = LoadConfig(one);
    if (!config.ok()) continue;
    configs.push_back(std::move(*config));
    const sim::RunCost cost = sim::EstimateRunCost(configs.back(), false);
    sim::Budget events_only;
    events_only.max_seconds = 0;
    if (Status s = sim::CheckBudget(configs.back(), cost, events_only); !s.ok()) {
      return Status::Invalid(ScheduleKind_Name(kind) + ": " + s.message());
    }
    sum.steps = SatAdd(sum.steps, cost.steps);
    sum.transfers = SatAdd(sum.transfers, cost.transfers);
    sum.events = SatAdd(sum.events, cost.events);
    sum.seconds += cost.seconds;
    if (shown == nullptr) shown = &configs.back();
    names += (names.empty() ? "" : ", ") + ScheduleKind_Name(kind);
  }
  if (shown == nullptr) return Status::Ok();
  sim::Budget budget;
  budget.max_seconds = max_seconds;
  budget.max_events = 0;  // checked per schedule above
  Status s = sim::CheckBudget(*shown, sum, budget);
  if (s.ok()) return s;
  return Status::Invalid("compare " + names + ": " + s.message());
}

}  // namespace

int RunCompare(const ScenarioArgs& args, const std::vector<std::string>& schedules,
               const std::string& json, const CompareBudget& limit) {
  std::vector<ScheduleKind> kinds;
  if (schedules.empty()) kinds = AllSchedules();
  for (const std::string& name : schedules) {
    StatusOr<ScheduleKind> kind = ScheduleByName(name, "--schedules");
    if (!kind.ok()) return Report(kind.status());
    kinds.push_back(*kind);
  }
  // The scenario as the first schedule places it (its own kind may not fit).
  ScenarioArgs first = args;
  first.sets.push_back("schedule.kind=" + ScheduleKind_Name(kinds.front()));
  StatusOr<graph::Config> config = LoadConfig(first);
  if (!config.ok()) {
    config = LoadConfig(args);
    if (!config.ok()) return Report(config.status());
  }
  StatusOr<Scenario> base = ReadScenario(args);
  if (!base.ok()) return Report(base.status());
  if (!limit.no_budget) {
    if (Status s = CheckCompareBudget(args, kinds, limit.max_seconds); !s.ok()) return Report(s);
  }

  // One sweep over the kinds; each value once, in the order asked for.
  sim::Vary vary{"schedule.kind", {}};
  for (ScheduleKind kind : kinds) {
    if (std::find(vary.values.begin(), vary.values.end(), ScheduleKind_Name(kind)) ==
        vary.values.end()) {
      vary.values.push_back(ScheduleKind_Name(kind));
    }
  }
  std::map<int64_t, RunReport> runs;
  sim::SweepOptions options;
  options.jobs = sim::AvailableCores();
  options.reports = &runs;
  options.schedule = [&](const graph::Config& c) -> StatusOr<sim::ScheduleChoice> {
    StatusOr<sim::Schedule> schedule = sim::BuildSchedule(c);
    if (!schedule.ok()) return schedule.status();
    return sim::ScheduleChoice{std::move(*schedule), false};
  };
  StatusOr<SweepReport> sweep = sim::RunSweep(*base, {vary}, traces::ReportRun, options);
  if (!sweep.ok()) return Report(sweep.status());
  std::map<int64_t, std::string> errors;
  for (const SweepConfig& c : sweep->configs()) {
    if (!c.simulated()) errors[c.index()] = c.error();
  }

  CompareReport report;
  report.set_scenario(config->name);
  for (ScheduleKind kind : kinds) {
    CompareEntry* entry = report.add_entries();
    entry->set_schedule(ScheduleKind_Name(kind));
    const int64_t index =
        std::find(vary.values.begin(), vary.values.end(), ScheduleKind_Name(kind)) -
        vary.values.begin();
    if (runs.count(index)) {
      *entry->mutable_run() = runs[index];
    } else {
      entry->set_error(errors[index]);
    }
  }
  if (json != "-") {
    traces::Table table({"<schedule", "step ms", "bubble", "max peak GiB", "fits",
                         "<peak GiB by rank"});
    for (const CompareEntry& e : report.entries()) {
      if (!e.error().empty()) {
        table.AddRow({e.schedule(), "-", "-", "-", "-",
                      "cannot run: " + e.error().substr(0, e.error().find('\n'))});
        continue;
      }
      const RunReport& r = e.run();
      double bubble = 0;
      int64_t max_peak = 0;
      bool fits = true;
      std::string peaks;
      for (const RankReport& k : r.ranks()) {
        bubble += k.bubble_fraction() / r.ranks_size();
        max_peak = std::max(max_peak, k.peak_bytes());
        fits = fits && k.fits();
        peaks += (peaks.empty() ? "" : " ") + traces::Gib(k.peak_bytes());
      }
      table.AddRow({e.schedule(), traces::Fixed(r.step_time_us() / 1000, 3),
                    traces::Fixed(100 * bubble, 1) + "%", traces::Gib(max_peak), fits ? "yes" : "NO",
                    peaks});
    }
    std::cout << config->model.name << " (" << config->name << "): PP" << config->parallel.pp
              << ", " << config->batch.microbatches << " micro-batches\n\n"
              << table.Render()
              << "(GiB = 2^30 bytes; bubble: mean over ranks of idle time before the last "
                 "step ends)\n";
  }
  if (!json.empty()) {
    Status written = WriteOutput(json, traces::ToJson(report));
    if (!written.ok()) return Report(written);
  }
  for (const CompareEntry& e : report.entries()) {
    if (e.error().empty()) return kExitOk;
  }
  std::cerr << "stepsim: no schedule could run this scenario\n";
  return kExitFailed;
}

}  // namespace stepsim::tools
