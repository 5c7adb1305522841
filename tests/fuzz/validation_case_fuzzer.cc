// libFuzzer target: validation cases (proto/validation.proto, `stepsim
// validate`), read as scenarios/validation/fuzz.textproto so that its
// scenario_file and model.hf_config find the repository's files. A case is
// refused with its place or accepted; every place the case keeps must point
// at its field in the text (an error there must name the line the field is
// on). Then its scenario is read and resolved as validate does, its ranks
// checked against the pipeline and, for small scenarios, a step simulated
// in a child, whose report must hold a rank for every pipeline stage and
// peaks no lower than the end state.
#include <cstdint>
#include <string>
#include <string_view>

#include "graph/validation_case.h"
#include "tests/fuzz/fuzz_util.h"
#include "traces/run_report.h"

namespace {

namespace f = stepsim::fuzz;
namespace graph = stepsim::graph;
using stepsim::Status;
using stepsim::StatusOr;

constexpr std::string_view kFile = "scenarios/validation/fuzz.textproto";

// `place` must be where the text has `field` (or, for a field that may be
// absent, the block's place `fallback`).
void CheckPlace(const graph::ParsedCase& c, const graph::TextPlace& place, std::string_view field,
                const graph::TextPlace* fallback) {
  if (fallback != nullptr && place.line == fallback->line && place.col == fallback->col) return;
  size_t start = 0;
  for (int line = 1; line < place.line && start != std::string::npos; ++line) {
    start = c.text.find('\n', start);
    if (start != std::string::npos) ++start;
  }
  const size_t at = start == std::string::npos ? std::string::npos : start + place.col - 1;
  if (place.line >= 1 && place.col >= 1 && at != std::string::npos &&
      c.text.compare(at, field.size(), field) == 0) {
    return;
  }
  std::fprintf(stderr, "the case keeps %.*s at %d:%d, where the text does not have it\n",
               static_cast<int>(field.size()), field.data(), place.line, place.col);
  std::abort();
}

// The case's scenario, as tools/validate.cc reads it: inline or
// scenario_file (relative to the case), the case's name as a default, the
// set overrides and model.hf_config.
StatusOr<graph::Config> CaseConfig(const graph::ParsedCase& c) {
  const stepsim::ValidationCase& v = c.value;
  std::string base = c.filename;
  stepsim::Scenario scenario;
  if (v.has_scenario()) {
    scenario = v.scenario();
  } else {
    base = stepsim::tools::RelativeToScenario(c.filename, v.scenario_file());
    StatusOr<std::string> text = f::ReadRepoFile(base);
    if (!text.ok()) return text.status();
    StatusOr<stepsim::Scenario> parsed = graph::ParseScenario(*text, base);
    if (!parsed.ok()) return parsed.status();
    scenario = std::move(*parsed);
  }
  if (scenario.name().empty()) scenario.set_name(v.name());
  const std::vector<std::string> sets(v.set().begin(), v.set().end());
  std::vector<std::string> notes;
  Status overridden = graph::ApplyOverrides(sets, &scenario, nullptr, &notes);
  if (!overridden.ok()) return overridden;
  Status merged = f::MergeHfConfig(base, &scenario);  // the hf_config inside the repository
  if (!merged.ok()) return merged;
  return stepsim::tools::ResolveScenarioAt(std::move(scenario), base, {});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stepsim::fuzz::SetInput(data, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  StatusOr<graph::ParsedCase> parsed = graph::ParseValidationCase(text, kFile);
  f::CheckNotFailed(parsed.status(), "ParseValidationCase");
  f::CheckLocated(parsed.status(), kFile, "ParseValidationCase", /*whole_file=*/true);
  if (!parsed.ok()) return 0;
  const graph::ParsedCase& c = *parsed;
  const stepsim::ValidationCase& v = c.value;
  const int n = v.measured_size();
  if (static_cast<int>(c.measured.size()) != n || static_cast<int>(c.pp_rank.size()) != n ||
      static_cast<int>(c.metric.size()) != n) {
    std::fprintf(stderr, "the case keeps places for some measurements only\n");
    std::abort();
  }
  CheckPlace(c, c.name, "name", nullptr);
  for (int i = 0; i < n; ++i) {
    CheckPlace(c, c.measured[i], "measured", nullptr);
    CheckPlace(c, c.pp_rank[i], "pp_rank", &c.measured[i]);
    CheckPlace(c, c.metric[i], "metric", &c.measured[i]);
    f::CheckLocated(c.ErrorAt(c.pp_rank[i], "a rank"), kFile, "ErrorAt");
  }

  StatusOr<graph::Config> config = CaseConfig(c);
  f::CheckNotFailed(config.status(), "CaseConfig");
  if (!config.ok()) return 0;
  for (const stepsim::Measurement& m : v.measured()) {
    if (m.pp_rank() >= config->parallel.pp) return 0;  // validate refuses it
  }
  if (!f::Exercise(*config)) return 0;
  f::SimulateInChild(*config, [&](const stepsim::sim::SimResult& result) {
    StatusOr<stepsim::RunReport> report = stepsim::traces::ReportRun(*config, result);
    f::CheckNotFailed(report.status(), "ReportRun");
    if (!report.ok()) return 0;
    if (report->ranks_size() != config->parallel.pp) {
      std::fprintf(stderr, "%d ranks reported for pp %lld\n", report->ranks_size(),
                   static_cast<long long>(config->parallel.pp));
      return 1;
    }
    for (const stepsim::RankReport& rank : report->ranks()) {
      if (rank.peak_bytes() < rank.end_bytes()) {
        std::fprintf(stderr, "rank %lld: peak %lld below its end state %lld\n",
                     static_cast<long long>(rank.pp_rank()),
                     static_cast<long long>(rank.peak_bytes()),
                     static_cast<long long>(rank.end_bytes()));
        return 1;
      }
    }
    return 0;
  });
  return 0;
}
