// The memory ledger of one simulated rank: the truth about its memory.
//
// During the simulation a rank's actor records the steps it ran (start
// time and profile) and single allocations or frees (pipeline buffers, DP
// buckets) at their simulated times, in any order. Replay() then walks
// everything in time order and finds the peak with its cause. Ties at one
// instant: single deltas go by their `tie` class (a transfer's arrival
// before its consumption); they come before a step that starts at that
// instant and after the frees of a step that ends then; a step's own events
// keep their order.
#ifndef STEPSIM_SIM_LEDGER_H_
#define STEPSIM_SIM_LEDGER_H_

#include <functional>
#include <string>
#include <vector>

#include "sim/schedule.h"
#include "sim/step_profile.h"

namespace stepsim::sim {

struct StepRecord {
  double start = 0;
  const StageProfile* stage = nullptr;
  Step step;
  int64_t chunks = 1;  // the schedule's chunks per rank, for step names
  // The step runs at this multiple of its profile's times: the two steps
  // of an overlapped forward-backward pair (DualPipe) share the pair's
  // overlapped duration (PlanStep::scale).
  double scale = 1;

  // The simulated time `t` seconds into the step's profile.
  double At(double t) const { return start + t * scale; }
  double End() const { return At(stage->For(step.kind).duration); }
};

struct Delta {
  double time = 0;
  graph::Category category = graph::Category::kComm;
  int64_t bytes = 0;  // positive: allocate; negative: free
  std::string what;   // "send activation 3"
  int32_t microbatch = -1;
  // Order among deltas at the same instant: 0 a transfer starts (its
  // buffers appear), 1 a received buffer is consumed, 2 anything else.
  int tie = 2;
};

// The live bytes at a rank's highest point and what was running.
struct Peak {
  double time = 0;
  int64_t total = 0;
  Bytes breakdown{};
  std::string op;          // "F L7.mla.softmax" or a buffer ("recv F3")
  std::string step;        // "F3", "BW0", "" outside a step
  int32_t microbatch = -1;
  int64_t layer = -1;
};

struct LedgerResult {
  Peak peak;
  Bytes end{};  // live bytes after everything
  int64_t events = 0;
};

class Ledger {
 public:
  // `initial` is live at time 0 (static state and workspace).
  explicit Ledger(Bytes initial) : initial_(initial) {}

  void AddStep(const StepRecord& record) { steps_.push_back(record); }
  void AddDelta(Delta delta) { deltas_.push_back(std::move(delta)); }

  const Bytes& initial() const { return initial_; }
  const std::vector<StepRecord>& steps() const { return steps_; }
  const std::vector<Delta>& deltas() const { return deltas_; }

  // Called after every change with the time and the live bytes.
  using OnChange = std::function<void(double time, const Bytes& live)>;
  // Replays in time order. With `on_change` every event is visited; without
  // it a step with no single delta inside it is applied in O(1).
  LedgerResult Replay(const OnChange& on_change = nullptr) const;
  // Walks every event, one by one, in exactly Replay's order (no step is
  // folded into one change):
  //   - on_delta(delta): a single delta (pipeline buffer, DP bucket) at
  //     delta.time;
  //   - on_step(step): before the events of each step;
  //   - on_phase(step, phase, free, time): the allocations of `phase` of
  //     `step` (free = false, at its start) or its frees (free = true, at
  //     its end); `time` is absolute. The phase's op is
  //     step.stage->dag.ops[phase.op] with its tensor events; phase.alloc
  //     and phase.free may hold more (ZeRO-3 gathered weights).
  // The initial bytes are not events. A template, so that the caching
  // allocator's replay, which walks every rank's ledger, makes no indirect
  // call per event.
  template <typename OnDelta, typename OnStep, typename OnPhase>
  void Walk(OnDelta&& on_delta, OnStep&& on_step, OnPhase&& on_phase) const;

  // One change and what made it: an op of a step (its allocations at the
  // op's start, or its frees at its end) or a single delta. The pointers
  // are valid during the call.
  struct Change {
    double time = 0;
    const Bytes* live = nullptr;         // after the change
    const StepRecord* step = nullptr;    // the step of the op, or null
    const Phase* phase = nullptr;        // the op's phase in that step's profile
    bool free = false;                   // the op's frees (else its allocations)
    const Delta* delta = nullptr;        // or the single delta
  };
  using OnDetailedChange = std::function<void(const Change& change)>;
  // Replays like Replay(on_change), telling what made each change.
  LedgerResult ReplayChanges(const OnDetailedChange& on_change) const;

 private:
  // Replay's order: deltas (indices) by time and tie class, steps by
  // start, each stable.
  struct WalkOrder {
    std::vector<int> deltas;
    std::vector<const StepRecord*> steps;
  };
  WalkOrder Order() const;

  Bytes initial_;
  std::vector<StepRecord> steps_;
  std::vector<Delta> deltas_;
};

template <typename OnDelta, typename OnStep, typename OnPhase>
void Ledger::Walk(OnDelta&& on_delta, OnStep&& on_step, OnPhase&& on_phase) const {
  // A delta goes before a step event at its instant unless that instant is
  // the step's end.
  const WalkOrder order = Order();
  size_t next = 0;
  for (const StepRecord* r : order.steps) {
    const StepProfile& p = r->stage->For(r->step.kind);
    const double end = r->End();
    auto flush = [&](double t) {
      while (next < order.deltas.size()) {
        const Delta& d = deltas_[order.deltas[next]];
        if (!(d.time < t || (d.time == t && (t < end || t == r->start)))) break;
        on_delta(d);
        ++next;
      }
    };
    flush(r->start);
    on_step(*r);
    for (const Phase& ph : p.phases) {
      flush(r->At(ph.start));
      on_phase(*r, ph, false, r->At(ph.start));
      flush(r->At(ph.end));
      on_phase(*r, ph, true, r->At(ph.end));
    }
  }
  while (next < order.deltas.size()) on_delta(deltas_[order.deltas[next++]]);
}

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_LEDGER_H_
