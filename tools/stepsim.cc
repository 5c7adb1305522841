// The stepsim command: parses the command line and dispatches to a
// subcommand (tools/commands.h). Exit codes: 0 success, 1 the run failed,
// 2 bad input or usage.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>

#include "graph/presets.h"
#include "sim/engine.h"
#include "tools/commands.h"

namespace {

using stepsim::tools::ScenarioArgs;

void AddScenarioArgs(CLI::App* cmd, ScenarioArgs* args) {
  cmd->add_option("scenario", args->path, "scenario file (protobuf text format)")->required();
  cmd->add_option("--set", args->sets,
                  "override a scenario field, path=value (repeatable), e.g. --set parallel.ep=16")
      ->allow_extra_args(false);
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
  app.add_flag("-v,--verbose", verbose, "log progress (with simulated time) to stderr");

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
  stepsim::tools::RunOutputs run_outputs;
  CLI::App* run = app.add_subcommand(
      "run", "simulate one training step: memory of every pipeline rank over time, its peaks");
  AddScenarioArgs(run, &run_args);
  run->add_option("--schedule", run_outputs.schedule,
                  "replay this schedule file instead of the scenario's schedule");
  run->add_option("--report", run_outputs.report, "write the report as JSON to FILE, or -");
  run->add_option("--chrome-trace", run_outputs.chrome_trace,
                  "write a Chrome/Perfetto trace (JSON) to FILE, or -");
  run->add_option("--timeline", run_outputs.timeline,
                  "write the memory timeline as CSV to FILE, or -");
  run->add_option("--timeline-resolution-us", run_outputs.resolution_us,
                  "keep one CSV row per rank and window of this many microseconds (the highest)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            const double v = std::strtod(value.c_str(), nullptr);
            return v == 0 || (v >= 0.001 && v <= 1e12)
                       ? ""
                       : "must be 0 (every change) or between 0.001 and 1e12 microseconds";
          },
          "RESOLUTION"));

  ScenarioArgs schedule_args;
  std::string schedule_out;
  CLI::App* schedule = app.add_subcommand(
      "schedule", "write the pipeline schedule the scenario runs, as a replayable file");
  AddScenarioArgs(schedule, &schedule_args);
  schedule->add_option("--out", schedule_out,
                       "FILE (.textproto/.pbtxt: protobuf text, else the compact form), or -")
      ->required();

  ScenarioArgs compare_args;
  std::vector<std::string> compare_schedules;
  std::string compare_json;
  CLI::App* compare = app.add_subcommand(
      "compare", "simulate the scenario under several schedules: step time, bubble, peaks");
  AddScenarioArgs(compare, &compare_args);
  compare->add_option("--schedules", compare_schedules,
                      "comma-separated: gpipe,1f1b,interleaved,zb-h1,zb-h2,dualpipe,dualpipe-v "
                      "(default: all)")
      ->delimiter(',');
  compare->add_option("--json", compare_json, "write the comparison as JSON to FILE, or -");

  std::string check_path;
  CLI::App* check = app.add_subcommand(
      "check-trace",
      "check a Chrome trace against the rules of Perfetto's and DevTools' importers");
  check->add_option("trace", check_path, "trace file (JSON)")->required();

  ScenarioArgs plot_args;
  std::string plot_ranks, plot_out;
  CLI::App* plot = app.add_subcommand(
      "plot", "simulate one step and draw each rank's memory over time (PNG or SVG)");
  AddScenarioArgs(plot, &plot_args);
  plot->add_option("--ranks", plot_ranks,
                   "comma-separated pipeline ranks (default: all up to 4, else the first, the "
                   "highest and the last)");
  plot->add_option("-o,--out", plot_out, "FILE.png or FILE.svg")->required();

  app.add_subcommand("presets", "list the built-in model presets");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return stepsim::tools::kExitBadInput;
  }
  if (verbose) spdlog::set_level(spdlog::level::info);

  namespace t = stepsim::tools;
  auto Dispatch = [&]() -> int {
    if (params->parsed()) return t::RunParams(params_args, params_json);
    if (activations->parsed()) return t::RunActivations(activations_args, activations_json);
    if (dag->parsed()) return t::RunDag(dag_args, dag_stage, dag_dot);
    if (run->parsed()) return t::RunSimulation(run_args, run_outputs, verbose);
    if (schedule->parsed()) return t::RunSchedule(schedule_args, schedule_out);
    if (compare->parsed()) {
      // Load the engine (SimGrid) once, before compare forks a child per schedule.
      if (const int code = t::Report(stepsim::sim::LoadEngine()); code != t::kExitOk) return code;
      return t::RunCompare(compare_args, compare_schedules, compare_json);
    }
    if (check->parsed()) return t::RunCheckTrace(check_path);
    if (plot->parsed()) return t::RunPlot(plot_args, plot_ranks, plot_out);
    if (app.got_subcommand("presets")) {
      for (const std::string& name : stepsim::graph::ModelPresetNames()) std::cout << name << "\n";
      return t::kExitOk;
    }
    return t::kExitBadInput;
  };
  int code = t::kExitBadInput;
  try {
    code = Dispatch();
  } catch (const std::exception& e) {
    std::cerr << "stepsim: internal error: " << e.what() << "\n";
    return t::kExitFailed;
  }
  std::cout.flush();
  if (!std::cout) {
    std::cerr << "stepsim: writing to standard output failed\n";
    return t::kExitFailed;
  }
  return code;
}
