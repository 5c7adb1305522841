#include "traces/chrome_trace.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <string_view>
#include <tuple>

#include "traces/format.h"
#include "traces/memory_series.h"
#include "traces/text_writer.h"

namespace stepsim::traces {
namespace {

// Times are rounded to whole nanoseconds once, so nested slices stay nested
// when printed.
int64_t Ns(double seconds) { return std::llround(seconds * 1e9); }

double GibOf(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

constexpr int64_t kComputeTid = 1;
int64_t LaneTid(int lane) { return 2 + lane; }

// Streams events, one per line, separated by commas.
class Events {
 public:
  explicit Events(std::ostream& out) : w_(out) {
    w_ << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
  }
  // Starts an event; the caller writes its fields and calls End.
  TextWriter& Begin() {
    w_ << (first_ ? "\n{" : ",\n{");
    first_ = false;
    return w_;
  }
  void End() { w_ << '}'; }
  void Finish() { w_ << "\n]}\n"; }
  // Where the last slice written ends for a viewer: its printed start plus
  // its printed duration, in floating point.
  double LastEnd() const { return last_end_; }

  TextWriter& Ids(int64_t pid, int64_t tid) {
    return w_ << "\"pid\":" << pid << ",\"tid\":" << tid;
  }
  // An X slice up to its args: the caller writes ",\"args\":{...}" or not,
  // then End(). `within`: the end, as a viewer computes it in floating
  // point, of the slice that holds this one (LastEnd() after writing that
  // one). Where no duration lands exactly on a printed end, the holder ends
  // just below it while the held one may land on it: the held one's
  // duration then shrinks to end within its holder, or DevTools drops it.
  TextWriter& Slice(std::string_view name, std::string_view cat, int64_t pid, int64_t tid,
                    int64_t start_ns, int64_t end_ns,
                    double within = std::numeric_limits<double>::infinity()) {
    Begin() << "\"name\":";
    w_.Quoted(name) << ",\"cat\":\"" << cat << "\",\"ph\":\"X\",";
    Ids(pid, tid) << ",\"ts\":";
    w_.Micros(start_ns) << ",\"dur\":";
    double dur = ViewerDuration(start_ns, end_ns);
    const double start = static_cast<double>(start_ns) / 1000.0;
    while (dur > 0 && start + dur > within) dur = std::nextafter(dur, 0.0);
    last_end_ = start + dur;
    if (static_cast<double>(end_ns - start_ns) / 1000.0 == dur) {
      w_.Micros(end_ns - start_ns);  // three decimals read back as the same double
    } else {
      w_.Shortest(dur);
    }
    return w_;
  }
  // A flow start ("s") or end ("f", bound to the enclosing slice) at
  // `ts_ns`, where the slice it belongs to starts.
  void Flow(char phase, std::string_view name, std::string_view cat, int64_t id, int64_t pid,
            int64_t tid, int64_t ts_ns, int32_t microbatch) {
    Begin() << "\"name\":";
    w_.Quoted(name) << ",\"cat\":\"" << cat << "\",\"ph\":\"" << phase << '"'
                    << (phase == 'f' ? ",\"bp\":\"e\"" : "") << ",\"id\":" << id << ',';
    Ids(pid, tid) << ",\"ts\":";
    w_.Micros(ts_ns) << ",\"args\":{\"microbatch\":" << microbatch << '}';
    End();
  }
  void Metadata(std::string_view name, int64_t pid, int64_t tid, std::string_view key,
                std::string_view text, int64_t number) {
    Begin() << "\"name\":\"" << name << "\",\"ph\":\"M\",";
    Ids(pid, tid) << ",\"args\":{\"" << key << "\":";
    if (text.empty()) {
      w_ << number;
    } else {
      w_.Quoted(text);
    }
    w_ << '}';
    End();
  }
  TextWriter& writer() { return w_; }

 private:
  TextWriter w_;
  bool first_ = true;
  double last_end_ = 0;
};

// A send slice spans the transfer on the wire, [start, end]; a receive
// slice the buffer's wait from delivery until the step that takes it,
// [end, consumed]: the flow between them starts and ends at two distinct
// times (DevTools keys a flow's slices by their timestamp).
struct CommSlice {
  int transfer = 0;
  bool recv = false;
  int64_t start_ns = 0, end_ns = 0;
  int lane = 0;
};

// Comm slices in time order, each on the first lane of its rank that is free
// strictly before it starts (so that no two slices of a lane share a start,
// where flows bind), and the lane count per rank.
struct Lanes {
  std::vector<CommSlice> slices;
  std::vector<int> count;
};

Lanes AssignLanes(const sim::SimResult& s) {
  Lanes lanes;
  for (size_t i = 0; i < s.transfers.size(); ++i) {
    const sim::Transfer& t = s.transfers[i];
    if (t.from_rank == t.to_rank) continue;  // a hand-off: no wire, no lane
    const int64_t a = Ns(t.start), b = std::max(Ns(t.end), a);
    const int64_t c = std::max(Ns(t.consumed), b);
    lanes.slices.push_back({static_cast<int>(i), false, a, b, 0});
    lanes.slices.push_back({static_cast<int>(i), true, b, c, 0});
  }
  std::stable_sort(lanes.slices.begin(), lanes.slices.end(),
                   [](const CommSlice& x, const CommSlice& y) { return x.start_ns < y.start_ns; });
  std::vector<std::vector<int64_t>> busy_until(s.ranks.size());
  for (CommSlice& c : lanes.slices) {
    const sim::Transfer& t = s.transfers[c.transfer];
    auto& ls = busy_until[c.recv ? t.to_rank : t.from_rank];
    size_t l = 0;
    while (l < ls.size() && ls[l] >= c.start_ns) ++l;
    if (l == ls.size()) ls.push_back(0);
    ls[l] = c.end_ns;
    c.lane = static_cast<int>(l);
  }
  for (const auto& ls : busy_until) lanes.count.push_back(static_cast<int>(ls.size()));
  return lanes;
}

std::string What(const sim::Transfer& t) {
  return std::string(t.gradient ? "gradient " : "activation ") + std::to_string(t.microbatch);
}

// Hand-offs inside one rank, by the step that produces and the one that
// consumes them: (stage, micro-batch, forward) -> transfer.
struct HandOffs {
  using Key = std::tuple<int64_t, int32_t, bool>;
  std::map<Key, int> by_producer, by_consumer;
};

HandOffs FindHandOffs(const sim::SimResult& s, int64_t rank) {
  HandOffs h;
  for (size_t i = 0; i < s.transfers.size(); ++i) {
    const sim::Transfer& t = s.transfers[i];
    if (t.from_rank != rank || t.to_rank != rank) continue;
    h.by_producer[{t.from_stage, t.microbatch, !t.gradient}] = static_cast<int>(i);
    h.by_consumer[{t.to_stage, t.microbatch, !t.gradient}] = static_cast<int>(i);
  }
  return h;
}

void WriteCounters(Events& events, const sim::RankRun& run, int64_t pid) {
  const std::vector<MemorySeries>& series = AllMemorySeries();
  auto emit = [&](int64_t ns, const sim::Bytes& live) {
    const MemorySample sample{live};
    for (bool category : {false, true}) {
      TextWriter& w = events.Begin();
      w << (category ? "\"name\":\"memory by category (GiB)\",\"ph\":\"C\","
                     : "\"name\":\"memory (GiB)\",\"ph\":\"C\",");
      events.Ids(pid, kComputeTid) << ",\"ts\":";
      w.Micros(ns) << ",\"args\":{";
      bool first = true;
      for (const MemorySeries& s : series) {
        if ((s.category >= 0) != category || s.allocator) continue;
        w << (first ? "\"" : ",\"") << s.name << "\":";
        w.Fixed(GibOf(s.Bytes(sample)), 6);
        first = false;
      }
      w << '}';
      events.End();
    }
  };
  // One sample per distinct time: the last state at that time.
  int64_t pending_ns = 0;
  sim::Bytes pending = run.ledger.initial();
  run.ledger.Replay([&](double time, const sim::Bytes& live) {
    const int64_t ns = Ns(time);
    if (ns != pending_ns) emit(pending_ns, pending);
    pending_ns = ns;
    pending = live;
  });
  emit(pending_ns, pending);
}

// The allocator's series ("reserved (GiB)"), one sample per distinct
// nanosecond: the last value at it. Times never go back (a step's last
// free may print a fraction of a nanosecond after the next step's start).
void WriteReserved(Events& events, const sim::AllocatorRun& allocator, int64_t pid) {
  const std::vector<sim::ReservedPoint>& curve = allocator.reserved;
  const sim::Bytes none{};
  int64_t ns = 0;
  for (size_t i = 0; i < curve.size(); ++i) {
    ns = std::max(ns, Ns(curve[i].time));
    if (i + 1 < curve.size() && Ns(curve[i + 1].time) <= ns) continue;
    TextWriter& w = events.Begin();
    w << "\"name\":\"reserved (GiB)\",\"ph\":\"C\",";
    events.Ids(pid, kComputeTid) << ",\"ts\":";
    w.Micros(ns) << ",\"args\":{";
    const MemorySample sample{none, curve[i].bytes};
    bool first = true;
    for (const MemorySeries& s : AllMemorySeries()) {
      if (!s.allocator) continue;
      w << (first ? "\"" : ",\"") << s.name << "\":";
      w.Fixed(GibOf(s.Bytes(sample)), 6);
      first = false;
    }
    w << '}';
    events.End();
  }
}

void WriteCompute(Events& events, const sim::SimResult& s, const sim::RankRun& run, int64_t pid) {
  const HandOffs hand_offs = FindHandOffs(s, run.rank);
  const int64_t chunks = s.schedule.chunks;
  // Steps and their ops. SimGrid may end a step a fraction of a nanosecond
  // before its computed end: a step never overlaps the next.
  const auto& steps = run.ledger.steps();
  for (size_t i = 0; i < steps.size(); ++i) {
    const sim::StepRecord& r = steps[i];
    const sim::StepProfile& p = r.stage->For(r.step.kind);
    const int64_t t0 = Ns(r.start);
    int64_t t1 = std::max(t0, Ns(r.End()));
    if (i + 1 < steps.size()) t1 = std::max(t0, std::min(t1, Ns(steps[i + 1].start)));
    const std::string step = sim::StepName(r.step, chunks);
    events.Slice(step, "step", pid, kComputeTid, t0, t1)
        << ",\"args\":{\"microbatch\":" << r.step.microbatch << ",\"chunk\":" << r.step.chunk
        << ",\"stage\":" << r.stage->stage << '}';
    events.End();
    const double step_end = events.LastEnd();
    // A hand-off binds to the step slices, right after them.
    if (r.step.kind != sim::StepKind::kWeight) {
      const HandOffs::Key key{r.stage->stage, r.step.microbatch,
                              r.step.kind == sim::StepKind::kForward};
      for (const auto& [map, phase] :
           {std::pair{&hand_offs.by_producer, 's'}, std::pair{&hand_offs.by_consumer, 'f'}}) {
        const auto it = map->find(key);
        if (it == map->end()) continue;
        events.Flow(phase, "hand-off " + What(s.transfers[it->second]), "step", it->second + 1, pid,
                    kComputeTid, t0, r.step.microbatch);
      }
    }
    for (const sim::Phase& ph : p.phases) {
      const graph::Op& op = r.stage->dag.ops[ph.op];
      const int64_t a = std::clamp(Ns(r.At(ph.start)), t0, t1);
      const int64_t b = std::clamp(Ns(r.At(ph.end)), a, t1);
      int64_t alloc = 0, freed = 0;
      for (int k = 0; k < graph::kNumCategories; ++k) {
        alloc += ph.alloc[k];
        freed += ph.free[k];
      }
      TextWriter& w =
          events.Slice(op.name, graph::OpKindName(op.kind), pid, kComputeTid, a, b, step_end);
      w << ",\"args\":{\"step\":";
      w.Quoted(step) << ",\"microbatch\":" << r.step.microbatch << ",\"layer\":" << op.layer
                     << ",\"allocated_bytes\":" << alloc << ",\"freed_bytes\":" << freed << '}';
      events.End();
    }
  }
}

// ZeRO-2/3: each step's reduce-scatters on the data-parallel comm thread,
// one after another (under fixed timings one may outlast its step: it
// starts no earlier than the one before ends).
void WriteReduceScatters(Events& events, const sim::SimResult& s, const sim::RankRun& run,
                         int64_t pid, int64_t tid) {
  int64_t busy_until = 0;
  for (const sim::StepRecord& r : run.ledger.steps()) {
    const std::vector<sim::ReduceScatter>& scatters = r.stage->For(r.step.kind).reduce_scatters;
    if (scatters.empty()) continue;
    const std::string step = sim::StepName(r.step, s.schedule.chunks);
    for (const sim::ReduceScatter& rs : scatters) {
      const int64_t a = std::max(busy_until, Ns(r.At(rs.start)));
      const int64_t b = std::max(a, Ns(r.At(rs.end)));
      busy_until = b;
      TextWriter& w = events.Slice("reduce-scatter " + rs.group, "dp", pid, tid, a, b);
      w << ",\"args\":{\"step\":";
      w.Quoted(step) << ",\"microbatch\":" << r.step.microbatch << ",\"bytes\":" << rs.bytes
                     << '}';
      events.End();
    }
  }
}

void WritePeak(Events& events, const sim::RankRun& run, const RankReport& rr, int64_t pid) {
  const sim::Peak& peak = run.memory.peak;
  TextWriter& w = events.Begin();
  w << "\"name\":";
  w.Quoted("peak " + Gib(rr.peak_bytes()) + " GiB")
      << ",\"cat\":\"memory\",\"ph\":\"I\",\"s\":\"t\",";
  events.Ids(pid, kComputeTid) << ",\"ts\":";
  w.Micros(Ns(peak.time)) << ",\"args\":{";
  const MemorySample sample{peak.breakdown};
  for (const MemorySeries& s : AllMemorySeries()) {
    if (s.allocator) continue;  // the peak of live bytes; reserved has its counter
    w << '"' << s.name << "_gib\":";
    w.Fixed(GibOf(s.Bytes(sample)), 6) << ',';
  }
  w << "\"op\":";
  w.Quoted(rr.peak_op()) << ",\"step\":";
  w.Quoted(peak.step) << ",\"microbatch\":" << static_cast<int64_t>(peak.microbatch) << '}';
  events.End();
}

}  // namespace

double ViewerDuration(int64_t start_ns, int64_t end_ns) {
  // What a parser reads from the three-decimal texts: the nearest doubles
  // to the exact decimals, as a correctly rounded division gives them.
  const double start = static_cast<double>(start_ns) / 1000.0;
  const double end = static_cast<double>(end_ns) / 1000.0;
  double dur = std::max(0.0, end - start);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  while (dur > 0 && start + dur > end) dur = std::nextafter(dur, 0.0);
  while (start + std::nextafter(dur, kInf) <= end && start + dur < end) {
    dur = std::nextafter(dur, kInf);
  }
  return dur;
}

void WriteChromeTrace(const sim::SimResult& s, const RunReport& report, std::ostream& out,
                      std::span<const sim::AllocatorRun> allocators) {
  Events events(out);
  const Lanes lanes = AssignLanes(s);
  for (const sim::RankRun& run : s.ranks) {
    const int64_t pid = run.rank + 1;
    const int lane_count = lanes.count[run.rank];
    const int64_t dp_tid = LaneTid(lane_count);
    events.Metadata("process_name", pid, kComputeTid, "name", "rank " + std::to_string(run.rank),
                    0);
    events.Metadata("process_sort_index", pid, kComputeTid, "sort_index", "", run.rank);
    events.Metadata("thread_name", pid, kComputeTid, "name", "compute", 0);
    events.Metadata("thread_sort_index", pid, kComputeTid, "sort_index", "", 0);
    for (int l = 0; l < lane_count; ++l) {
      events.Metadata("thread_name", pid, LaneTid(l), "name", "pipeline comm " + std::to_string(l),
                      0);
      events.Metadata("thread_sort_index", pid, LaneTid(l), "sort_index", "", 1 + l);
    }
    events.Metadata("thread_name", pid, dp_tid, "name", "data-parallel comm", 0);
    events.Metadata("thread_sort_index", pid, dp_tid, "sort_index", "", 1 + lane_count);
    WriteCompute(events, s, run, pid);
    WriteReduceScatters(events, s, run, pid, dp_tid);
    // After the last step: the gradient reduction, the optimizer step (once
    // every rank has reduced its gradients) and the weights' all-gather,
    // each a slice of `seconds` from `start` if it takes any time.
    auto tail = [&](const char* name, const char* cat, int64_t tid, double start,
                    double seconds) {
      if (seconds <= 0) return;
      const int64_t a = Ns(start);
      events.Slice(name, cat, pid, tid, a, std::max(a, Ns(start + seconds)))
          << ",\"args\":{\"dense_params\":" << run.dense_params
          << ",\"expert_params\":" << run.expert_params << '}';
      events.End();
    };
    tail("DP gradient reduction", "dp", dp_tid, run.compute_end, run.grad_sync_seconds);
    tail("optimizer step", "optimizer", kComputeTid, run.optimizer_step, run.optimizer_seconds);
    tail("weights all-gather", "dp", dp_tid, run.optimizer_step + run.optimizer_seconds,
         run.param_gather_seconds);
    WriteCounters(events, run, pid);
    if (static_cast<size_t>(run.rank) < allocators.size()) {
      WriteReserved(events, allocators[run.rank], pid);
    }
    WritePeak(events, run, report.ranks(static_cast<int>(run.rank)), pid);
  }

  // Transfers in time order: each comm slice and, right after it, the end
  // of the flow from the send to the receive that binds to it.
  for (const CommSlice& c : lanes.slices) {
    const sim::Transfer& t = s.transfers[c.transfer];
    const std::string what = What(t);
    const int64_t pid = (c.recv ? t.to_rank : t.from_rank) + 1;
    events.Slice((c.recv ? "recv " : "send ") + what, "pipeline", pid, LaneTid(c.lane), c.start_ns,
                 c.end_ns)
        << ",\"args\":{\"bytes\":" << t.bytes << ",\"microbatch\":" << t.microbatch
        << ",\"from_stage\":" << t.from_stage << ",\"to_stage\":" << t.to_stage << '}';
    events.End();
    events.Flow(c.recv ? 'f' : 's', what, "pipeline", c.transfer + 1, pid, LaneTid(c.lane),
                c.start_ns, t.microbatch);
  }
  events.Finish();
}

std::string ChromeTrace(const sim::SimResult& result, const RunReport& report,
                        std::span<const sim::AllocatorRun> allocators) {
  std::ostringstream out;
  WriteChromeTrace(result, report, out, allocators);
  return out.str();
}

}  // namespace stepsim::traces
