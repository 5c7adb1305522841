#include "traces/chrome_trace.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string_view>

#include "traces/text_writer.h"

namespace stepsim::traces {
namespace {

using graph::Category;

// Times are rounded to whole nanoseconds once, so nested slices stay nested
// when printed.
int64_t Ns(double seconds) { return std::llround(seconds * 1e9); }

double Gib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

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
  TextWriter& writer() { return w_; }

 private:
  TextWriter w_;
  bool first_ = true;
};

}  // namespace

void WriteChromeTrace(const sim::SimResult& s, const RunReport& report, std::ostream& out) {
  Events events(out);
  const int64_t chunks = s.schedule.chunks;

  // Pipeline transfers go to comm lanes: the first lane free at their start.
  struct Lane {
    int64_t busy_until = -1;
  };
  std::vector<std::vector<Lane>> lanes(s.ranks.size());
  std::vector<int> send_lane(s.transfers.size()), recv_lane(s.transfers.size());
  std::vector<int> order(s.transfers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return Ns(s.transfers[a].start) < Ns(s.transfers[b].start);
  });
  auto take = [&](int64_t rank, int64_t start, int64_t end) {
    auto& ls = lanes[rank];
    for (size_t l = 0; l < ls.size(); ++l) {
      if (ls[l].busy_until <= start) {
        ls[l].busy_until = end;
        return static_cast<int>(l);
      }
    }
    ls.push_back({end});
    return static_cast<int>(ls.size()) - 1;
  };
  for (int i : order) {
    const sim::Transfer& t = s.transfers[i];
    send_lane[i] = take(t.from_rank, Ns(t.start), Ns(t.end));
    recv_lane[i] = take(t.to_rank, Ns(t.start), Ns(t.end));
  }
  auto ids = [](TextWriter& w, int64_t pid, int64_t tid) -> TextWriter& {
    return w << "\"pid\":" << pid << ",\"tid\":" << tid;
  };

  for (const sim::RankRun& run : s.ranks) {
    const int64_t pid = run.rank;
    auto metadata = [&](std::string_view name, int64_t tid, std::string_view key) -> TextWriter& {
      TextWriter& w = events.Begin();
      w << "\"name\":\"" << name << "\",\"ph\":\"M\",";
      return ids(w, pid, tid) << ",\"args\":{\"" << key << "\":";
    };
    metadata("process_name", 0, "name") << "\"rank " << pid << "\"}";
    events.End();
    metadata("process_sort_index", 0, "sort_index") << pid << '}';
    events.End();
    metadata("thread_name", 0, "name") << "\"compute\"}";
    events.End();
    for (size_t l = 0; l < lanes[run.rank].size(); ++l) {
      metadata("thread_name", 1 + static_cast<int64_t>(l), "name")
          << "\"pipeline comm " << static_cast<int64_t>(l) << "\"}";
      events.End();
    }
    // Steps and their ops. SimGrid may end a step a fraction of a
    // nanosecond before its computed end: a step never overlaps the next.
    const auto& steps = run.ledger.steps();
    for (size_t i = 0; i < steps.size(); ++i) {
      const sim::StepRecord& r = steps[i];
      const sim::StepProfile& p = r.stage->For(r.step.kind);
      const int64_t t0 = Ns(r.start);
      int64_t t1 = std::max(t0, Ns(r.start + p.duration));
      if (i + 1 < steps.size()) t1 = std::max(t0, std::min(t1, Ns(steps[i + 1].start)));
      const std::string step = sim::StepName(r.step, chunks);
      TextWriter& w = events.Begin();
      w << "\"name\":";
      w.Quoted(step) << ",\"cat\":\"step\",\"ph\":\"X\",";
      ids(w, pid, 0) << ",\"ts\":";
      w.Micros(t0) << ",\"dur\":";
      w.Micros(t1 - t0) << ",\"args\":{\"microbatch\":" << r.step.microbatch
                        << ",\"chunk\":" << r.step.chunk << ",\"stage\":" << r.stage->stage
                        << '}';
      events.End();
      for (const sim::Phase& ph : p.phases) {
        const graph::Op& op = r.stage->dag.ops[ph.op];
        const int64_t a = std::clamp(Ns(r.start + ph.start), t0, t1);
        const int64_t b = std::clamp(Ns(r.start + ph.end), a, t1);
        int64_t alloc = 0, freed = 0;
        for (int k = 0; k < graph::kNumCategories; ++k) {
          alloc += ph.alloc[k];
          freed += ph.free[k];
        }
        TextWriter& o = events.Begin();
        o << "\"name\":";
        o.Quoted(op.name) << ",\"cat\":\"" << graph::OpKindName(op.kind)
                          << "\",\"ph\":\"X\",";
        ids(o, pid, 0) << ",\"ts\":";
        o.Micros(a) << ",\"dur\":";
        o.Micros(b - a) << ",\"args\":{\"step\":";
        o.Quoted(step) << ",\"microbatch\":" << r.step.microbatch << ",\"layer\":" << op.layer
                       << ",\"allocated_bytes\":" << alloc << ",\"freed_bytes\":" << freed
                       << '}';
        events.End();
      }
    }
    // Memory counters, one per distinct time (the last state at that time).
    int64_t pending_ns = -1;
    sim::Bytes pending{};
    auto emit = [&] {
      if (pending_ns < 0) return;
      TextWriter& w = events.Begin();
      w << "\"name\":\"memory (GiB)\",\"ph\":\"C\",";
      ids(w, pid, 0) << ",\"ts\":";
      w.Micros(pending_ns) << ",\"args\":{";
      for (int k = 0; k < graph::kNumCategories; ++k) {
        w << (k ? ",\"" : "\"") << graph::CategoryName(static_cast<Category>(k)) << "\":";
        w.Fixed(Gib(pending[k]), 6);
      }
      w << '}';
      events.End();
    };
    pending_ns = 0;
    pending = run.ledger.initial();
    run.ledger.Replay([&](double time, const sim::Bytes& live) {
      const int64_t ns = Ns(time);
      if (ns != pending_ns) emit();
      pending_ns = ns;
      pending = live;
    });
    emit();
    // The peak.
    const RankReport& rr = report.ranks(static_cast<int>(run.rank));
    char gib[32];
    std::snprintf(gib, sizeof gib, "%.6f", Gib(rr.peak_bytes()));
    TextWriter& w = events.Begin();
    w << "\"name\":";
    w.Quoted("peak " + std::string(gib).substr(0, 6) + " GiB")
        << ",\"cat\":\"memory\",\"ph\":\"i\",\"s\":\"p\",";
    ids(w, pid, 0) << ",\"ts\":";
    w.Micros(Ns(run.memory.peak.time)) << ",\"args\":{";
    for (int k = 0; k < graph::kNumCategories; ++k) {
      w << (k ? ",\"" : "\"") << graph::CategoryName(static_cast<Category>(k)) << "_gib\":";
      w.Fixed(Gib(run.memory.peak.breakdown[k]), 6);
    }
    w << ",\"op\":";
    w.Quoted(rr.peak_op()) << '}';
    events.End();
  }

  // Transfers: a send slice, a receive slice, and a flow between them.
  for (size_t i = 0; i < s.transfers.size(); ++i) {
    const sim::Transfer& t = s.transfers[i];
    const int64_t a = Ns(t.start), b = std::max(Ns(t.end), a);
    const std::string what = std::string(t.gradient ? "gradient " : "activation ") +
                             std::to_string(t.microbatch);
    auto slice = [&](std::string_view verb, int64_t rank, int lane) {
      TextWriter& w = events.Begin();
      w << "\"name\":\"" << verb << what << "\",\"cat\":\"pipeline\",\"ph\":\"X\",";
      ids(w, rank, 1 + lane) << ",\"ts\":";
      w.Micros(a) << ",\"dur\":";
      w.Micros(b - a) << ",\"args\":{\"bytes\":" << t.bytes << ",\"from_stage\":"
                      << t.from_stage << ",\"to_stage\":" << t.to_stage << '}';
      events.End();
    };
    slice("send ", t.from_rank, send_lane[i]);
    slice("recv ", t.to_rank, recv_lane[i]);
    TextWriter& f = events.Begin();
    f << "\"name\":\"" << what << "\",\"cat\":\"pipeline\",\"ph\":\"s\",\"id\":"
      << static_cast<int64_t>(i) << ',';
    ids(f, t.from_rank, 1 + send_lane[i]) << ",\"ts\":";
    f.Micros(a);
    events.End();
    TextWriter& e = events.Begin();
    e << "\"name\":\"" << what << "\",\"cat\":\"pipeline\",\"ph\":\"f\",\"bp\":\"e\",\"id\":"
      << static_cast<int64_t>(i) << ',';
    ids(e, t.to_rank, 1 + recv_lane[i]) << ",\"ts\":";
    e.Micros(b);
    events.End();
  }
  events.Finish();
}

std::string ChromeTrace(const sim::SimResult& result, const RunReport& report) {
  std::ostringstream out;
  WriteChromeTrace(result, report, out);
  return out.str();
}

}  // namespace stepsim::traces
