// The stepsim command: parses the command line, reads files, calls the
// libraries and turns a Status into a message and an exit code.
//
// Exit codes: 0 success, 1 the run failed, 2 bad input or usage.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "graph/activations.h"
#include "graph/config.h"
#include "graph/overrides.h"
#include "graph/params_report.h"
#include "graph/presets.h"
#include "graph/scenario_text.h"
#include "graph/stage_dag.h"
#include "sim/engine.h"
#include "sim/schedule.h"
#include "traces/activations_text.h"
#include "traces/chrome_trace.h"
#include "traces/json.h"
#include "traces/params_text.h"
#include "traces/run_report.h"
#include "traces/timeline_csv.h"
#include "traces/trace_check.h"

namespace {

using stepsim::Status;
using stepsim::StatusCode;
using stepsim::StatusOr;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;
constexpr std::uintmax_t kMaxInputBytes = 16u << 20;

int ExitCode(const Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == StatusCode::kInvalidInput ? kExitBadInput : kExitFailed;
}

int Report(const Status& status) {
  if (!status.ok()) std::cerr << "stepsim: " << status.message() << "\n";
  return ExitCode(status);
}

StatusOr<std::string> ReadFile(const std::string& path,
                               std::uintmax_t max_bytes = kMaxInputBytes) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return Status::Invalid(path + ": no such file");
  }
  if (std::filesystem::is_directory(status)) {
    return Status::Invalid(path + ": is a directory, not a scenario file");
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > max_bytes) {
    return Status::Invalid(path + ": " + std::to_string(size) + " bytes is larger than the " +
                           std::to_string(max_bytes >> 20) + " MiB this input may have");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Invalid(path + ": cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Status WriteOutput(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text;
    return Status::Ok();
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::Invalid(path + ": cannot be written");
  out << text;
  out.close();
  if (!out) return Status::Failed(path + ": write failed");
  return Status::Ok();
}

// Options every scenario command shares.
struct ScenarioArgs {
  std::string path;
  std::vector<std::string> sets;
};

void AddScenarioArgs(CLI::App* cmd, ScenarioArgs* args) {
  cmd->add_option("scenario", args->path, "scenario file (protobuf text format)")
      ->required();
  cmd->add_option("--set", args->sets,
                  "override a scenario field, path=value (repeatable), "
                  "e.g. --set parallel.ep=16")
      ->allow_extra_args(false);
}

StatusOr<stepsim::graph::Config> LoadConfig(const ScenarioArgs& args) {
  StatusOr<std::string> text = ReadFile(args.path);
  if (!text.ok()) return text.status();
  StatusOr<stepsim::Scenario> scenario = stepsim::graph::ParseScenario(*text, args.path);
  if (!scenario.ok()) return scenario.status();
  for (const std::string& set : args.sets) {
    Status s = stepsim::graph::ApplyOverride(set, &*scenario);
    if (!s.ok()) return s;
  }
  if (scenario->name().empty()) {
    scenario->set_name(std::filesystem::path(args.path).stem().string());
  }
  return stepsim::graph::Resolve(*scenario);
}

int RunParams(const ScenarioArgs& args, const std::string& json) {
  StatusOr<stepsim::graph::Config> config = LoadConfig(args);
  if (!config.ok()) return Report(config.status());
  StatusOr<stepsim::ParamsReport> report = stepsim::graph::BuildParamsReport(*config);
  if (!report.ok()) return Report(report.status());
  if (json != "-") std::cout << stepsim::traces::FormatParams(*config, *report);
  if (!json.empty()) return Report(WriteOutput(json, stepsim::traces::ToJson(*report)));
  return kExitOk;
}

int RunActivations(const ScenarioArgs& args, const std::string& json) {
  StatusOr<stepsim::graph::Config> config = LoadConfig(args);
  if (!config.ok()) return Report(config.status());
  StatusOr<stepsim::ActivationsReport> report =
      stepsim::graph::BuildActivationsReport(*config);
  if (!report.ok()) return Report(report.status());
  if (json != "-") std::cout << stepsim::traces::FormatActivations(*report);
  if (!json.empty()) return Report(WriteOutput(json, stepsim::traces::ToJson(*report)));
  return kExitOk;
}

int RunDag(const ScenarioArgs& args, int64_t stage, const std::string& dot) {
  StatusOr<stepsim::graph::Config> config = LoadConfig(args);
  if (!config.ok()) return Report(config.status());
  const auto& stages = config->layout.stages;
  if (stage < 0 || stage >= static_cast<int64_t>(stages.size())) {
    return Report(Status::Invalid("--stage: " + std::to_string(stage) +
                                  " is not a stage of this layout (0.." +
                                  std::to_string(stages.size() - 1) + ")"));
  }
  StatusOr<stepsim::graph::StageDag> dag = stepsim::graph::BuildStageDag(*config, stages[stage]);
  if (!dag.ok()) return Report(dag.status());
  Status written = WriteOutput(dot, stepsim::graph::DagToDot(*dag));
  if (written.ok() && dot != "-") {
    std::cout << "stage " << stage << " (" << stages[stage].Describe() << "): "
              << dag->ops.size() << " ops, " << dag->tensors.size() << " tensors, "
              << boost::num_edges(dag->graph) << " edges -> " << dot << "\n";
  }
  return Report(written);
}

struct RunArgs {
  std::string report, chrome_trace, timeline;
  double resolution_us = 0;
};

int RunSimulation(const ScenarioArgs& args, const RunArgs& run, bool verbose) {
  StatusOr<stepsim::graph::Config> config = LoadConfig(args);
  if (!config.ok()) return Report(config.status());
  StatusOr<stepsim::sim::Schedule> schedule = stepsim::sim::BuildSchedule(*config);
  if (!schedule.ok()) return Report(schedule.status());
  stepsim::sim::SimOptions options;
  options.verbose = verbose;
  StatusOr<stepsim::sim::SimResult> result =
      stepsim::sim::Simulate(*config, *schedule, options);
  if (!result.ok()) return Report(result.status());
  const stepsim::RunReport report = stepsim::traces::BuildRunReport(*config, *result);
  const bool to_stdout = run.report == "-" || run.chrome_trace == "-" || run.timeline == "-";
  if (!to_stdout) std::cout << stepsim::traces::FormatRunSummary(report);
  Status status;
  if (!run.report.empty()) status = WriteOutput(run.report, stepsim::traces::ToJson(report));
  if (status.ok() && !run.chrome_trace.empty()) {
    status = WriteOutput(run.chrome_trace, stepsim::traces::ChromeTrace(*result, report));
    if (status.ok() && !to_stdout) {
      std::cout << "Chrome trace: " << run.chrome_trace
                << " (open it in https://ui.perfetto.dev or chrome://tracing)\n";
    }
  }
  if (status.ok() && !run.timeline.empty()) {
    status = WriteOutput(run.timeline, stepsim::traces::TimelineCsv(*result, run.resolution_us));
  }
  return Report(status);
}

int RunCheckTrace(const std::string& path) {
  StatusOr<std::string> text = ReadFile(path, std::uintmax_t{4} << 30);
  if (!text.ok()) return Report(text.status());
  const stepsim::traces::TraceCheck check = stepsim::traces::CheckChromeTrace(*text);
  for (const std::string& p : check.problems) std::cerr << path << ": " << p << "\n";
  std::cout << path << ": " << check.events << " events, " << check.slices << " slices, "
            << check.counters << " counter events, " << check.flows << " flows: "
            << (check.problems.empty() ? "ok" : "INVALID") << "\n";
  return check.problems.empty() ? kExitOk : kExitFailed;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("stepsim");
  logger->set_pattern("[%l] %v");  // never wall-clock time
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::warn);

  CLI::App app{"stepsim: simulate the memory of one training step of a large model"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "log progress to stderr");

  ScenarioArgs params_args;
  std::string params_json;
  CLI::App* params = app.add_subcommand(
      "params", "parameter counts and static memory (weights, gradients, optimizer) per GPU");
  AddScenarioArgs(params, &params_args);
  params->add_option("--json", params_json, "write the report as JSON to FILE, or - for stdout");

  ScenarioArgs activations_args;
  std::string activations_json;
  CLI::App* activations = app.add_subcommand(
      "activations", "bytes one micro-batch keeps for backward per stage, by module and op");
  AddScenarioArgs(activations, &activations_args);
  activations->add_option("--json", activations_json,
                          "write the report as JSON to FILE, or - for stdout");

  ScenarioArgs dag_args;
  int64_t dag_stage = 0;
  std::string dag_dot;
  CLI::App* dag = app.add_subcommand("dag", "write one stage's op DAG as Graphviz");
  AddScenarioArgs(dag, &dag_args);
  dag->add_option("--stage", dag_stage, "pipeline stage (layout position, from 0)")->required();
  dag->add_option("--dot", dag_dot, "Graphviz output FILE, or - for stdout")->required();

  ScenarioArgs run_args;
  RunArgs run_outputs;
  CLI::App* run = app.add_subcommand(
      "run", "simulate one training step: memory of every pipeline rank over time, its peaks");
  AddScenarioArgs(run, &run_args);
  run->add_option("--report", run_outputs.report, "write the report as JSON to FILE, or -");
  run->add_option("--chrome-trace", run_outputs.chrome_trace,
                  "write a Chrome/Perfetto trace (JSON) to FILE, or -");
  run->add_option("--timeline", run_outputs.timeline,
                  "write the memory timeline as CSV to FILE, or -");
  run->add_option("--timeline-resolution-us", run_outputs.resolution_us,
                  "keep one CSV row per rank and window of this many microseconds (the "
                  "highest)")
      ->check(CLI::NonNegativeNumber);

  std::string check_path;
  CLI::App* check = app.add_subcommand(
      "check-trace", "check a Chrome trace against the rules Perfetto's JSON importer needs");
  check->add_option("trace", check_path, "trace file (JSON)")->required();

  app.add_subcommand("presets", "list the built-in model presets");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadInput;
  }
  if (verbose) spdlog::set_level(spdlog::level::info);

  if (params->parsed()) return RunParams(params_args, params_json);
  if (activations->parsed()) return RunActivations(activations_args, activations_json);
  if (dag->parsed()) return RunDag(dag_args, dag_stage, dag_dot);
  if (run->parsed()) return RunSimulation(run_args, run_outputs, verbose);
  if (check->parsed()) return RunCheckTrace(check_path);
  if (app.got_subcommand("presets")) {
    for (const std::string& name : stepsim::graph::ModelPresetNames()) {
      std::cout << name << "\n";
    }
    return kExitOk;
  }
  return kExitBadInput;
}
