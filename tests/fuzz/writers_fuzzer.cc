// libFuzzer target: the writers. A small scenario (fuzz_util.h format) is
// simulated in a child, which then writes everything a command can: the run
// summary and report JSON, the Chrome trace (which must pass the trace
// checker), the CSV timeline at two resolutions, the schedule file in both
// forms (which must read back), the params and activations tables and JSON.
#include <cstdint>
#include <sstream>
#include <string_view>

#include "graph/activations.h"
#include "graph/params_report.h"
#include "sim/engine.h"
#include "sim/schedule_file.h"
#include "tests/fuzz/fuzz_util.h"
#include "traces/activations_text.h"
#include "traces/chrome_trace.h"
#include "traces/json.h"
#include "traces/params_text.h"
#include "traces/run_report.h"
#include "traces/timeline_csv.h"
#include "traces/trace_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stepsim::fuzz::SetInput(data, size);
  namespace f = stepsim::fuzz;
  namespace sim = stepsim::sim;
  namespace traces = stepsim::traces;
  std::optional<stepsim::graph::Config> config =
      f::LoadScenario(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!config || !f::Small(*config)) return 0;
  stepsim::StatusOr<stepsim::ParamsReport> params = stepsim::graph::BuildParamsReport(*config);
  f::CheckNotFailed(params.status(), "BuildParamsReport");
  if (!params.ok()) return 0;
  (void)traces::FormatParams(*config, *params);
  (void)traces::ToJson(*params);
  stepsim::StatusOr<stepsim::ActivationsReport> activations =
      stepsim::graph::BuildActivationsReport(*config);
  f::CheckNotFailed(activations.status(), "BuildActivationsReport");
  if (!activations.ok()) return 0;
  (void)traces::FormatActivations(*activations);
  (void)traces::ToJson(*activations);
  f::InChild([&] {
    stepsim::StatusOr<sim::Schedule> schedule = sim::BuildSchedule(*config);
    f::CheckNotFailed(schedule.status(), "BuildSchedule");
    if (!schedule.ok()) return 0;
    for (bool proto : {false, true}) {
      const std::string written = sim::FormatScheduleFile(*schedule, proto);
      stepsim::StatusOr<sim::Schedule> back =
          sim::ParseScheduleFile(written, proto ? "w.textproto" : "w.schedule", *config);
      if (!back.ok() || back->ranks != schedule->ranks) {
        std::fprintf(stderr, "schedule does not read back: %s\n", back.status().message().c_str());
        std::abort();
      }
    }
    stepsim::StatusOr<sim::SimResult> result = sim::Simulate(*config, *schedule, sim::SimOptions{});
    f::CheckNotFailed(result.status(), "Simulate");
    if (!result.ok()) return 0;
    const stepsim::RunReport report = traces::BuildRunReport(*config, *result);
    (void)traces::FormatRunSummary(report);
    (void)traces::ToJson(report);
    std::ostringstream trace;
    traces::WriteChromeTrace(*result, report, trace);
    const traces::TraceCheck check = traces::CheckChromeTrace(trace.str());
    if (!check.problems.empty()) {
      std::fprintf(stderr, "the trace fails the checker: %s\n", check.problems.front().c_str());
      std::abort();
    }
    for (double resolution : {0.0, 1000.0}) {
      std::ostringstream csv;
      traces::WriteTimelineCsv(*result, resolution, csv);
    }
    return 0;
  });
  return 0;
}
