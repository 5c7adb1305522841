#include "sim/ledger.h"

#include <algorithm>
#include <numeric>

namespace stepsim::sim {
namespace {

class Replayer {
 public:
  Replayer(const Ledger& ledger, const Ledger::OnChange& on_change)
      : on_change_(on_change), live_(ledger.initial()), total_(Total(live_)) {
    result_.peak.total = total_;
    result_.peak.breakdown = live_;
    result_.peak.op = "static state";
  }

  void ApplyDelta(const Delta& d) {
    live_[static_cast<int>(d.category)] += d.bytes;
    total_ += d.bytes;
    ++result_.events;
    if (d.bytes > 0 && total_ > result_.peak.total) {
      result_.peak = Peak{d.time, total_, live_, d.what, "", d.microbatch, -1};
    }
    if (on_change_) on_change_(d.time, live_);
  }

  // Phase allocations (free = false) or frees of one phase of a step.
  void ApplyPhase(const StepRecord& r, const Phase& ph, bool free) {
    const double time = r.start + (free ? ph.end : ph.start);
    const Bytes& b = free ? ph.free : ph.alloc;
    int64_t change = 0;
    for (int k = 0; k < graph::kNumCategories; ++k) {
      live_[k] += free ? -b[k] : b[k];
      change += b[k];
    }
    if (change == 0) return;
    total_ += free ? -change : change;
    ++result_.events;
    if (!free && total_ > result_.peak.total) RecordPeak(r, ph, time, live_);
    if (on_change_) on_change_(time, live_);
  }

  // The whole step at once: no single delta falls inside it.
  void ApplyStepFast(const StepRecord& r) {
    const StepProfile& p = r.stage->For(r.step.kind);
    if (p.peak_phase >= 0 && total_ + p.peak > result_.peak.total) {
      Bytes at = live_;
      for (int k = 0; k < graph::kNumCategories; ++k) at[k] += p.at_peak[k];
      const Phase& ph = p.phases[p.peak_phase];
      RecordPeak(r, ph, r.start + ph.start, at);
    }
    for (int k = 0; k < graph::kNumCategories; ++k) live_[k] += p.net[k];
    total_ += Total(p.net);
    result_.events += static_cast<int64_t>(2 * p.phases.size());
  }

  LedgerResult Finish() {
    result_.end = live_;
    return result_;
  }

 private:
  void RecordPeak(const StepRecord& r, const Phase& ph, double time, const Bytes& live) {
    const graph::Op& op = r.stage->dag.ops[ph.op];
    result_.peak = Peak{time,
                        Total(live),
                        live,
                        std::string(graph::OpKindName(op.kind)) + " " + op.name,
                        StepName(r.step, r.chunks),
                        r.step.microbatch,
                        op.layer};
  }

  const Ledger::OnChange& on_change_;
  Bytes live_;
  int64_t total_;
  LedgerResult result_;
};

}  // namespace

LedgerResult Ledger::Replay(const OnChange& on_change) const {
  // Deltas in time order; at one instant frees first, then by recording order.
  std::vector<int> order(deltas_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const Delta& x = deltas_[a];
    const Delta& y = deltas_[b];
    if (x.time != y.time) return x.time < y.time;
    return x.tie < y.tie;
  });
  std::vector<StepRecord> steps = steps_;
  std::stable_sort(steps.begin(), steps.end(),
                   [](const StepRecord& a, const StepRecord& b) { return a.start < b.start; });

  Replayer replay(*this, on_change);
  size_t next = 0;  // next delta in `order`
  for (const StepRecord& r : steps) {
    const StepProfile& p = r.stage->For(r.step.kind);
    const double end = r.start + p.duration;
    // A delta goes before a step event at time t if it is earlier, or at the
    // same time unless that time is the step's end (where the step's own
    // frees come first).
    auto before = [&](const Delta& d, double t) {
      return d.time < t || (d.time == t && (t < end || t == r.start));
    };
    while (next < order.size() && before(deltas_[order[next]], r.start)) {
      replay.ApplyDelta(deltas_[order[next++]]);
    }
    const bool clear = next >= order.size() || deltas_[order[next]].time >= end;
    if (!on_change && clear) {
      replay.ApplyStepFast(r);
      continue;
    }
    for (const Phase& ph : p.phases) {
      const double t_alloc = r.start + ph.start;
      while (next < order.size() && before(deltas_[order[next]], t_alloc)) {
        replay.ApplyDelta(deltas_[order[next++]]);
      }
      replay.ApplyPhase(r, ph, false);
      const double t_free = r.start + ph.end;
      while (next < order.size() && before(deltas_[order[next]], t_free)) {
        replay.ApplyDelta(deltas_[order[next++]]);
      }
      replay.ApplyPhase(r, ph, true);
    }
  }
  while (next < order.size()) replay.ApplyDelta(deltas_[order[next++]]);
  return replay.Finish();
}

void Ledger::Visit(LedgerVisitor& visitor) const {
  // The same order as Replay with on_change: deltas by time and tie class,
  // steps by start, a delta before a step event at its instant unless that
  // instant is the step's end.
  std::vector<int> order(deltas_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const Delta& x = deltas_[a];
    const Delta& y = deltas_[b];
    return x.time != y.time ? x.time < y.time : x.tie < y.tie;
  });
  std::vector<const StepRecord*> steps;
  steps.reserve(steps_.size());
  for (const StepRecord& r : steps_) steps.push_back(&r);
  std::stable_sort(steps.begin(), steps.end(), [](const StepRecord* a, const StepRecord* b) {
    return a->start < b->start;
  });
  size_t next = 0;
  for (const StepRecord* r : steps) {
    const StepProfile& p = r->stage->For(r->step.kind);
    const double end = r->start + p.duration;
    auto flush = [&](double t) {
      while (next < order.size()) {
        const Delta& d = deltas_[order[next]];
        if (!(d.time < t || (d.time == t && (t < end || t == r->start)))) break;
        visitor.OnDelta(d);
        ++next;
      }
    };
    flush(r->start);
    for (const Phase& ph : p.phases) {
      flush(r->start + ph.start);
      visitor.OnPhase(*r, ph, false, r->start + ph.start);
      flush(r->start + ph.end);
      visitor.OnPhase(*r, ph, true, r->start + ph.end);
    }
  }
  while (next < order.size()) visitor.OnDelta(deltas_[order[next++]]);
}

}  // namespace stepsim::sim
