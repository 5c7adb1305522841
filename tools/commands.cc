#include "tools/commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iostream>

#include "graph/activations.h"
#include "graph/params_report.h"
#include "graph/stage_dag.h"
#include "sim/budget.h"
#include "sim/engine.h"
#include "sim/memory_stream.h"
#include "sim/schedule.h"
#include "sim/schedule_file.h"
#include "traces/activations_text.h"
#include "traces/chrome_trace.h"
#include "traces/json.h"
#include "traces/memory_snapshot.h"
#include "traces/params_text.h"
#include "traces/run_report.h"
#include "traces/timeline_csv.h"
#include "traces/trace_check.h"
#include "tools/output_plan.h"

namespace stepsim::tools {
namespace {

constexpr std::uintmax_t kMaxScheduleFileBytes = std::uintmax_t{256} << 20;

// The schedule file a run replays: --schedule FILE, else the scenario's
// schedule.file (relative to the scenario's folder), else "" (generate).
std::string ScheduleFilePath(const graph::Config& config, const ScenarioArgs& args,
                             const std::string& override_file) {
  if (!override_file.empty() || config.schedule_file.empty()) return override_file;
  return RelativeToScenario(args.path, config.schedule_file);
}

StatusOr<sim::Schedule> LoadSchedule(const graph::Config& config, const std::string& path) {
  if (path.empty()) return sim::BuildSchedule(config);
  StatusOr<std::string> text = ReadFile(path, kMaxScheduleFileBytes);
  if (!text.ok()) return text.status();
  return sim::ParseScheduleFile(*text, path, config);
}

}  // namespace

StatusOr<sim::Schedule> ResolveSchedule(const graph::Config& config, const ScenarioArgs& args,
                                        const std::string& override_file, bool* from_file) {
  const std::string path = ScheduleFilePath(config, args, override_file);
  *from_file = !path.empty();
  return LoadSchedule(config, path);
}

namespace {

// Loads the scenario and prints its notes; on failure reports and sets `code`.
StatusOr<LoadedScenario> Load(const ScenarioArgs& args) {
  StatusOr<LoadedScenario> loaded = LoadScenario(args);
  if (loaded.ok()) PrintNotes(loaded->notes);
  return loaded;
}

// A command's plan: the scenario's files as inputs, `flag` writing to `path`.
Status PlanOne(OutputPlan& plan, const LoadedScenario& loaded, const std::string& flag,
               const std::string& path) {
  for (const std::string& input : loaded.inputs) plan.AddInput(input);
  plan.AddOutput(flag, path);
  return plan.Prepare();
}

}  // namespace

namespace {

// params and activations: a report built from the config, printed as a
// table unless its JSON goes to stdout, and written as JSON when asked.
template <typename Build, typename Format>
int RunReportCommand(const ScenarioArgs& args, const std::string& json, Build build,
                     Format format) {
  StatusOr<LoadedScenario> loaded = Load(args);
  if (!loaded.ok()) return Report(loaded.status());
  OutputPlan plan;
  if (Status s = PlanOne(plan, *loaded, "--json", json); !s.ok()) return Report(s);
  auto report = build(loaded->config);
  if (!report.ok()) return Report(loaded->places.Locate(report.status()));
  if (!plan.ToStdout()) std::cout << format(loaded->config, *report);
  Status s = plan.Write("--json", traces::ToJson(*report));
  return Report(s.ok() ? plan.Commit() : s);
}

}  // namespace

int RunParams(const ScenarioArgs& args, const std::string& json) {
  return RunReportCommand(args, json, graph::BuildParamsReport,
                          [](const graph::Config& c, const ParamsReport& r) {
                            return traces::FormatParams(c, r);
                          });
}

int RunActivations(const ScenarioArgs& args, const std::string& json) {
  return RunReportCommand(args, json, graph::BuildActivationsReport,
                          [](const graph::Config&, const ActivationsReport& r) {
                            return traces::FormatActivations(r);
                          });
}

int RunDag(const ScenarioArgs& args, int64_t stage, const std::string& dot) {
  StatusOr<LoadedScenario> loaded = Load(args);
  if (!loaded.ok()) return Report(loaded.status());
  const graph::Config& config = loaded->config;
  const auto& stages = config.layout.stages;
  if (stage < 0 || stage >= static_cast<int64_t>(stages.size())) {
    return Report(Status::Invalid("--stage: " + std::to_string(stage) +
                                  " is not a stage of this layout (0.." +
                                  std::to_string(stages.size() - 1) + ")"));
  }
  OutputPlan plan;
  if (Status s = PlanOne(plan, *loaded, "--dot", dot); !s.ok()) return Report(s);
  StatusOr<graph::StageDag> dag = graph::BuildStageDag(config, stages[stage]);
  if (!dag.ok()) return Report(loaded->places.Locate(dag.status()));
  Status s = plan.Write("--dot", graph::DagToDot(*dag));
  if (s.ok()) s = plan.Commit();
  if (s.ok() && !plan.ToStdout()) {
    std::cout << "stage " << stage << " (" << stages[stage].Describe() << "): "
              << dag->ops.size() << " ops, " << dag->tensors.size() << " tensors, "
              << boost::num_edges(dag->graph) << " edges -> " << dot << "\n";
  }
  return Report(s);
}

int RunSimulation(const ScenarioArgs& args, const RunOutputs& outputs, bool verbose) {
  StatusOr<LoadedScenario> loaded = Load(args);
  if (!loaded.ok()) return Report(loaded.status());
  const graph::Config& config = loaded->config;
  const graph::FieldPlaces& places = loaded->places;
  const std::string schedule_path = ScheduleFilePath(config, args, outputs.schedule);

  OutputPlan plan;
  for (const std::string& input : loaded->inputs) plan.AddInput(input);
  plan.AddInput(schedule_path);
  plan.AddOutput("--report", outputs.report);
  plan.AddOutput("--chrome-trace", outputs.chrome_trace);
  plan.AddOutput("--timeline", outputs.timeline);
  plan.AddOutput("--memory-snapshot", outputs.memory_snapshot);
  const bool snapshot = !outputs.memory_snapshot.empty();
  if (snapshot && config.allocator.kind == Allocator::NONE) {
    return Report(Status::Invalid("--memory-snapshot: needs allocator.kind CACHING"));
  }
  if (snapshot && (outputs.snapshot_rank < 0 || outputs.snapshot_rank >= config.parallel.pp)) {
    return Report(Status::Invalid("--snapshot-rank: " + std::to_string(outputs.snapshot_rank) +
                                  " is not a pipeline rank (0.." +
                                  std::to_string(config.parallel.pp - 1) + ")"));
  }
  if (Status s = plan.Prepare(); !s.ok()) return Report(s);

  if (!outputs.no_budget) {
    sim::Budget budget;
    budget.max_seconds = outputs.max_seconds;
    budget.with_trace = !outputs.chrome_trace.empty() || !outputs.timeline.empty();
    const sim::RunCost cost = sim::EstimateRunCost(config, !schedule_path.empty());
    if (Status s = sim::CheckBudget(config, cost, budget); !s.ok()) {
      return Report(places.Locate(s));
    }
  }
  StatusOr<sim::Schedule> schedule = LoadSchedule(config, schedule_path);
  if (!schedule.ok()) return Report(places.Locate(schedule.status()));
  sim::SimOptions options;
  options.verbose = verbose;
  options.schedule_from_file = !schedule_path.empty();
  StatusOr<sim::SimResult> result = sim::Simulate(config, *schedule, options);
  if (!result.ok()) return Report(places.Locate(result.status()));

  StatusOr<std::vector<sim::AllocatorRun>> allocators =
      sim::ReplayAllocators(config, *result, snapshot ? outputs.snapshot_rank : -1,
                             /*threads=*/0);
  if (!allocators.ok()) return Report(allocators.status());
  const RunReport report = traces::BuildRunReport(config, *result, &*allocators);
  if (!plan.ToStdout()) std::cout << traces::FormatRunSummary(report);
  Status s = plan.Write("--report", traces::ToJson(report));
  if (s.ok()) {
    s = plan.Stream("--chrome-trace", [&](std::ostream& out) {
      traces::WriteChromeTrace(*result, report, out, *allocators);
    });
  }
  if (s.ok()) {
    s = plan.Stream("--timeline", [&](std::ostream& out) {
      traces::WriteTimelineCsv(*result, outputs.resolution_us, out, *allocators);
    });
  }
  if (s.ok() && snapshot) {
    s = plan.Stream("--memory-snapshot", [&](std::ostream& out) {
      traces::WriteMemorySnapshot(config, (*allocators)[outputs.snapshot_rank], out);
    });
  }
  if (s.ok()) s = plan.Commit();
  if (s.ok() && !plan.ToStdout() && !outputs.chrome_trace.empty()) {
    std::cout << "Chrome trace: " << outputs.chrome_trace
              << " (open it in https://ui.perfetto.dev, or load it in Chrome DevTools' "
                   "Performance panel)\n";
  }
  if (s.ok() && outputs.fail_if_oom) {
    for (const RankReport& rank : report.ranks()) {
      if (rank.fits()) continue;
      std::cerr << "stepsim: rank " << rank.pp_rank() << " does not fit (--fail-if-oom)\n";
      return kExitDoesNotFit;
    }
  }
  return Report(s);
}

int RunSchedule(const ScenarioArgs& args, const std::string& out) {
  StatusOr<LoadedScenario> loaded = Load(args);
  if (!loaded.ok()) return Report(loaded.status());
  const std::string schedule_path = ScheduleFilePath(loaded->config, args, "");
  OutputPlan plan;
  if (Status s = PlanOne(plan, *loaded, "--out", out); !s.ok()) return Report(s);
  StatusOr<sim::Schedule> schedule = LoadSchedule(loaded->config, schedule_path);
  if (!schedule.ok()) return Report(loaded->places.Locate(schedule.status()));
  const bool proto = out.ends_with(".textproto") || out.ends_with(".pbtxt");
  Status s = plan.Write("--out", sim::FormatScheduleFile(*schedule, proto));
  return Report(s.ok() ? plan.Commit() : s);
}

int RunCheckTrace(const std::string& path) {
  // Streamed: a trace may be far larger than memory should hold. Opened as
  // ReadFile opens inputs: a FIFO or a device is refused at once.
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Report(Status::Invalid(OpenError(path, errno)));
  struct stat st {};
  const bool stated = fstat(fd, &st) == 0;
  close(fd);
  if (!stated) return Report(Status::Invalid(OpenError(path, errno)));
  if (!S_ISREG(st.st_mode)) {
    return Report(Status::Invalid(path + ": " + NotRegular(st.st_mode) +
                                  ", not a regular file; stepsim reads inputs from regular files"));
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
