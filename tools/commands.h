// The stepsim subcommands. Each returns the process exit code. Every
// command reads its inputs with ReadFile and plans its outputs with
// OutputPlan before it computes anything.
#ifndef STEPSIM_TOOLS_COMMANDS_H_
#define STEPSIM_TOOLS_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sim/schedule.h"
#include "sim/budget.h"
#include "tools/cli_io.h"
#include "tools/output_plan.h"

namespace stepsim::tools {

int RunParams(const ScenarioArgs& args, const std::string& json);
int RunActivations(const ScenarioArgs& args, const std::string& json);
int RunDag(const ScenarioArgs& args, int64_t stage, const std::string& dot);

// `run --fail-if-oom`: the exit code when a rank does not fit.
constexpr int kExitDoesNotFit = 3;

struct RunOutputs {
  std::string schedule;  // --schedule FILE: replay instead of the scenario's schedule
  std::string report, chrome_trace, timeline;
  double resolution_us = 0;
  bool fail_if_oom = false;  // exit kExitDoesNotFit when a rank does not fit
  // Refuse runs estimated to take longer (sim/budget.h), unless no_budget.
  double max_seconds = sim::kDefaultMaxSeconds;
  bool no_budget = false;
  std::string memory_snapshot;  // --memory-snapshot FILE: a PyTorch memory snapshot
  int64_t snapshot_rank = 0;
};
int RunSimulation(const ScenarioArgs& args, const RunOutputs& outputs, bool verbose);

// Writes the schedule the scenario would run (compact form, or protobuf
// text for .textproto/.pbtxt).
int RunSchedule(const ScenarioArgs& args, const std::string& out);

// Simulates the scenario under each schedule kind (one process each, as
// SimGrid allows one engine per process) and prints a table.
// `limit`: run's budget (sim/budget.h) for the schedules together.
struct CompareBudget {
  double max_seconds = sim::kDefaultMaxSeconds;
  bool no_budget = false;
};
int RunCompare(const ScenarioArgs& args, const std::vector<std::string>& schedules,
               const std::string& json, const CompareBudget& limit = {});

int RunCheckTrace(const std::string& path);

// Simulates the scenario and draws memory over time for `ranks` ("0,1,15";
// empty: every rank up to 4, else the first, the highest and the last) into
// `out` (.png or .svg) with tools/plot_memory.py.
int RunPlot(const ScenarioArgs& args, const std::string& ranks, const std::string& out);

// Simulates each validation case (proto/validation.proto) and compares the
// prediction with what was measured: exit 0 when every measurement is within
// its case's tolerance, 1 when one is not, 2 for bad input.
int RunValidate(const std::vector<std::string>& files, const std::string& json);
// The schedule a run uses: `override_file` (--schedule FILE), else the
// scenario's schedule.file (relative to the scenario's folder), else the
// generated kind. `from_file` tells which.
StatusOr<sim::Schedule> ResolveSchedule(const graph::Config& config, const ScenarioArgs& args,
                                        const std::string& override_file, bool* from_file);

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_COMMANDS_H_
