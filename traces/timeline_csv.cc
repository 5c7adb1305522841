#include "traces/timeline_csv.h"

#include <cmath>
#include <sstream>

#include "traces/text_writer.h"

namespace stepsim::traces {
namespace {

void AppendRow(TextWriter& w, double time, int64_t rank, const sim::Bytes& live) {
  w.Fixed(time * 1e6, 3) << ',' << rank;
  int64_t total = 0;
  for (int64_t b : live) {
    w << ',' << b;
    total += b;
  }
  w << ',' << total << '\n';
}

}  // namespace

void WriteTimelineCsv(const sim::SimResult& result, double resolution_us, std::ostream& sink) {
  TextWriter w(sink);
  w << "time_us,rank,weights,gradients,optimizer,activations,recompute,comm,workspace,total\n";
  const double window = resolution_us > 0 ? resolution_us * 1e-6 : 0;
  for (const sim::RankRun& run : result.ranks) {
    AppendRow(w, 0, run.rank, run.ledger.initial());
    if (window <= 0) {
      run.ledger.Replay([&](double time, const sim::Bytes& live) {
        AppendRow(w, time, run.rank, live);
      });
      continue;
    }
    // Keep the highest row of each window.
    int64_t bucket = -1, best_total = -1;
    double best_time = 0;
    sim::Bytes best{};
    auto flush = [&] {
      if (bucket >= 0) AppendRow(w, best_time, run.rank, best);
    };
    run.ledger.Replay([&](double time, const sim::Bytes& live) {
      const auto b = static_cast<int64_t>(std::floor(time / window));
      if (b != bucket) {
        flush();
        bucket = b;
        best_total = -1;
      }
      const int64_t total = sim::Total(live);
      if (total > best_total) {
        best_total = total;
        best_time = time;
        best = live;
      }
    });
    flush();
  }
}

std::string TimelineCsv(const sim::SimResult& result, double resolution_us) {
  std::ostringstream out;
  WriteTimelineCsv(result, resolution_us, out);
  return out.str();
}

}  // namespace stepsim::traces
