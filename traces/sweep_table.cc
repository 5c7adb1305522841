#include "traces/sweep_table.h"

#include <algorithm>
#include <map>
#include <set>

#include "traces/format.h"
#include "traces/table.h"

namespace stepsim::traces {
namespace {

std::string LastComponent(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

// Short headers: a few well-known paths by their usual name, others by
// their field name unless two share one.
std::vector<std::string> Headers(const std::vector<std::string>& paths) {
  static const std::map<std::string, std::string> known = {
      {"zero.stage", "zero"},          {"batch.micro_batch_size", "mbs"},
      {"batch.num_microbatches", "m"}, {"schedule.kind", "schedule"},
      {"recompute.policy", "recompute"}};
  auto name = [&](const std::string& p) {
    const auto it = known.find(p);
    return it != known.end() ? it->second : LastComponent(p);
  };
  std::set<std::string> seen, clash;
  for (const std::string& p : paths) {
    if (!seen.insert(name(p)).second) clash.insert(name(p));
  }
  std::vector<std::string> out;
  for (const std::string& p : paths) out.push_back(clash.count(name(p)) ? p : name(p));
  return out;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string Value(const SweepConfig& c, const std::string& path) {
  const auto it = c.overrides().find(path);
  return it == c.overrides().end() ? "-" : it->second;
}

std::string Quote(const std::string& field) {
  if (field.find_first_of(",\"\n\r") == std::string::npos) return field;
  std::string out = "\"";
  for (char ch : field) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

}  // namespace

std::vector<std::string> VariedPaths(const SweepReport& report) {
  // The space's paths, in order, and whether some configuration overrides
  // each: most configurations override them all, so the scan looks only
  // for those not seen yet.
  std::vector<std::string> candidates;
  for (const std::string& line : report.space()) {
    const std::string path = line.substr(0, line.find('='));
    if (std::find(candidates.begin(), candidates.end(), path) == candidates.end()) {
      candidates.push_back(path);
    }
  }
  std::vector<bool> seen(candidates.size(), false);
  size_t unseen = candidates.size();
  for (const SweepConfig& c : report.configs()) {
    if (unseen == 0) break;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (!seen[i] && c.overrides().contains(candidates[i])) seen[i] = true, --unseen;
    }
  }
  std::vector<std::string> paths;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (seen[i]) paths.push_back(candidates[i]);
  }
  return paths;
}

namespace {

std::vector<std::string> ValueCells(const SweepConfig& c, const std::vector<std::string>& paths) {
  std::vector<std::string> cells;
  for (const std::string& p : paths) cells.push_back(Value(c, p));
  return cells;
}

std::vector<std::string> HeaderCells(const std::vector<std::string>& paths) {
  std::vector<std::string> headers;
  for (const std::string& h : Headers(paths)) headers.push_back("<" + h);
  return headers;
}

}  // namespace

std::string SimulatedTable(const SweepReport& report, int64_t top) {
  const std::vector<std::string> paths = VariedPaths(report);
  std::vector<std::string> headers = HeaderCells(paths);
  for (const char* h : {"fits", "headroom GiB", "max peak GiB", "reserved", "peak rank",
                        "step ms", "tokens/s/GPU", "bubble"}) {
    headers.push_back(h);
  }
  Table table(headers);
  int64_t shown = 0, hidden = 0;
  for (const SweepConfig& c : report.configs()) {
    if (!c.simulated()) continue;
    if (top >= 0 && shown >= top) {
      ++hidden;
      continue;
    }
    ++shown;
    std::vector<std::string> cells = ValueCells(c, paths);
    for (std::string cell :
         {std::string(c.fits() ? "yes" : "NO"), Gib(c.min_headroom_bytes()),
          Gib(c.max_peak_bytes()), Gib(c.max_reserved_bytes()), std::to_string(c.peak_rank()), Fixed(c.step_time_us() / 1000, 3),
          Fixed(c.tokens_per_s_per_gpu(), 1), Fixed(100 * c.bubble_fraction(), 1) + "%"}) {
      cells.push_back(cell);
    }
    table.AddRow(cells);
  }
  if (shown == 0) return "";
  std::string out = table.Render();
  if (hidden > 0) out += "... and " + std::to_string(hidden) + " more simulated\n";
  return out;
}

std::string FormatSweepTable(const SweepReport& report, int64_t top) {
  const std::vector<std::string> paths = VariedPaths(report);
  std::vector<std::string> headers = HeaderCells(paths);
  headers.push_back("<not simulated");
  Table others(headers);
  int64_t simulated = 0, fitting = 0, listed = 0, unlisted = 0;
  for (const SweepConfig& c : report.configs()) {
    if (c.simulated()) {
      ++simulated;
      fitting += c.fits() ? 1 : 0;
      continue;
    }
    if (top >= 0 && listed >= top) {
      ++unlisted;
      continue;
    }
    ++listed;
    std::vector<std::string> cells = ValueCells(c, paths);
    cells.push_back(!c.skipped().empty() ? "skipped: " + c.skipped()
                    : c.valid()          ? "failed: " + FirstLine(c.error())
                                         : "invalid: " + FirstLine(c.error()));
    others.AddRow(cells);
  }
  std::string out = SimulatedTable(report, top);
  out += std::to_string(simulated) + " of " + std::to_string(report.configs_size()) +
         " configurations simulated, " + std::to_string(fitting) +
         " fit (sorted by step time among those that fit; GiB = 2^30 bytes)\n";
  if (listed > 0) {
    out += "\n" + others.Render();
    if (unlisted > 0) out += "... and " + std::to_string(unlisted) + " more not simulated\n";
  }
  return out;
}

std::string FormatFitTable(const SweepReport& report, int64_t top) {
  int64_t fitting = 0;
  for (const SweepConfig& c : report.configs()) fitting += c.simulated() && c.fits() ? 1 : 0;
  std::string out = SimulatedTable(report, std::min<int64_t>(top, fitting > 0 ? fitting : top));
  out += std::to_string(fitting) + " of " + std::to_string(report.configs_size()) +
         " candidates fit" + (fitting > 0 ? ", the fastest first" : "") +
         " (GiB = 2^30 bytes)\n\ncandidates by outcome:\n";
  std::vector<std::pair<int64_t, std::string>> reasons;
  for (const auto& [reason, count] : report.reasons()) reasons.push_back({-count, reason});
  std::sort(reasons.begin(), reasons.end());
  Table table({"count", "<outcome"});
  for (const auto& [count, reason] : reasons) table.AddRow({Thousands(-count), reason});
  out += table.Render();
  for (const SweepConfig& c : report.configs()) {
    if (!c.simulated() || !c.fits()) break;
    out += "\nthe fastest: stepsim run SCENARIO";
    const std::map<std::string, std::string> sorted(c.overrides().begin(), c.overrides().end());
    for (const auto& [path, value] : sorted) out += " --set " + path + "=" + value;
    out += "\n";
    break;
  }
  return out;
}

std::string SweepCsv(const SweepReport& report) {
  const std::vector<std::string> paths = VariedPaths(report);
  std::string out = "index";
  for (const std::string& p : paths) out += "," + Quote(p);
  out += ",valid,simulated,fits,max_peak_bytes,peak_rank,step_time_us,tokens_per_s_per_gpu,"
         "bubble_fraction,capacity_bytes,gpus,schedule,microbatches,skipped,error\n";
  for (const SweepConfig& c : report.configs()) {
    out += std::to_string(c.index());
    for (const std::string& p : paths) out += "," + Quote(Value(c, p));
    auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
    out += "," + flag(c.valid()) + "," + flag(c.simulated()) + "," + flag(c.fits()) + "," +
           std::to_string(c.max_peak_bytes()) + "," + std::to_string(c.peak_rank()) + "," +
           Fixed(c.step_time_us(), 3) + "," + Fixed(c.tokens_per_s_per_gpu(), 3) + "," +
           Fixed(c.bubble_fraction(), 6) + "," + std::to_string(c.capacity_bytes()) + "," +
           std::to_string(c.gpus()) + "," + Quote(c.schedule()) + "," +
           std::to_string(c.microbatches()) + "," + Quote(c.skipped()) + "," +
           Quote(c.error()) + "\n";
  }
  return out;
}

}  // namespace stepsim::traces
