#include "sim/ledger.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace stepsim::sim {
namespace {

// A step's phase events in order (event 2i: phase i's allocations, event
// 2i + 1: its frees), indexed so that any run of consecutive events applies
// in O(1) and a single delta finds its place among them in O(log n).
class StepIndex {
 public:
  explicit StepIndex(const StepProfile& p) : n_(static_cast<int>(p.phases.size())) {
    after_.resize(2 * static_cast<size_t>(n_));
    changes_.assign(2 * static_cast<size_t>(n_) + 1, 0);
    Bytes cum{};
    for (int i = 0; i < n_; ++i) {
      for (int free = 0; free < 2; ++free) {
        const Bytes& b = free ? p.phases[i].free : p.phases[i].alloc;
        int64_t change = 0;
        for (int k = 0; k < graph::kNumCategories; ++k) {
          cum[k] += free ? -b[k] : b[k];
          change += b[k];
        }
        const int e = 2 * i + free;
        after_[e] = cum;
        changes_[e + 1] = changes_[e] + (change != 0 ? 1 : 0);
      }
    }
    // Sparse table of the first highest allocation point over phase ranges.
    table_.push_back(std::vector<int>(static_cast<size_t>(n_)));
    for (int i = 0; i < n_; ++i) table_[0][i] = i;
    for (int width = 2; width <= n_; width *= 2) {
      const std::vector<int>& prev = table_.back();
      std::vector<int> next(static_cast<size_t>(n_ - width + 1));
      for (int i = 0; i + width <= n_; ++i) next[i] = Better(prev[i], prev[i + width / 2]);
      table_.push_back(std::move(next));
    }
  }

  int events() const { return 2 * n_; }
  // Live bytes after event e relative to the step's start (e = -1: none).
  Bytes After(int e) const { return e < 0 ? Bytes{} : after_[e]; }
  int64_t Level(int e) const { return e < 0 ? 0 : Total(after_[e]); }
  // Events in [e0, e1) that change something.
  int64_t Changes(int e0, int e1) const { return changes_[e1] - changes_[e0]; }
  // The first phase in [a, b] whose allocations reach the highest level.
  int HighestPhase(int a, int b) const {
    int k = 0;
    while ((2 << k) <= b - a + 1) ++k;
    return Better(table_[k][a], table_[k][b - (1 << k) + 1]);
  }

 private:
  int Better(int i, int j) const { return Level(2 * j) > Level(2 * i) ? j : i; }

  int n_;
  std::vector<Bytes> after_;
  std::vector<int64_t> changes_;
  std::vector<std::vector<int>> table_;
};

class Replayer {
 public:
  Replayer(const Ledger& ledger, const Ledger::OnDetailedChange& on_change)
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
    if (on_change_) on_change_({d.time, &live_, nullptr, nullptr, false, &d});
  }

  // Phase allocations (free = false) or frees of one phase of a step.
  void ApplyPhase(const StepRecord& r, const Phase& ph, bool free) {
    const double time = r.At(free ? ph.end : ph.start);
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
    if (on_change_) on_change_({time, &live_, &r, &ph, free, nullptr});
  }

  // The whole step at once: no single delta falls inside it.
  void ApplyStepFast(const StepRecord& r) {
    const StepProfile& p = r.stage->For(r.step.kind);
    if (p.peak_phase >= 0 && total_ + p.peak > result_.peak.total) {
      Bytes at = live_;
      for (int k = 0; k < graph::kNumCategories; ++k) at[k] += p.at_peak[k];
      const Phase& ph = p.phases[p.peak_phase];
      RecordPeak(r, ph, r.At(ph.start), at);
    }
    for (int k = 0; k < graph::kNumCategories; ++k) live_[k] += p.net[k];
    total_ += Total(p.net);
    result_.events += static_cast<int64_t>(2 * p.phases.size());
  }

  // Events [e0, e1) of a step at once, as ApplyPhase would one by one.
  void ApplyEvents(const StepRecord& r, const StepIndex& index, int e0, int e1) {
    if (e0 >= e1) return;
    const int a = (e0 + 1) / 2, b = (e1 + 1) / 2 - 1;  // phases allocating in range
    const int64_t base = index.Level(e0 - 1);
    if (a <= b) {
      const int i = index.HighestPhase(a, b);
      if (total_ + index.Level(2 * i) - base > result_.peak.total) {
        const Bytes from = index.After(e0 - 1), to = index.After(2 * i);
        Bytes at = live_;
        for (int k = 0; k < graph::kNumCategories; ++k) at[k] += to[k] - from[k];
        const StepProfile& p = r.stage->For(r.step.kind);
        RecordPeak(r, p.phases[i], r.At(p.phases[i].start), at);
      }
    }
    const Bytes from = index.After(e0 - 1), to = index.After(e1 - 1);
    for (int k = 0; k < graph::kNumCategories; ++k) live_[k] += to[k] - from[k];
    total_ += index.Level(e1 - 1) - base;
    result_.events += index.Changes(e0, e1);
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

  const Ledger::OnDetailedChange& on_change_;
  Bytes live_;
  int64_t total_;
  LedgerResult result_;
};

}  // namespace

