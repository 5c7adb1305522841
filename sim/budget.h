// What a simulation will cost, estimated from the config alone, so that a
// run that would take minutes is refused at once instead of looking like a
// hang.
//
// The estimate counts what the engine's cost grows with (design.md: one
// SimGrid activity per step, one per pipeline transfer, each op's memory
// events replayed arithmetically) and prices each with rates measured by
// `build/stepsim_budget_bench` (tools/budget_bench.cc) on the project's build
// machine; sim/budget.cc cites the measurement. It builds nothing that
// grows with the micro-batches, so refusing is instant.
#ifndef STEPSIM_SIM_BUDGET_H_
#define STEPSIM_SIM_BUDGET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/status.h"

namespace stepsim::sim {

// The default limit of `stepsim run` (README "Budgets"): an estimated
// minute of simulation.
constexpr double kDefaultMaxSeconds = 60;

struct RunCost {
  int64_t steps = 0;          // schedule steps over all ranks (an upper bound)
  int64_t transfers = 0;      // pipeline transfers between ranks
  int64_t events = 0;         // memory events the ledgers replay (estimated)
  std::vector<int64_t> rank_steps;  // steps on each pipeline rank
  double seconds = 0;         // estimated CPU seconds of the simulation
  double trace_seconds = 0;   // estimated extra seconds for a trace and CSV
};

// What each counted unit costs, in CPU seconds.
struct CostRates {
  double fixed = 0;      // start-up of a simulation
  double per_event = 0;  // replaying one memory event, with its share of the step
  // A cost growing faster than the steps (SimGrid's per-actor bookkeeping
  // did until issue 16): this rate times the sum over ranks of (steps on
  // the rank)^rank_step_exponent. Measured 0 today.
  double per_rank_step_power = 0;
  double rank_step_exponent = 2;
  double per_trace_event = 0;   // writing the Chrome trace and CSV
};

// The rates measured on the build machine (sim/budget.cc says when and how).
const CostRates& MeasuredRates();

// Layout slots (embedding, decoder layer, MTP module, loss) replay about
// this many memory events per micro-batch (measured by the benchmark).
constexpr int64_t kEventsPerSlot = 64;

// Prices the counts of `cost` with `rates`: sets seconds and trace_seconds.
void Price(const CostRates& rates, RunCost* cost);

// The sum over ranks of (steps on the rank)^exponent.
double RankStepPower(const RunCost& cost, double exponent);

// Counts from the config: steps (2 per micro-batch and stage, 3 where the
// schedule may split B and W: zero-bubble, DualPipe, a schedule file),
// transfers (2 per micro-batch and route hop between ranks), memory events
// (per micro-batch and stage, 4 per step plus kEventsPerSlot per layout
// slot) and the rates' estimate. Saturates instead of overflowing.
RunCost EstimateRunCost(const graph::Config& config, bool schedule_from_file);

struct Budget {
  double max_seconds = kDefaultMaxSeconds;  // <= 0: no time limit
  bool with_trace = false;                  // a Chrome trace or CSV is written
  int64_t max_events = 200'000'000;         // as sim::SimOptions::max_events
};

// kInvalidInput naming batch.num_microbatches when the estimate exceeds
// the time limit or the event limit, with the estimate, the counts and
// what to do ("use fewer micro-batches, or --max-seconds/--no-budget").
Status CheckBudget(const graph::Config& config, const RunCost& cost, const Budget& budget);

// Seconds for a message: "42 s", "9.5 minutes", "3.1 hours".
std::string DescribeSeconds(double seconds);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_BUDGET_H_
