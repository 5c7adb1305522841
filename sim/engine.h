// The simulation of one training step on SimGrid: one actor per pipeline
// rank walks its steps as the plan lays them out (plan.h); each step is one
// SimGrid activity of the step's duration; pipeline activations and
// gradients are real SimGrid communications between the ranks' hosts
// (detached sends into the receiver's mailbox, so that a transfer starts
// when it is sent); every allocation and free lands in the rank's ledger.
// One TP/EP/DP slice is simulated as representative of the cluster
// (collectives take time from the cost model).
//
// SimGrid allows one engine per process: call Simulate at most once.
#ifndef STEPSIM_SIM_ENGINE_H_
#define STEPSIM_SIM_ENGINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/framework_memory.h"
#include "graph/status.h"
#include "sim/ledger.h"
#include "sim/schedule.h"
#include "sim/step_profile.h"

namespace stepsim::sim {

// A pipeline transfer (activation forward or gradient backward).
struct Transfer {
  int64_t from_rank = 0, to_rank = 0;
  int64_t from_stage = 0, to_stage = 0;
  bool gradient = false;
  int32_t microbatch = 0;
  int64_t bytes = 0;
  double start = 0, end = 0;  // on the wire
  double consumed = 0;        // when the receiving step took it
};

struct RankRun {
  int64_t rank = 0;
  Ledger ledger;
  Bytes static_bytes{};  // weights, gradients, optimizer, workspaces: live before the step
  // The named parts of static_bytes and, after the step, the input batches
  // the training loop keeps ("retained_batches"): what is allocated after
  // the step, by name.
  std::vector<std::pair<std::string, int64_t>> buffers{};
  int64_t retained_bytes = 0;  // input batches still held after the step
  // The optimizer step's gradient copies, kept after the step
  // (graph::OptimizerGradientCopyBytes). Set before the simulation runs.
  int64_t gradient_copy_bytes = 0;
  int64_t dense_params = 0, expert_params = 0;  // held, before ZeRO sharding
  double busy = 0;             // seconds running steps
  double compute_end = 0;      // end of the rank's last step
  double end = 0;              // after the gradient reduction and weights' gather
  double grad_sync_seconds = 0;
  // When the optimizer step begins: once every rank has reduced its
  // gradients (the gradient norm's all-reduce).
  double optimizer_step = 0;
  double optimizer_seconds = 0;     // the step itself, from optimizer_step on
  double param_gather_seconds = 0;  // after it (ZeRO-1/2)
  LedgerResult memory{};       // filled by Simulate: the replayed ledger
};

struct SimResult {
  Schedule schedule;
  std::vector<StageProfile> stages;  // by stage index
  std::vector<RankRun> ranks;
  std::vector<Transfer> transfers;
  double step_time = 0;     // the slowest rank's end
  double compute_end = 0;   // the slowest rank's last step end
};

struct SimOptions {
  bool verbose = false;          // SimGrid's own log and per-step logging
  bool schedule_from_file = false;  // a deadlock is then the input's fault
  int64_t max_events = 200'000'000;  // refuse larger simulations up front
};

// Runs the step. kInvalidInput for configurations that cannot run (and for
// a replayed schedule that deadlocks); kFailed for a deadlock of a built-in
// schedule or a ledger that does not return to its static state (bugs), and
// for an engine module that cannot be loaded (below).
StatusOr<SimResult> Simulate(const graph::Config& config, const Schedule& schedule,
                             const SimOptions& options);
// The same with the stages' profiles already built by BuildStageProfiles for
// this config (a sweep builds them once per distinct configuration).
StatusOr<SimResult> Simulate(const graph::Config& config, const Schedule& schedule,
                             const SimOptions& options, std::vector<StageProfile> stages);

// Loading SimGrid costs more than everything else a small command does (it
// pulls in 16 ns-3 libraries), so the `stepsim` command keeps the engine in a
// module, stepsim_engine.so next to the executable (engine_loader.cc), and
// loads it on the first Simulate or here; commands that never simulate never
// load SimGrid. Call it before forking children that simulate, so that they
// share one load. kFailed with the loader's message if the module is missing
// or does not load. Programs linked with the engine itself (the tests)
// return Ok at once.
Status LoadEngine();

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_ENGINE_H_
