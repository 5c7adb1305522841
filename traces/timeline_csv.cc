#include "traces/timeline_csv.h"

#include <cmath>
#include <sstream>
#include <string_view>

#include "traces/memory_series.h"
#include "traces/text_writer.h"

namespace stepsim::traces {
namespace {

int64_t Ns(double seconds) { return std::llround(seconds * 1e9); }

// A text field, quoted (RFC 4180) when it holds a comma, a quote or a line
// break.
void Field(TextWriter& w, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    w << text;
    return;
  }
  w << '"';
  for (char c : text) {
    if (c == '"') w << '"';
    w << c;
  }
  w << '"';
}

// What a row names: the step and the op ("B" and "L3.moe.combine"), or a
// single buffer ("recv activation 3"). The views point into the stage DAGs
// and the ledger, which outlive the writing.
struct RowText {
  std::string step;
  std::string_view kind;
  std::string_view op;
};

RowText TextOf(const sim::Ledger::Change& c, int64_t chunks) {
  if (c.step == nullptr) return {"", "", c.delta->what};
  const graph::Op& op = c.step->stage->dag.ops[c.phase->op];
  return {sim::StepName(c.step->step, chunks), graph::OpKindName(op.kind), op.name};
}

class RankRows {
 public:
  RankRows(TextWriter& w, int64_t rank, const std::vector<MemorySeries>& series)
      : w_(w), rank_(rank), series_(series) {}

  void Write(int64_t ns, const sim::Bytes& live, int64_t reserved, const RowText& text) {
    w_ << rank_ << ',' << seq_++ << ',';
    w_.Micros(ns) << ',';
    Field(w_, text.step);
    w_ << ',';
    if (!text.kind.empty()) w_ << text.kind << ' ';
    Field(w_, text.op);
    const MemorySample sample{live, reserved};
    for (const MemorySeries& s : series_) w_ << ',' << s.Bytes(sample);
    w_ << '\n';
  }

 private:
  TextWriter& w_;
  int64_t rank_;
  const std::vector<MemorySeries>& series_;
  int64_t seq_ = 0;
};

}  // namespace

void WriteTimelineCsv(const sim::SimResult& result, double resolution_us, std::ostream& sink,
                      std::span<const sim::AllocatorRun> allocators) {
  TextWriter w(sink);
  const std::vector<MemorySeries> series = MemorySeriesFor(!allocators.empty());
  w << "rank,seq,time_us,step,op";
  for (const MemorySeries& s : series) w << ',' << s.name;
  w << '\n';
  const int64_t window_ns = resolution_us > 0 ? std::llround(resolution_us * 1e3) : 0;
  const int64_t end_ns = Ns(result.step_time);
  const int64_t chunks = result.schedule.chunks;
  static const std::vector<sim::ReservedPoint> kNoCurve;
  for (size_t i = 0; i < result.ranks.size(); ++i) {
    const sim::RankRun& run = result.ranks[i];
    RankRows rows(w, run.rank, series);
    ReservedCursor reserved(i < allocators.size() ? allocators[i].reserved : kNoCurve);
    rows.Write(0, run.ledger.initial(), reserved.Static(), {"", "", "static state"});
    sim::Bytes last = run.ledger.initial();
    int64_t last_reserved = reserved.Static();
    int64_t change = 0;
    if (window_ns <= 0) {
      run.ledger.ReplayChanges([&](const sim::Ledger::Change& c) {
        last_reserved = reserved.AfterChange(change++);
        rows.Write(Ns(c.time), *c.live, last_reserved, TextOf(c, chunks));
        last = *c.live;
      });
    } else {
      // Keep the highest row of each window.
      int64_t bucket = -1, best_total = -1, best_ns = 0, best_reserved = 0;
      sim::Bytes best{};
      RowText best_text;
      run.ledger.ReplayChanges([&](const sim::Ledger::Change& c) {
        const int64_t ns = Ns(c.time);
        if (ns / window_ns != bucket) {
          if (bucket >= 0) rows.Write(best_ns, best, best_reserved, best_text);
          bucket = ns / window_ns;
          best_total = -1;
        }
        last = *c.live;
        last_reserved = reserved.AfterChange(change++);
        const int64_t total = sim::Total(*c.live);
        if (total > best_total) {
          best_total = total;
          best_ns = ns;
          best = *c.live;
          best_reserved = last_reserved;
          best_text = TextOf(c, chunks);
        }
      });
      if (bucket >= 0) rows.Write(best_ns, best, best_reserved, best_text);
    }
    rows.Write(end_ns, last, last_reserved, {"", "", "end"});
  }
}

std::string TimelineCsv(const sim::SimResult& result, double resolution_us,
                        std::span<const sim::AllocatorRun> allocators) {
  std::ostringstream out;
  WriteTimelineCsv(result, resolution_us, out, allocators);
  return out.str();
}

}  // namespace stepsim::traces
