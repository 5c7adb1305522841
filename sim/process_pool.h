// Work in forked processes. SimGrid allows one engine per process, so each
// simulation of a sweep runs in a child forked from a process that already
// holds what it needs (resolved configurations, stage profiles): the child
// inherits them copy-on-write, simulates, and returns its result as bytes
// over a pipe, so nothing is paid for process start-up.
//
// Two levels: RunPool forks `jobs` long-lived workers, each of which takes
// tasks from the caller and may keep what it built between tasks (a cache);
// RunInChild forks one short-lived child from wherever it is called.
#ifndef STEPSIM_SIM_PROCESS_POOL_H_
#define STEPSIM_SIM_PROCESS_POOL_H_

#include <cstdint>
#include <functional>
#include <string>

#include "graph/status.h"

namespace stepsim::sim {

// Runs `work` in a forked child and returns what it returned, status code
// included. kFailed if the child cannot be started or dies (naming the
// signal or exit code) before it answers. Flushes stdio before forking.
StatusOr<std::string> RunInChild(const std::function<StatusOr<std::string>()>& work);

// The processors this process may use (sched_getaffinity), at least 1.
int AvailableCores();

// Called in a worker to hand one item's result to the caller.
using Emit = std::function<void(int64_t item, const StatusOr<std::string>& result)>;

struct PoolOptions {
  int jobs = 1;  // worker processes, at least 1
};

// Runs tasks 0 .. num_tasks-1 in `jobs` worker processes forked from the
// caller, handing each idle worker the lowest task not yet handed out.
// `run_task` runs in a worker and calls `emit` once per item it finishes;
// `on_result` runs in the caller, in the order results arrive, which
// depends on timing: key results by item. If a worker dies, the items of
// its task that it did not emit are lost (the other workers go on) and the
// returned status is kFailed, naming the task; otherwise Ok. Library code:
// never prints.
Status RunPool(int64_t num_tasks, const PoolOptions& options,
               const std::function<void(int64_t task, const Emit& emit)>& run_task,
               const std::function<void(int64_t item, StatusOr<std::string> result)>& on_result);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_PROCESS_POOL_H_
