// stepsim_budget_bench: measures what simulations cost and fits the rates
// sim/budget.cc prices runs with.
//
// Each case (a scenario and --set overrides) runs in its own process (one
// SimGrid engine per process): load, build the schedule, simulate and replay
// the caching allocator (as `stepsim run` does), and, for the "+trace" twin
// of a case, write the Chrome trace and CSV (with the reserved series) to a
// temporary file. It prints the CPU seconds measured, the counts the budget estimates
// (and the simulation's real ones), the estimate with the current rates and
// with the rates fitted here: a non-negative least-squares fit of relative
// error over every case.
//
//   cmake --build build --target stepsim_budget_bench && build/stepsim_budget_bench [runs]
//
// With `runs`, each case's figure is the best of that many runs.
//
// CPU time is what a benchmark measures; it never reaches stepsim's outputs.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "sim/budget.h"
#include "sim/engine.h"
#include "sim/memory_stream.h"
#include "sim/schedule.h"
#include "tools/cli_io.h"
#include "tools/cpu_time.h"
#include "tools/in_child.h"
#include "traces/chrome_trace.h"
#include "traces/run_report.h"
#include "traces/timeline_csv.h"

namespace {

using stepsim::sim::CostRates;
using stepsim::sim::RunCost;

struct Case {
  std::string scenario;  // under scenarios/
  std::vector<std::string> sets;
};

struct Measured {
  bool ok = false;
  double seconds = 0, trace_seconds = 0;  // CPU: simulation, then the writers
  int64_t events = 0, steps = 0, transfers = 0;
};

using stepsim::tools::CpuSeconds;

// Runs the case in a child process (one SimGrid engine per process).
Measured Measure(const Case& c, bool trace) {
  std::optional<Measured> measured = stepsim::tools::InChild([&] {
    Measured m;
    const double start = CpuSeconds();
    stepsim::tools::ScenarioArgs args{std::string(STEPSIM_SOURCE_DIR) + "/scenarios/" + c.scenario,
                                      c.sets};
    auto config = stepsim::tools::LoadConfig(args);
    if (!config.ok()) return m;
    auto schedule = stepsim::sim::BuildSchedule(*config);
    if (!schedule.ok()) return m;
    stepsim::sim::SimOptions options;
    options.max_events = INT64_MAX;
    auto result = stepsim::sim::Simulate(*config, *schedule, options);
    if (!result.ok()) return m;
    auto allocators = stepsim::sim::ReplayAllocators(*config, *result);
    if (!allocators.ok()) return m;
    m.seconds = CpuSeconds() - start;
    for (const auto& rank : result->ranks) {
      m.events += rank.memory.events;
      m.steps += static_cast<int64_t>(rank.ledger.steps().size());
    }
    m.transfers = static_cast<int64_t>(result->transfers.size());
    if (trace) {
      const double written = CpuSeconds();
      const auto report = stepsim::traces::BuildRunReport(*config, *result, &*allocators);
      char path[] = "/tmp/stepsim_budget_XXXXXX";
      const int fd = mkstemp(path);
      if (fd < 0) return m;
      close(fd);
      std::ofstream out(path, std::ios::binary);
      stepsim::traces::WriteChromeTrace(*result, report, out, *allocators);
      stepsim::traces::WriteTimelineCsv(*result, 0, out, *allocators);
      out.close();
      std::remove(path);
      m.trace_seconds = CpuSeconds() - written;
    }
    m.ok = true;
    return m;
  });
  return measured.value_or(Measured{});
}

// The rates: the fixed cost and the cost per memory event by least squares
// over the small cases (under 0.2 s); the rate per event then raised to the
// smallest that makes the estimate an upper bound of every case (the cost
// per event differs between models); then, for each exponent of a grid, the
// smallest superlinear rate that keeps it so (zero while the engine stays
// linear, issue 16), keeping the exponent whose estimates of the cases that
// matter (1 s or more) are the least too high.
CostRates Fit(const std::vector<RunCost>& costs, const std::vector<double>& seconds) {
  double n = 0, sx = 0, sxx = 0, sy = 0, sxy = 0;
  for (size_t i = 0; i < costs.size(); ++i) {
    if (seconds[i] >= 0.2) continue;
    const double x = static_cast<double>(costs[i].events);
    n += 1;
    sx += x;
    sxx += x * x;
    sy += seconds[i];
    sxy += x * seconds[i];
  }
  CostRates best;
  const double det = n * sxx - sx * sx;
  if (n < 2 || det == 0) return best;
  best.per_event = std::max(0.0, (n * sxy - sx * sy) / det);
  best.fixed = std::max(0.0, (sy - best.per_event * sx) / n);
  for (size_t i = 0; i < costs.size(); ++i) {
    if (costs[i].events <= 0) continue;
    best.per_event = std::max(best.per_event, (seconds[i] - best.fixed) /
                                                  static_cast<double>(costs[i].events));
  }
  double best_worst = INFINITY;
  for (double p : {2.0, 2.25, 2.5, 2.75, 3.0}) {
    CostRates r = best;
    r.rank_step_exponent = p;
    r.per_rank_step_power = 0;
    for (size_t i = 0; i < costs.size(); ++i) {
      const double linear = r.fixed + r.per_event * static_cast<double>(costs[i].events);
      const double power = stepsim::sim::RankStepPower(costs[i], p);
      if (power > 0) r.per_rank_step_power = std::max(r.per_rank_step_power, (seconds[i] - linear) / power);
    }
    double worst = 0;
    for (size_t i = 0; i < costs.size(); ++i) {
      if (seconds[i] < 1) continue;
      RunCost c = costs[i];
      stepsim::sim::Price(r, &c);
      worst = std::max(worst, c.seconds / seconds[i]);
    }
    if (worst < best_worst) {
      best_worst = worst;
      const double fixed = best.fixed, per_event = best.per_event;
      best = r;
      best.fixed = fixed;
      best.per_event = per_event;
    }
  }
  return best;
}

void PrintRates(const char* what, const CostRates& r) {
  std::printf("%s: fixed %.3g, per_event %.3g, per_rank_step_power %.3g, rank_step_exponent "
              "%.2f, per_trace_event %.3g\n",
              what, r.fixed, r.per_event, r.per_rank_step_power, r.rank_step_exponent,
              r.per_trace_event);
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1;
  std::vector<Case> cases;
  for (int m : {500, 1000, 2000, 4000, 8000, 16000}) {
    cases.push_back({"pp4_tiny.textproto", {"batch.num_microbatches=" + std::to_string(m)}});
  }
  for (int m : {64, 256, 512, 1024, 2048, 4096, 8192}) {
    cases.push_back({"deepseek_v3.textproto", {"batch.num_microbatches=" + std::to_string(m)}});
  }
  cases.push_back({"deepseek_v3.textproto",
                   {"batch.num_microbatches=1024", "parallel.pp=8",
                    "schedule.kind=INTERLEAVED_ONE_F_ONE_B"}});
  cases.push_back({"deepseek_v3.textproto",
                   {"batch.num_microbatches=512", "schedule.kind=ZB_H1"}});
  cases.push_back({"deepseek_v2.textproto", {"batch.num_microbatches=512"}});

  std::vector<double> trace_extra, trace_events;
  std::vector<RunCost> costs;
  std::vector<double> seconds;
  std::printf("%-40s %9s %10s %12s %12s %9s %9s %9s\n", "case", "steps", "transfers",
              "events est", "events", "cpu s", "est s", "trace s");
  for (const Case& c : cases) {
    stepsim::tools::ScenarioArgs args{std::string(STEPSIM_SOURCE_DIR) + "/scenarios/" + c.scenario,
                                      c.sets};
    auto config = stepsim::tools::LoadConfig(args);
    if (!config.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.scenario.c_str(), config.status().message().c_str());
      return 1;
    }
    const RunCost cost = stepsim::sim::EstimateRunCost(*config, false);
    const bool trace = c.sets.size() == 1 && c.sets[0].find("=1024") != std::string::npos;
    Measured m = Measure(c, trace);
    for (int r = 1; r < runs && m.ok; ++r) {  // best of `runs`
      const Measured again = Measure(c, trace);
      if (!again.ok) m.ok = false;
      m.seconds = std::min(m.seconds, again.seconds);
      m.trace_seconds = std::min(m.trace_seconds, again.trace_seconds);
    }
    if (!m.ok) {
      std::fprintf(stderr, "%s: the simulation failed\n", c.scenario.c_str());
      return 1;
    }
    std::string name = c.scenario.substr(0, c.scenario.find('.'));
    for (const std::string& s : c.sets) name += " " + s.substr(s.find('.') + 1);
    std::printf("%-40s %9lld %10lld %12lld %12lld %9.3f %9.3f %9.3f\n", name.c_str(),
                static_cast<long long>(cost.steps), static_cast<long long>(cost.transfers),
                static_cast<long long>(cost.events), static_cast<long long>(m.events), m.seconds,
                cost.seconds, m.trace_seconds);
    costs.push_back(cost);
    seconds.push_back(m.seconds);
    if (trace) {
      trace_extra.push_back(m.trace_seconds);
      trace_events.push_back(static_cast<double>(cost.events));  // what Price multiplies
    }
  }
  CostRates fitted = Fit(costs, seconds);
  double extra = 0, events = 0;
  for (size_t i = 0; i < trace_extra.size(); ++i) {
    extra += trace_extra[i];
    events += trace_events[i];
  }
  fitted.per_trace_event = events > 0 ? extra / events : 0.0;
  std::printf("\n");
  PrintRates("fitted rates (CPU seconds)", fitted);
  PrintRates("current rates (sim/budget.cc)", stepsim::sim::MeasuredRates());
  std::printf("\nestimate / measured, per case, with the fitted rates:");
  for (size_t i = 0; i < costs.size(); ++i) {
    RunCost c = costs[i];
    stepsim::sim::Price(fitted, &c);
    std::printf(" %.2f", c.seconds / seconds[i]);
  }
  std::printf("\n  with the current rates:");
  for (size_t i = 0; i < costs.size(); ++i) std::printf(" %.2f", costs[i].seconds / seconds[i]);
  std::printf("\n");
  return 0;
}
