// Simulating many configurations fast, and `stepsim sweep` on top of it.
//
// SimGrid allows one engine per process, so one process cannot run many
// simulations; starting a process per configuration costs more than most
// simulations. SimulateMany forks a pool of worker processes (sim/
// process_pool.h); each builds the stage profiles (op DAGs, timings) of a
// configuration key once and forks a child per simulation, which inherits
// them, runs the engine and sends its report back. Configurations that differ
// only in the schedule kind or the number of micro-batches share a key.
// Every simulation is independent and deterministic, so results do not
// depend on the number of workers.
#ifndef STEPSIM_SIM_SWEEP_H_
#define STEPSIM_SIM_SWEEP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/status.h"
#include "report.pb.h"
#include "scenario.pb.h"
#include "sim/engine.h"
#include "sim/schedule.h"
#include "sim/sweep_space.h"

namespace stepsim::sim {

// The schedule a simulation runs and whether it came from a file (a
// deadlock is then the input's fault).
struct ScheduleChoice {
  Schedule schedule;
  bool from_file = false;
};
// Where schedules come from; called in the simulating child. An empty
// function means BuildSchedule (the scenario's generated kind).
using ScheduleSource = std::function<StatusOr<ScheduleChoice>(const graph::Config&)>;

// Turns a finished simulation into its report (traces::ReportRun: traces/
// builds on sim/, so the caller passes it in).
using Reporter = std::function<StatusOr<RunReport>(const graph::Config&, const SimResult&)>;

// `message` serialized with map entries in key order, so equal messages
// give equal bytes (cache keys).
std::string DeterministicBytes(const google::protobuf::Message& message);

// What decides a configuration's stage profiles: the scenario without its
// name, schedule kind, micro-batch count and ZeRO stage below 2 (ZeRO-2/3's
// reduce-scatters and ZeRO-3's gathers are in the profiles, ZeRO-1's
// sharding is not), and the stages
// of its layout (a schedule kind can change the layout, e.g. DualPipeV's
// two chunks).
std::string ProfileKey(const Scenario& scenario, const graph::Config& config);

// One simulation to run.
struct SimJob {
  const graph::Config* config = nullptr;  // owned by the caller, alive during the call
  std::string key;                        // ProfileKey of its scenario
};

struct SimulateManyOptions {
  int jobs = 1;  // worker processes
  ScheduleSource schedule;
  // Called in the caller once per job, in completion order: the report, or
  // why the simulation could not run (kInvalidInput: the configuration
  // cannot run; kFailed: a stepsim defect or a dead process).
  std::function<void(int64_t job, StatusOr<RunReport> report)> on_result;
};

// Simulates every job. Each job gets exactly one on_result call. Returns
// kFailed if worker processes could not be started; Ok otherwise.
Status SimulateMany(const std::vector<SimJob>& jobs, const Reporter& reporter,
                    const SimulateManyOptions& options);

struct SweepOptions {
  int jobs = 1;
  Shard shard;  // the whole space by default
  ScheduleSource schedule;
  // Lines put first in SweepReport.space, e.g. the --set overrides that
  // made the base scenario, so shards of different searches do not merge.
  std::vector<std::string> context;
  // Called in the caller after each finished simulation.
  std::function<void(int64_t done, int64_t total)> progress;
  // If set, receives every simulated configuration's report, by index.
  std::map<int64_t, RunReport>* reports = nullptr;
};

// `stepsim sweep`: simulates every point of the --vary space in the shard
// (the whole space by default) applied to `base`. Bad --vary paths or
// values, a space too large and a shard past the space's size are
// kInvalidInput; configurations that do not resolve or cannot run are rows
// with their error. The report's configs are sorted (see SweepReport).
StatusOr<SweepReport> RunSweep(const Scenario& base, std::vector<Vary> varies,
                               const Reporter& reporter, const SweepOptions& options);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_SWEEP_H_
