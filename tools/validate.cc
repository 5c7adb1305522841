// stepsim validate: each case's scenario simulated (in a child process) and
// its prediction held against what was measured on real GPUs.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "graph/scenario_text.h"
#include "graph/validation_case.h"
#include "tools/output_plan.h"
#include "tools/child_simulation.h"
#include "tools/commands.h"
#include "traces/format.h"
#include "traces/table.h"

namespace stepsim::tools {
namespace {

using Json = nlohmann::ordered_json;

struct Row {
  Measurement measured;
  int64_t predicted = 0;
  double error = 0;
  bool within = false;
  std::string during;                            // the peak's op, for peak metrics
  std::vector<std::pair<std::string, int64_t>> breakdown;  // what the prediction holds
};

struct CaseResult {
  ValidationCase value;
  std::vector<Row> rows;
};

// The scenario a case describes, resolved, with paths relative to the case.
StatusOr<graph::Config> CaseConfig(const graph::ParsedCase& c) {
  const ValidationCase& v = c.value;
  const std::filesystem::path dir = std::filesystem::path(c.filename).parent_path();
  std::vector<std::string> sets(v.set().begin(), v.set().end());
  Scenario scenario;
  std::string base = c.filename;
  if (v.has_scenario()) {
    scenario = v.scenario();
  } else {
    const std::filesystem::path file(v.scenario_file());
    base = file.is_absolute() ? file.string() : (dir / file).string();
    StatusOr<std::string> text = ReadFile(base);
    if (!text.ok()) return Status::Invalid(c.filename + ": scenario_file: " + text.status().message());
    StatusOr<Scenario> parsed = graph::ParseScenario(*text, base);
    if (!parsed.ok()) return parsed.status();
    scenario = std::move(*parsed);
  }
  if (scenario.name().empty()) scenario.set_name(v.name());
  StatusOr<graph::Config> config = ResolveScenarioAt(std::move(scenario), base, sets);
  if (!config.ok()) {
    return Status::Invalid(c.filename + ": the case's scenario is invalid:\n" +
                           config.status().message());
  }
  return config;
}

std::vector<std::pair<std::string, int64_t>> Sorted(
    const google::protobuf::Map<std::string, int64_t>& map) {
  std::vector<std::pair<std::string, int64_t>> out(map.begin(), map.end());
  std::sort(out.begin(), out.end());
  return out;
}

// One case: parse, check, simulate, compare. Bad input is an error status.
StatusOr<CaseResult> RunCase(const std::string& path) {
  StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  StatusOr<graph::ParsedCase> parsed = graph::ParseValidationCase(*text, path);
  if (!parsed.ok()) return parsed.status();
  StatusOr<graph::Config> config = CaseConfig(*parsed);
  if (!config.ok()) return config.status();
  const ValidationCase& v = parsed->value;
  for (int i = 0; i < v.measured_size(); ++i) {
    const Measurement& m = v.measured(i);
    if (m.pp_rank() >= config->parallel.pp) {
      return parsed->ErrorAt(parsed->pp_rank[i],
                             "measured: pp_rank " + std::to_string(m.pp_rank()) +
                                 " is outside the pipeline (parallel.pp = " +
                                 std::to_string(config->parallel.pp) + ")");
    }
    if ((m.metric() == PEAK_RESERVED || m.metric() == DEVICE_USED) &&
        config->allocator.kind == Allocator::NONE) {
      return parsed->ErrorAt(parsed->metric[i],
                             "measured: " + Metric_Name(m.metric()) +
                                 " needs reserved memory, which this scenario cannot produce "
                                 "(allocator.kind NONE)");
    }
  }
  StatusOr<RunReport> report = SimulateInChild(*config);
  if (!report.ok()) {
    return Status(report.status().code() == StatusCode::kInvalidInput
                      ? Status::Invalid(path + ": " + report.status().message())
                      : Status::Failed(path + ": " + report.status().message()));
  }
  CaseResult result;
  result.value = v;
  for (const Measurement& m : v.measured()) {
    const RankReport& rank = report->ranks(static_cast<int>(m.pp_rank()));
    Row row;
    row.measured = m;
    switch (m.metric()) {
      case PEAK_ALLOCATED:
        row.predicted = rank.peak_bytes();
        row.breakdown = Sorted(rank.peak_breakdown());
        row.during = rank.peak_step().empty() ? rank.peak_op()
                                              : rank.peak_step() + " " + rank.peak_op();
        break;
      case STATIC_ALLOCATED:
        row.predicted = rank.end_bytes();
        row.breakdown = Sorted(rank.static_breakdown());
        break;
      case PEAK_RESERVED:
      case DEVICE_USED:
        row.predicted = rank.reserved_peak_bytes() +
                        (m.metric() == DEVICE_USED ? rank.runtime_overhead_bytes() : 0);
        row.breakdown = {{"reserved", rank.reserved_peak_bytes()},
                         {"fragmentation", rank.fragmentation_bytes()}};
        if (m.metric() == DEVICE_USED) {
          row.breakdown.emplace_back("runtime_overhead", rank.runtime_overhead_bytes());
        }
        break;
      default:  // DYNAMIC_ALLOCATED
        row.predicted = rank.peak_bytes() - rank.end_bytes();
        row.breakdown = Sorted(rank.peak_breakdown());
        row.during = rank.peak_step().empty() ? rank.peak_op()
                                              : rank.peak_step() + " " + rank.peak_op();
        break;
    }
    row.error = static_cast<double>(row.predicted - m.bytes()) / static_cast<double>(m.bytes());
    row.within = std::fabs(row.error) <= v.tolerance();
    result.rows.push_back(std::move(row));
  }
  return result;
}

std::string Describe(const std::vector<std::pair<std::string, int64_t>>& parts) {
  std::string out;
  for (const auto& [name, bytes] : parts) {
    if (bytes == 0) continue;
    out += (out.empty() ? "" : ", ") + name + " " + traces::Gib(bytes);
  }
  return out;
}

Json ToJson(const std::vector<CaseResult>& cases) {
  Json out = {{"cases", Json::array()}};
  for (const CaseResult& c : cases) {
    Json jc = {{"name", c.value.name()},
               {"source", c.value.source()},
               {"tolerance", c.value.tolerance()},
               {"measurements", Json::array()}};
    for (const Row& r : c.rows) {
      Json breakdown = Json::object();
      for (const auto& [name, bytes] : r.breakdown) breakdown[name] = bytes;
      jc["measurements"].push_back({{"metric", Metric_Name(r.measured.metric())},
                                    {"pp_rank", r.measured.pp_rank()},
                                    {"measured_bytes", r.measured.bytes()},
                                    {"predicted_bytes", r.predicted},
                                    {"error", r.error},
                                    {"within_tolerance", r.within},
                                    {"during", r.during},
                                    {"breakdown", breakdown}});
    }
    out["cases"].push_back(std::move(jc));
  }
  return out;
}

}  // namespace

int RunValidate(const std::vector<std::string>& files, const std::string& json) {
  std::vector<CaseResult> cases;
  int code = kExitOk;
  for (const std::string& file : files) {
    StatusOr<CaseResult> result = RunCase(file);
    if (!result.ok()) {
      code = std::max(code, Report(result.status()));
      continue;
    }
    cases.push_back(std::move(*result));
  }
  int total = 0, within = 0;
  for (const CaseResult& c : cases) {
    for (const Row& r : c.rows) {
      ++total;
      within += r.within ? 1 : 0;
    }
  }
  if (json != "-") {
    for (const CaseResult& c : cases) {
      std::cout << c.value.name() << "  (tolerance " << traces::Fixed(100 * c.value.tolerance(), 1)
                << "%)\n  source: " << c.value.source() << "\n";
      traces::Table table({"<metric", "rank", "measured B", "predicted B", "measured GiB",
                           "predicted GiB", "error", "<", "<prediction holds (GiB)"});
      for (const Row& r : c.rows) {
        table.AddRow({Metric_Name(r.measured.metric()), std::to_string(r.measured.pp_rank()),
                      std::to_string(r.measured.bytes()), std::to_string(r.predicted),
                      traces::Gib(r.measured.bytes()), traces::Gib(r.predicted),
                      (r.error >= 0 ? "+" : "") + traces::Fixed(100 * r.error, 2) + "%",
                      r.within ? "ok" : "MISS",
                      (r.during.empty() ? "" : "at " + r.during + ": ") + Describe(r.breakdown)});
      }
      std::cout << table.Render() << "\n";
    }
    std::cout << "validation: " << within << " of " << total
              << " measurements within their case's tolerance (GiB = 2^30 bytes)\n";
  }
  if (!json.empty()) {
    Status written = WriteOutput(json, ToJson(cases).dump(2) + "\n");
    if (!written.ok()) return Report(written);
  }
  if (code != kExitOk) return code;
  return within == total ? kExitOk : kExitFailed;
}

}  // namespace stepsim::tools