LedgerResult Ledger::Replay(const OnChange& on_change) const {
  if (!on_change) return ReplayChanges(nullptr);
  return ReplayChanges([&](const Change& c) { on_change(c.time, *c.live); });
}

LedgerResult Ledger::ReplayChanges(const OnDetailedChange& on_change) const {
  // Deltas in time order; at one instant frees first, then by recording order.
  std::vector<int> order(deltas_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const Delta& x = deltas_[a];
    const Delta& y = deltas_[b];
    if (x.time != y.time) return x.time < y.time;
    return x.tie < y.tie;
  });
  // Steps by start time (an actor records them in that order already).
  auto by_start = [](const StepRecord& a, const StepRecord& b) { return a.start < b.start; };
  std::vector<StepRecord> sorted;
  if (!std::is_sorted(steps_.begin(), steps_.end(), by_start)) {
    sorted = steps_;
    std::stable_sort(sorted.begin(), sorted.end(), by_start);
  }
  const std::vector<StepRecord>& steps = sorted.empty() ? steps_ : sorted;

  Replayer replay(*this, on_change);
  std::map<const StepProfile*, StepIndex> indexes;
  size_t next = 0;  // next delta in `order`
  for (const StepRecord& r : steps) {
    const StepProfile& p = r.stage->For(r.step.kind);
    const double end = r.End();
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
    if (!on_change) {
      // Runs of phase events between the deltas that fall inside the step.
      auto it = indexes.find(&p);
      if (it == indexes.end()) it = indexes.emplace(&p, StepIndex(p)).first;
      const StepIndex& index = it->second;
      auto event_time = [&](int e) {
        const Phase& ph = p.phases[e / 2];
        return r.At(e % 2 ? ph.end : ph.start);
      };
      int e = 0;
      while (e < index.events()) {
        // The first event the next delta goes before (monotone in events).
        int lo = e, hi = index.events();
        const Delta* d = next < order.size() ? &deltas_[order[next]] : nullptr;
        if (d == nullptr) lo = hi;
        while (lo < hi) {
          const int mid = lo + (hi - lo) / 2;
          if (before(*d, event_time(mid))) {
            hi = mid;
          } else {
            lo = mid + 1;
          }
        }
        replay.ApplyEvents(r, index, e, lo);
        e = lo;
        if (e < index.events()) replay.ApplyDelta(deltas_[order[next++]]);
      }
      continue;
    }
    for (const Phase& ph : p.phases) {
      const double t_alloc = r.At(ph.start);
      while (next < order.size() && before(deltas_[order[next]], t_alloc)) {
        replay.ApplyDelta(deltas_[order[next++]]);
      }
      replay.ApplyPhase(r, ph, false);
      const double t_free = r.At(ph.end);
      while (next < order.size() && before(deltas_[order[next]], t_free)) {
        replay.ApplyDelta(deltas_[order[next++]]);
      }
      replay.ApplyPhase(r, ph, true);
    }
  }
  while (next < order.size()) replay.ApplyDelta(deltas_[order[next++]]);
  return replay.Finish();
}

Ledger::WalkOrder Ledger::Order() const {
  // The same order as Replay with on_change.
  WalkOrder out;
  out.deltas.resize(deltas_.size());
  std::iota(out.deltas.begin(), out.deltas.end(), 0);
  std::stable_sort(out.deltas.begin(), out.deltas.end(), [&](int a, int b) {
    const Delta& x = deltas_[a];
    const Delta& y = deltas_[b];
    return x.time != y.time ? x.time < y.time : x.tie < y.tie;
  });
  out.steps.reserve(steps_.size());
  for (const StepRecord& r : steps_) out.steps.push_back(&r);
  std::stable_sort(out.steps.begin(), out.steps.end(),
                   [](const StepRecord* a, const StepRecord* b) { return a->start < b->start; });
  return out;
}

}  // namespace stepsim::sim
