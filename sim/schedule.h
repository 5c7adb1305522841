// A pipeline schedule is data: for every pipeline rank, the ordered list of
// steps it runs. Built-in schedules are generators of that list; a schedule
// file can supply it. The engine executes any valid schedule the same way.
#ifndef STEPSIM_SIM_SCHEDULE_H_
#define STEPSIM_SIM_SCHEDULE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/layout.h"
#include "graph/status.h"

namespace stepsim::sim {

enum class StepKind {
  kForward,         // F: forward of one micro-batch through one chunk
  kBackward,        // B: input gradient only; its W comes as a separate step
  kWeight,          // W: weight gradient
  kBackwardWeight,  // B with its W right after each op (what 1F1B runs)
};

struct Step {
  StepKind kind = StepKind::kForward;
  int32_t microbatch = 0;
  int32_t chunk = 0;  // virtual pipeline chunk; stage = chunk * pp + rank

  bool operator==(const Step&) const = default;
};

// "F3", "B3", "W3", "BW3"; with a chunk suffix "F3.1" when `chunks` > 1.
std::string StepName(const Step& step, int64_t chunks = 1);

struct Schedule {
  std::string name;  // the kind's name ("ONE_F_ONE_B"), or a schedule file's
  int64_t pp = 1;
  int64_t chunks = 1;        // virtual chunks per rank
  int64_t microbatches = 1;
  std::vector<std::vector<Step>> ranks;  // ranks[r] = rank r's steps in order
  // Where each stage runs, per route (graph::Layout::routes), and which
  // route each micro-batch takes (empty: route 0 for all).
  std::vector<std::vector<graph::Hop>> routes;
  std::vector<int32_t> route_of;

  int32_t RouteOf(int32_t microbatch) const {
    return route_of.empty() ? 0 : route_of[microbatch];
  }
};

// One problem of a schedule: "rank 2: F3 appears twice", at step `step`
// of rank `rank`'s list (-1: the rank as a whole, or the whole schedule).
struct ScheduleProblem {
  int64_t rank = -1;
  int64_t step = -1;
  std::string message;
};

// Every problem ValidateSchedule reports, each with where it is.
std::vector<ScheduleProblem> FindScheduleProblems(const Schedule& schedule);

// Checks that every rank runs, for every (micro-batch, chunk) its routes
// place on it, exactly one F and either one BW or one B and one W, with F
// before B/BW and B before W on the rank, and nothing else. Cross-rank
// dependencies are left to the engine, which names a deadlock. Every
// problem is listed; kInvalidInput.
stepsim::Status ValidateSchedule(const Schedule& schedule);

// Refuses configurations whose schedule would be too large to build
// (3 steps per micro-batch and stage, at most 10,000,000), naming
// batch.num_microbatches.
stepsim::Status CheckScheduleSize(const graph::Config& config);

// The schedule the config asks for (`schedule.kind`), generated and named
// after the kind (graph::EnumName).
StatusOr<Schedule> BuildSchedule(const graph::Config& config);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_SCHEDULE_H_
