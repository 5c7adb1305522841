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

// Measured with `build/stepsim_budget_bench 2` (tools/budget_bench.cc) on
// the project's build machine (2 cores shared with other jobs, Debian 12,
// SimGrid 3.32), CPU seconds of each case in its own process:
// - fixed and per_event: least squares over the cases under 0.2 s (pp4_tiny
//   and DeepSeek-V3/V2 at 64 to 500 micro-batches): 0.008-0.019 s and
//   1.05e-7 s per memory event;
// - the superlinear term (SimGrid scanning each actor's list of pending
//   activities, issue 16): exponent 2.5 and the smallest rate that bounds
//   every case from above; V3 PP16 at 1,024 and 2,048 micro-batches measured
//   2.0-2.8 s and 15-21 s (the machine's load varies), estimated 3.0 s and
//   20 s; pp4_tiny at 3,000 measured 1.3-1.6 s, estimated 9 s (too high:
//   the term does not depend on the steps alone);
// - per_trace_event: V3 at 1,024 micro-batches, 7.7-10 s for 4.3 million
//   events of Chrome trace and CSV.
// Re-measure after changing the engine's cost: issue 16 removes the
// superlinear term.
const CostRates& MeasuredRates() {
  static const CostRates rates = {
      /*fixed=*/0.019,
      /*per_event=*/1.05e-7,
      /*per_rank_step_power=*/1.1e-9,
      /*rank_step_exponent=*/2.5,
      /*per_trace_event=*/1.8e-6,
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
