#include "tools/commands.h"

#include <filesystem>
#include <fstream>
#include <iostream>

#include "graph/activations.h"
#include "graph/params_report.h"
#include "graph/stage_dag.h"
#include "sim/engine.h"
#include "sim/schedule.h"
#include "sim/schedule_file.h"
#include "traces/activations_text.h"
#include "traces/chrome_trace.h"
#include "traces/json.h"
#include "traces/params_text.h"
#include "traces/run_report.h"
#include "traces/timeline_csv.h"
#include "traces/trace_check.h"

namespace stepsim::tools {

StatusOr<sim::Schedule> ResolveSchedule(const graph::Config& config, const ScenarioArgs& args,
                                        const std::string& override_file, bool* from_file) {
  std::string path = override_file;
  if (path.empty() && !config.schedule_file.empty()) {
    const std::filesystem::path file(config.schedule_file);
    path = file.is_absolute()
               ? file.string()
               : (std::filesystem::path(args.path).parent_path() / file).string();
  }
  *from_file = !path.empty();
  if (path.empty()) return sim::BuildSchedule(config);
  StatusOr<std::string> text = ReadFile(path, std::uintmax_t{256} << 20);
  if (!text.ok()) return text.status();
  return sim::ParseScheduleFile(*text, path, config);
}

namespace {

bool AnyToStdout(const RunOutputs& o) {
  return o.report == "-" || o.chrome_trace == "-" || o.timeline == "-";
}

}  // namespace

int RunParams(const ScenarioArgs& args, const std::string& json) {
  StatusOr<graph::Config> config = LoadConfig(args);
  if (!config.ok()) return Report(config.status());
  StatusOr<ParamsReport> report = graph::BuildParamsReport(*config);
  if (!report.ok()) return Report(report.status());
  if (json != "-") std::cout << traces::FormatParams(*config, *report);
  if (!json.empty()) return Report(WriteOutput(json, traces::ToJson(*report)));
  return kExitOk;
}

int RunActivations(const ScenarioArgs& args, const std::string& json) {
  StatusOr<graph::Config> config = LoadConfig(args);
  if (!config.ok()) return Report(config.status());
  StatusOr<ActivationsReport> report =
      graph::BuildActivationsReport(*config);
  if (!report.ok()) return Report(report.status());
  if (json != "-") std::cout << traces::FormatActivations(*report);
  if (!json.empty()) return Report(WriteOutput(json, traces::ToJson(*report)));
  return kExitOk;
}

int RunDag(const ScenarioArgs& args, int64_t stage, const std::string& dot) {
  StatusOr<graph::Config> config = LoadConfig(args);
  if (!config.ok()) return Report(config.status());
  const auto& stages = config->layout.stages;
  if (stage < 0 || stage >= static_cast<int64_t>(stages.size())) {
    return Report(Status::Invalid("--stage: " + std::to_string(stage) +
                                  " is not a stage of this layout (0.." +
                                  std::to_string(stages.size() - 1) + ")"));
  }
  StatusOr<graph::StageDag> dag = graph::BuildStageDag(*config, stages[stage]);
  if (!dag.ok()) return Report(dag.status());
  Status written = WriteOutput(dot, graph::DagToDot(*dag));
  if (written.ok() && dot != "-") {
    std::cout << "stage " << stage << " (" << stages[stage].Describe() << "): "
              << dag->ops.size() << " ops, " << dag->tensors.size() << " tensors, "
              << boost::num_edges(dag->graph) << " edges -> " << dot << "\n";
  }
  return Report(written);
}

int RunSimulation(const ScenarioArgs& args, const RunOutputs& outputs, bool verbose) {
  StatusOr<graph::Config> config = LoadConfig(args);
  if (!config.ok()) return Report(config.status());
  bool from_file = false;
  StatusOr<sim::Schedule> schedule = ResolveSchedule(*config, args, outputs.schedule, &from_file);
  if (!schedule.ok()) return Report(schedule.status());
  sim::SimOptions options;
  options.verbose = verbose;
  options.schedule_from_file = from_file;
  StatusOr<sim::SimResult> result = sim::Simulate(*config, *schedule, options);
  if (!result.ok()) return Report(result.status());
  const RunReport report = traces::BuildRunReport(*config, *result);
  const bool to_stdout = AnyToStdout(outputs);
  if (!to_stdout) std::cout << traces::FormatRunSummary(report);
  Status status;
  if (!outputs.report.empty()) status = WriteOutput(outputs.report, traces::ToJson(report));
  if (status.ok() && !outputs.chrome_trace.empty()) {
    status = WriteStream(outputs.chrome_trace, [&](std::ostream& out) {
      traces::WriteChromeTrace(*result, report, out);
    });
    if (status.ok() && !to_stdout) {
      std::cout << "Chrome trace: " << outputs.chrome_trace
                << " (open it in https://ui.perfetto.dev, or load it in Chrome DevTools' "
                   "Performance panel)\n";
    }
  }
  if (status.ok() && !outputs.timeline.empty()) {
    status = WriteStream(outputs.timeline, [&](std::ostream& out) {
      traces::WriteTimelineCsv(*result, outputs.resolution_us, out);
    });
  }
  return Report(status);
}

int RunSchedule(const ScenarioArgs& args, const std::string& out) {
  StatusOr<graph::Config> config = LoadConfig(args);
  if (!config.ok()) return Report(config.status());
  bool from_file = false;
  StatusOr<sim::Schedule> schedule = ResolveSchedule(*config, args, "", &from_file);
  if (!schedule.ok()) return Report(schedule.status());
  const bool proto = out.ends_with(".textproto") || out.ends_with(".pbtxt");
  return Report(WriteOutput(out, sim::FormatScheduleFile(*schedule, proto)));
}

int RunCheckTrace(const std::string& path) {
  // Streamed: a trace may be far larger than memory should hold.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Report(Status::Invalid(path + (std::filesystem::exists(path, ec)
                                              ? ": is not a regular file"
                                              : ": no such file")));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Report(Status::Invalid(path + ": cannot be opened"));
  const traces::TraceCheck check = traces::CheckChromeTrace(in);
  if (in.bad()) return Report(Status::Failed(path + ": read failed"));
  for (const std::string& p : check.problems) std::cerr << path << ":" << p << "\n";
  if (check.problem_count > static_cast<int64_t>(check.problems.size())) {
    std::cerr << path << ": ... and " << check.problem_count - check.problems.size()
              << " more problems\n";
  }
  for (const auto& [rule, count] : check.by_rule) {
    std::cerr << path << ": " << count << " problems of " << rule << "\n";
  }
  std::cout << path << ": " << check.events << " events, " << check.slices << " slices, "
            << check.counters << " counter events, " << check.instants << " instants, "
            << check.flows << " flows: " << (check.problem_count == 0 ? "ok" : "INVALID") << "\n";
  return check.problem_count == 0 ? kExitOk : kExitFailed;
}

}  // namespace stepsim::tools
