#include "traces/timeline_csv.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace stepsim::traces {
namespace {

void AppendRow(std::string& out, double time, int64_t rank, const sim::Bytes& live) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3f,%lld", time * 1e6, static_cast<long long>(rank));
  out += buffer;
  int64_t total = 0;
  for (int64_t b : live) {
    out += ',';
    out += std::to_string(b);
    total += b;
  }
  out += ',';
  out += std::to_string(total);
  out += '\n';
}

}  // namespace

void WriteTimelineCsv(const sim::SimResult& result, double resolution_us, std::ostream& sink) {
  std::string out =
      "time_us,rank,weights,gradients,optimizer,activations,recompute,comm,workspace,framework,total\n";
  auto flush_if_big = [&] {
    if (out.size() > (1 << 20)) {
      sink.write(out.data(), static_cast<std::streamsize>(out.size()));
      out.clear();
    }
  };
  const double window = resolution_us > 0 ? resolution_us * 1e-6 : 0;
  for (const sim::RankRun& run : result.ranks) {
    AppendRow(out, 0, run.rank, run.ledger.initial());
    if (window <= 0) {
      run.ledger.Replay([&](double time, const sim::Bytes& live) {
        AppendRow(out, time, run.rank, live);
        flush_if_big();
      });
      continue;
    }
    // Keep the highest row of each window.
    int64_t bucket = -1, best_total = -1;
    double best_time = 0;
    sim::Bytes best{};
    auto flush = [&] {
      if (bucket >= 0) AppendRow(out, best_time, run.rank, best);
      flush_if_big();
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
  sink.write(out.data(), static_cast<std::streamsize>(out.size()));
}

std::string TimelineCsv(const sim::SimResult& result, double resolution_us) {
  std::ostringstream out;
  WriteTimelineCsv(result, resolution_us, out);
  return out.str();
}

}  // namespace stepsim::traces
