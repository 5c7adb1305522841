#include "sim/budget.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace stepsim::sim {
namespace {

// Saturating arithmetic: the counts of a hostile config may overflow.
int64_t SatMul(int64_t a, int64_t b) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) {
    return std::numeric_limits<int64_t>::max();
  }
  return a * b;
}

int64_t SatAdd(int64_t a, int64_t b) {
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max()
                                                     : a + b;
}

std::string Thousands(int64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

// Measured on 2026-12-02 with `build/stepsim_budget_bench` (tools/
// budget_bench.cc; twice) on the project's build machine: 2 cores of an
// Intel Xeon shared with three other builds, Debian 12, SimGrid 3.32, the
// engine linear in the micro-batches (issue 16), each case's CPU seconds in
// its own process, the simulation followed by the caching allocator's
// replay as `stepsim run` does it:
// - fixed and per_event: least squares over the cases under 0.2 s gives
//   0.034-0.036 s and 1.03e-7 s per estimated event; the rate is then
//   raised to the smallest that bounds every case from above, set by
//   DeepSeek-V3 under ZB-H1 at 512 micro-batches (0.70-0.71 s for 2,195,456
//   estimated events): 3.04e-7-3.07e-7, rounded up. V3 under 1F1B measured
//   0.09, 0.31-0.32, 0.59, 1.17-1.20, 2.40-2.57, 4.99-5.05 and 10.0-10.3 s
//   at 64 ... 8,192 micro-batches (estimated 1.05-1.32x that); pp4_tiny
//   0.05-1.63 s at 500 ... 16,000 (estimated 2.0-2.7x: its events cost less);
// - per_rank_step_power: 0, the fit's own result now that no case grows
//   faster than linearly (it was 1.1e-9 * steps^2.5 before issue 16);
// - per_trace_event: V3 at 1,024 micro-batches, 6.6-8.6 s for the Chrome
//   trace and CSV (with the reserved series) of 4,390,912 estimated events:
//   1.5e-6-1.96e-6, rounded up.
// So V3 with 20,000 micro-batches is estimated at 26 s without a trace, and
// the event limit (200,000,000 events, about 62 s) is reached before the
// default minute. Re-measure after changing the engine's or the allocator
// replay's cost.
const CostRates& MeasuredRates() {
  static const CostRates rates = {
      /*fixed=*/0.035,
      /*per_event=*/3.1e-7,
      /*per_rank_step_power=*/0,
      /*rank_step_exponent=*/2,
      /*per_trace_event=*/2.0e-6,
  };
  return rates;
}

double RankStepPower(const RunCost& cost, double exponent) {
  double sum = 0;
  for (int64_t steps : cost.rank_steps) sum += std::pow(static_cast<double>(steps), exponent);
  return sum;
}

void Price(const CostRates& rates, RunCost* c) {
  c->seconds = rates.fixed + rates.per_event * static_cast<double>(c->events) +
               rates.per_rank_step_power * RankStepPower(*c, rates.rank_step_exponent);
  c->trace_seconds = rates.per_trace_event * static_cast<double>(c->events);
}

RunCost EstimateRunCost(const graph::Config& config, bool schedule_from_file) {
  const int64_t m = config.batch.microbatches;
  const ScheduleKind kind = config.schedule;
  const bool split = schedule_from_file || kind == ZB_H1 || kind == ZB_H2 || kind == DUALPIPE ||
                     kind == DUALPIPE_V;
  const int64_t steps_per_pair = split ? 3 : 2;
  RunCost cost;
  for (const graph::Stage& stage : config.layout.stages) {
    const int64_t per_pair =
        SatAdd(2 * 2 * steps_per_pair,
               SatMul(kEventsPerSlot, static_cast<int64_t>(stage.slots.size())));
    cost.events = SatAdd(cost.events, SatMul(m, per_pair));
    cost.steps = SatAdd(cost.steps, SatMul(m, steps_per_pair));
  }
  // Hops between ranks, averaged over the routes (DualPipe has two).
  int64_t hops = 0;
  for (const auto& route : config.layout.routes) {
    for (size_t s = 1; s < route.size(); ++s) hops += route[s].rank != route[s - 1].rank;
  }
  const int64_t routes = std::max<int64_t>(1, static_cast<int64_t>(config.layout.routes.size()));
  cost.transfers = SatMul(SatMul(2, m), hops) / routes;
  for (const auto& stages : config.layout.rank_stages) {
    cost.rank_steps.push_back(
        SatMul(SatMul(m, steps_per_pair), static_cast<int64_t>(stages.size())));
  }
  Price(MeasuredRates(), &cost);
  return cost;
}

std::string DescribeSeconds(double seconds) {
  char text[64];
  if (!std::isfinite(seconds) || seconds > 1e9) return "more than 30 years";
  if (seconds < 120) {
    std::snprintf(text, sizeof text, "%.0f s", std::ceil(seconds));
  } else if (seconds < 2 * 3600) {
    std::snprintf(text, sizeof text, "%.1f minutes", seconds / 60);
  } else {
    std::snprintf(text, sizeof text, "%.1f hours", seconds / 3600);
  }
  return text;
}

Status CheckBudget(const graph::Config& config, const RunCost& cost, const Budget& budget) {
  const double seconds = cost.seconds + (budget.with_trace ? cost.trace_seconds : 0);
  const std::string counts = Thousands(cost.steps) + " steps, " + Thousands(cost.transfers) +
                             " transfers, about " + Thousands(cost.events) + " memory events";
  const std::string what = "batch.num_microbatches: " + Thousands(config.batch.microbatches) +
                           " micro-batches on " +
                           Thousands(static_cast<int64_t>(config.layout.stages.size())) +
                           " stages";
  if (budget.max_events > 0 && cost.events > budget.max_events) {
    return Status::Invalid(what + " make " + counts + ", more than the " +
                           Thousands(budget.max_events) +
                           " events a run may hold in memory; use fewer micro-batches or "
                           "pipeline stages (--no-budget leaves the exact count to the "
                           "simulation)");
  }
  if (budget.max_seconds > 0 && seconds > budget.max_seconds) {
    return Status::Invalid(what + " would take about " + DescribeSeconds(seconds) +
                           " to simulate (" + counts + "), more than the limit of " +
                           DescribeSeconds(budget.max_seconds) +
                           "; use fewer micro-batches, or raise the limit with --max-seconds "
                           "or lift it with --no-budget");
  }
  return Status::Ok();
}

}  // namespace stepsim::sim
