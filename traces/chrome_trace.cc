#include "traces/chrome_trace.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace stepsim::traces {
namespace {

using graph::Category;

// Times are rounded to whole nanoseconds once, so nested slices stay nested
// when printed.
int64_t Ns(double seconds) { return std::llround(seconds * 1e9); }

std::string Us(int64_t ns) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%lld.%03lld", static_cast<long long>(ns / 1000),
                static_cast<long long>(ns % 1000));
  return buffer;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string Gib(int64_t bytes) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6f", static_cast<double>(bytes) / (1 << 30));
  return buffer;
}

// Streams events to an ostream through a buffer of about 1 MiB.
class Writer {
 public:
  explicit Writer(std::ostream& out) : out_(out) {
    buffer_ = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
  }
  void Event(const std::string& body) {
    buffer_ += first_ ? "\n{" : ",\n{";
    first_ = false;
    buffer_ += body;
    buffer_ += '}';
    if (buffer_.size() > (1 << 20)) Flush();
  }
  void Finish() {
    buffer_ += "\n]}\n";
    Flush();
  }

 private:
  void Flush() {
    out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    buffer_.clear();
  }

  std::ostream& out_;
  std::string buffer_;
  bool first_ = true;
};

std::string Ids(int64_t pid, int64_t tid) {
  return "\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid);
}

}  // namespace

void WriteChromeTrace(const sim::SimResult& s, const RunReport& report, std::ostream& out) {
  Writer w(out);
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

  for (const sim::RankRun& run : s.ranks) {
    const int64_t pid = run.rank;
    w.Event("\"name\":\"process_name\",\"ph\":\"M\"," + Ids(pid, 0) +
            ",\"args\":{\"name\":\"rank " + std::to_string(pid) + "\"}");
    w.Event("\"name\":\"process_sort_index\",\"ph\":\"M\"," + Ids(pid, 0) +
            ",\"args\":{\"sort_index\":" + std::to_string(pid) + "}");
    w.Event("\"name\":\"thread_name\",\"ph\":\"M\"," + Ids(pid, 0) +
            ",\"args\":{\"name\":\"compute\"}");
    for (size_t l = 0; l < lanes[run.rank].size(); ++l) {
      w.Event("\"name\":\"thread_name\",\"ph\":\"M\"," + Ids(pid, 1 + static_cast<int64_t>(l)) +
              ",\"args\":{\"name\":\"pipeline comm " + std::to_string(l) + "\"}");
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
      w.Event("\"name\":" + Quote(step) + ",\"cat\":\"step\",\"ph\":\"X\"," + Ids(pid, 0) +
              ",\"ts\":" + Us(t0) + ",\"dur\":" + Us(t1 - t0) +
              ",\"args\":{\"microbatch\":" + std::to_string(r.step.microbatch) +
              ",\"chunk\":" + std::to_string(r.step.chunk) +
              ",\"stage\":" + std::to_string(r.stage->stage) + "}");
      for (const sim::Phase& ph : p.phases) {
        const graph::Op& op = r.stage->dag.ops[ph.op];
        const int64_t a = std::clamp(Ns(r.start + ph.start), t0, t1);
        const int64_t b = std::clamp(Ns(r.start + ph.end), a, t1);
        int64_t alloc = 0, freed = 0;
        for (int k = 0; k < graph::kNumCategories; ++k) {
          alloc += ph.alloc[k];
          freed += ph.free[k];
        }
        w.Event("\"name\":" + Quote(op.name) + ",\"cat\":\"" + graph::OpKindName(op.kind) +
                "\",\"ph\":\"X\"," + Ids(pid, 0) + ",\"ts\":" + Us(a) + ",\"dur\":" + Us(b - a) +
                ",\"args\":{\"step\":" + Quote(step) +
                ",\"microbatch\":" + std::to_string(r.step.microbatch) +
                ",\"layer\":" + std::to_string(op.layer) +
                ",\"allocated_bytes\":" + std::to_string(alloc) +
                ",\"freed_bytes\":" + std::to_string(freed) + "}");
      }
    }
    // Memory counters, one per distinct time (the last state at that time).
    int64_t pending_ns = -1;
    sim::Bytes pending{};
    auto emit = [&] {
      if (pending_ns < 0) return;
      std::string args;
      for (int k = 0; k < graph::kNumCategories; ++k) {
        args += std::string(k ? "," : "") + "\"" + graph::CategoryName(static_cast<Category>(k)) +
                "\":" + Gib(pending[k]);
      }
      w.Event("\"name\":\"memory (GiB)\",\"ph\":\"C\"," + Ids(pid, 0) + ",\"ts\":" +
              Us(pending_ns) + ",\"args\":{" + args + "}");
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
    std::string args;
    for (int k = 0; k < graph::kNumCategories; ++k) {
      args += std::string(k ? "," : "") + "\"" + graph::CategoryName(static_cast<Category>(k)) +
              "_gib\":" + Gib(run.memory.peak.breakdown[k]);
    }
    w.Event("\"name\":" + Quote("peak " + Gib(rr.peak_bytes()).substr(0, 6) + " GiB") +
            ",\"cat\":\"memory\",\"ph\":\"i\",\"s\":\"p\"," + Ids(pid, 0) + ",\"ts\":" +
            Us(Ns(run.memory.peak.time)) + ",\"args\":{" + args + ",\"op\":" +
            Quote(rr.peak_op()) + "}");
  }

  // Transfers: a send slice, a receive slice, and a flow between them.
  for (size_t i = 0; i < s.transfers.size(); ++i) {
    const sim::Transfer& t = s.transfers[i];
    const int64_t a = Ns(t.start), b = std::max(Ns(t.end), a);
    const std::string what = std::string(t.gradient ? "gradient " : "activation ") +
                             std::to_string(t.microbatch);
    const std::string args = ",\"args\":{\"bytes\":" + std::to_string(t.bytes) +
                             ",\"from_stage\":" + std::to_string(t.from_stage) +
                             ",\"to_stage\":" + std::to_string(t.to_stage) + "}";
    const std::string send_ids = Ids(t.from_rank, 1 + send_lane[i]);
    const std::string recv_ids = Ids(t.to_rank, 1 + recv_lane[i]);
    w.Event("\"name\":" + Quote("send " + what) + ",\"cat\":\"pipeline\",\"ph\":\"X\"," +
            send_ids + ",\"ts\":" + Us(a) + ",\"dur\":" + Us(b - a) + args);
    w.Event("\"name\":" + Quote("recv " + what) + ",\"cat\":\"pipeline\",\"ph\":\"X\"," +
            recv_ids + ",\"ts\":" + Us(a) + ",\"dur\":" + Us(b - a) + args);
    const std::string id = std::to_string(i);
    w.Event("\"name\":" + Quote(what) + ",\"cat\":\"pipeline\",\"ph\":\"s\",\"id\":" + id + "," +
            send_ids + ",\"ts\":" + Us(a));
    w.Event("\"name\":" + Quote(what) + ",\"cat\":\"pipeline\",\"ph\":\"f\",\"bp\":\"e\",\"id\":" +
            id + "," + recv_ids + ",\"ts\":" + Us(b));
  }
  w.Finish();
}

std::string ChromeTrace(const sim::SimResult& result, const RunReport& report) {
  std::ostringstream out;
  WriteChromeTrace(result, report, out);
  return out.str();
}

}  // namespace stepsim::traces
