// The stepsim command: parses the command line and dispatches to a
// subcommand (tools/commands.h, tools/sweep_commands.h). Exit codes: 0
// success, 1 the run failed, 2 bad input or usage, 3 `run --fail-if-oom`
// and a rank does not fit.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <tuple>

#include "graph/presets.h"
#include "graph/utf8.h"
#include "tools/allocator_replay.h"
#include "tools/commands.h"
#include "tools/sweep_commands.h"

#ifndef STEPSIM_VERSION
#define STEPSIM_VERSION "0.1.0"
#endif

namespace {

using stepsim::tools::ScenarioArgs;

// Refuses an empty file name ("--report ''" would otherwise mean "no report").
CLI::Validator NonEmpty() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        return value.empty() ? "an empty file name (give a FILE, or - for stdout)" : "";
      },
      "FILE");
}

void AddScenarioArgs(CLI::App* cmd, ScenarioArgs* args) {
  cmd->add_option("scenario", args->path, "scenario file (protobuf text format)")
      ->required()
      ->check(NonEmpty());
  cmd->add_option("--set", args->sets,
                  "override a scenario field, path=value (repeatable), e.g. --set parallel.ep=16")
      ->allow_extra_args(false);
}

CLI::Option* AddOutput(CLI::App* cmd, const std::string& flag, std::string* path,
                       const std::string& help) {
  return cmd->add_option(flag, *path, help)->check(NonEmpty());
}

// The first word that is not an option: the subcommand the user meant.
std::string FirstWord(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] != '-') return argv[i];
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  stepsim::tools::PrepareStandardStreams();
  auto logger = spdlog::stderr_color_mt("stepsim");
  logger->set_pattern("[%l] %v");  // never wall-clock time
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::warn);

  CLI::App app{"stepsim: simulate the memory of one training step of a large model"};
  app.require_subcommand(1);
  app.fallthrough();  // -v works after the subcommand too
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "log progress (with simulated time) to stderr");
  app.set_version_flag("--version", "stepsim " STEPSIM_VERSION);

  ScenarioArgs params_args;
  std::string params_json;
  CLI::App* params = app.add_subcommand(
      "params", "parameter counts and static memory (weights, gradients, optimizer) per GPU");
  AddScenarioArgs(params, &params_args);
  AddOutput(params, "--json", &params_json, "write the report as JSON to FILE, or - for stdout");

  ScenarioArgs activations_args;
  std::string activations_json;
  CLI::App* activations = app.add_subcommand(
      "activations", "bytes one micro-batch keeps for backward per stage, by module and op");
  AddScenarioArgs(activations, &activations_args);
  AddOutput(activations, "--json", &activations_json,
            "write the report as JSON to FILE, or - for stdout");

  ScenarioArgs dag_args;
  int64_t dag_stage = 0;
  std::string dag_dot;
  CLI::App* dag = app.add_subcommand("dag", "write one stage's op DAG as Graphviz");
  AddScenarioArgs(dag, &dag_args);
  dag->add_option("--stage", dag_stage, "pipeline stage (layout position, from 0)")->required();
  AddOutput(dag, "--dot", &dag_dot, "Graphviz output FILE, or - for stdout")->required();

  ScenarioArgs run_args;
  stepsim::tools::RunOutputs run_outputs;
  CLI::App* run = app.add_subcommand(
      "run", "simulate one training step: memory of every pipeline rank over time, its peaks");
  AddScenarioArgs(run, &run_args);
  run->add_option("--schedule", run_outputs.schedule,
                  "replay this schedule file instead of the scenario's schedule")
      ->check(NonEmpty());
  AddOutput(run, "--report", &run_outputs.report, "write the report as JSON to FILE, or -");
  AddOutput(run, "--chrome-trace", &run_outputs.chrome_trace,
            "write a Chrome/Perfetto trace (JSON) to FILE, or -");
  CLI::Option* timeline = AddOutput(run, "--timeline", &run_outputs.timeline,
                                    "write the memory timeline as CSV to FILE, or -");
  run->add_flag("--fail-if-oom", run_outputs.fail_if_oom,
                "exit with code 3 when a rank does not fit in device memory");
  run->add_option("--timeline-resolution-us", run_outputs.resolution_us,
                  "keep one CSV row per rank and window of this many microseconds (the highest)")
      ->needs(timeline)
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            const double v = std::strtod(value.c_str(), nullptr);
            return v == 0 || (v >= 0.001 && v <= 1e12)
                       ? ""
                       : "must be 0 (every change) or between 0.001 and 1e12 microseconds";
          },
          "RESOLUTION"));
  CLI::Option* max_seconds =
      run->add_option("--max-seconds", run_outputs.max_seconds,
                      "refuse a run estimated to take longer to simulate (default 60)")
          ->check(CLI::Range(0.001, 1e9));
  run->add_flag("--no-budget", run_outputs.no_budget,
                "run however long the simulation is estimated to take")
      ->excludes(max_seconds);

  AddOutput(run, "--memory-snapshot", &run_outputs.memory_snapshot,
            "write a PyTorch memory snapshot (pickle) of one rank to FILE, or -");
  run->add_option("--snapshot-rank", run_outputs.snapshot_rank,
                  "the pipeline rank of --memory-snapshot (default 0)")
      ->needs("--memory-snapshot");

  stepsim::tools::AllocatorReplayArgs replay_args;
  CLI::App* replay = app.add_subcommand(
      "allocator-replay",
      "replay `alloc ID BYTES [STREAM]` / `free ID` lines through PyTorch's caching allocator");
  replay->add_option("trace", replay_args.path, "trace file, one event per line")->required();
  replay->add_option("--json", replay_args.json, "write the result as JSON to FILE, or -");
  replay->add_option("--max-split-size-mb", replay_args.max_split_size_mb,
                     "blocks of this many MiB or more are not split (>= 20)")
      ->check(CLI::Range(int64_t{20}, int64_t{1} << 30));
  replay->add_option("--roundup-power2-divisions", replay_args.options.roundup_power2_divisions,
                     "round sizes to N steps between powers of two (a power of two)")
      ->check(CLI::IsMember({0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}));
  replay->add_flag("--expandable-segments", replay_args.options.expandable_segments,
                   "one growing segment per stream, mapped in pages");
  replay->add_option("--capacity", replay_args.options.capacity,
                     "bytes cudaMalloc may hand out (default: unlimited)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50));

  ScenarioArgs schedule_args;
  std::string schedule_out;
  CLI::App* schedule = app.add_subcommand(
      "schedule", "write the pipeline schedule the scenario runs, as a replayable file");
  AddScenarioArgs(schedule, &schedule_args);
  AddOutput(schedule, "--out", &schedule_out,
            "FILE (.textproto/.pbtxt: protobuf text, else the compact form), or -")
      ->required();

  ScenarioArgs compare_args;
  std::vector<std::string> compare_schedules;
  std::string compare_json;
  CLI::App* compare = app.add_subcommand(
      "compare", "simulate the scenario under several schedules: step time, bubble, peaks");
  AddScenarioArgs(compare, &compare_args);
  compare->add_option("--schedules", compare_schedules,
                      "comma-separated schedule kinds, any case: gpipe, one_f_one_b, "
                      "interleaved_one_f_one_b, zb_h1, zb_h2, dualpipe, dualpipe_v (default: all)")
      ->delimiter(',');
  AddOutput(compare, "--json", &compare_json, "write the comparison as JSON to FILE, or -");
  stepsim::tools::CompareBudget compare_budget;
  CLI::Option* compare_max_seconds =
      compare->add_option("--max-seconds", compare_budget.max_seconds,
                          "refuse a comparison whose schedules together are estimated to take "
                          "longer to simulate (default 60)")
          ->check(CLI::Range(0.001, 1e9));
  compare->add_flag("--no-budget", compare_budget.no_budget,
                    "compare however long the simulations are estimated to take")
      ->excludes(compare_max_seconds);

  // sweep, fit, merge: searching many configurations (tools/sweep_commands.h).
  auto add_outputs = [](CLI::App* cmd, stepsim::tools::SearchOutputs* o) {
    cmd->add_option("--json", o->json, "write the result as JSON to FILE, or -");
    cmd->add_option("--csv", o->csv, "write one CSV row per configuration to FILE, or -");
    cmd->add_option("--out", o->out,
                    "write the result as protobuf text to FILE, which `stepsim merge` reads");
  };
  auto add_runner = [](CLI::App* cmd, int* jobs, std::string* shard,
                       stepsim::tools::SlurmArgs* slurm) {
    cmd->add_option("-j,--jobs", *jobs, "worker processes (default: every core)")
        ->check(CLI::Range(1, 4096));
    cmd->add_option("--shard", *shard, "run only shard K of N (K/N, from 1/N to N/N)");
    cmd->add_option("--slurm", slurm->dir,
                    "write a Slurm job array of --shards shards and a merge job into DIR");
    cmd->add_option("--shards", slurm->shards, "shards of the Slurm job array (default 4)");
    cmd->add_option("--slurm-cpus", slurm->cpus, "CPUs per shard job (default 1)");
    cmd->add_flag("--submit", slurm->submit, "submit the Slurm jobs with sbatch");
  };
  stepsim::tools::SweepArgs sweep_args;
  CLI::App* sweep = app.add_subcommand(
      "sweep", "simulate every combination of --vary values: fits, peak, step time, tokens/s");
  AddScenarioArgs(sweep, &sweep_args.scenario);
  sweep->add_option("--vary", sweep_args.varies,
                    "PATH=V1,V2,... (repeatable): a field and its values (items of a list "
                    "field joined by '+')")
      ->required()
      ->allow_extra_args(false);
  add_runner(sweep, &sweep_args.jobs, &sweep_args.shard, &sweep_args.slurm);
  add_outputs(sweep, &sweep_args.outputs);
  sweep->add_option("--top", sweep_args.outputs.top, "show at most K rows of the table");

  stepsim::tools::FitArgs fit_args;
  CLI::App* fit = app.add_subcommand(
      "fit", "search the layouts of N GPUs that fit the device; rank them by step time");
  AddScenarioArgs(fit, &fit_args.scenario);
  fit->add_option("--gpus", fit_args.gpus, "GPUs to use (N = PP*TP*CP*DP)")->required();
  fit->add_option("--global-batch", fit_args.global_batch,
                  "sequences per step (default: the scenario's b*m*DP)");
  fit->add_option("--headroom", fit_args.headroom_gib, "GiB to keep free on every GPU");
  fit->add_option("--top", fit_args.top, "find and show the K fastest that fit (default 10)");
  for (const auto& [flag, target, help] :
       {std::tuple{"--pp", &fit_args.pp, "pipeline sizes (default: powers of two)"},
        {"--tp", &fit_args.tp, "tensor-parallel sizes, with SP (default: 1..GPUs per node)"},
        {"--cp", &fit_args.cp, "context-parallel sizes (default 1,2)"},
        {"--ep", &fit_args.ep, "expert-parallel sizes (default: powers of two dividing the experts)"},
        {"--etp", &fit_args.etp, "expert tensor-parallel sizes (default: 1 and TP)"},
        {"--mbs", &fit_args.mbs, "micro-batch sizes (default 1,2,4)"},
        {"--vpp", &fit_args.vpp, "chunks per rank for the interleaved schedule (default 2)"},
        {"--zero", &fit_args.zero, "ZeRO stages (default 0,1,2,3)"},
        {"--schedules", &fit_args.schedules,
         "schedules (default: gpipe,1f1b,interleaved,zb-h1,zb-h2,dualpipe,dualpipe-v)"},
        {"--recompute", &fit_args.recompute,
         "none, full, or modules joined by '+' (default: none, the scenario's modules, full)"}}) {
    fit->add_option(flag, *target, help)->delimiter(',');
  }
  add_runner(fit, &fit_args.jobs, &fit_args.shard, &fit_args.slurm);
  add_outputs(fit, &fit_args.outputs);

  std::vector<std::string> merge_files;
  stepsim::tools::SearchOutputs merge_outputs;
  CLI::App* merge = app.add_subcommand(
      "merge", "merge the shard files (--out) of one sweep or fit into the whole result");
  merge->add_option("files", merge_files, "shard files (protobuf text)")->required();
  add_outputs(merge, &merge_outputs);
  merge->add_option("--top", merge_outputs.top, "show at most K rows of the table");

  std::string check_path;
  CLI::App* check = app.add_subcommand(
      "check-trace",
      "check a Chrome trace against the rules of Perfetto's and DevTools' importers");
  check->add_option("trace", check_path, "trace file (JSON)")->required()->check(NonEmpty());

  std::vector<std::string> validate_files;
  std::string validate_json;
  CLI::App* validate = app.add_subcommand(
      "validate", "hold predictions against measured training runs (validation cases)");
  validate->add_option("cases", validate_files, "validation case files (.textproto)")
      ->required();
  validate->add_option("--json", validate_json, "write the results as JSON to FILE, or -");

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

  namespace t = stepsim::tools;
  const std::string word = FirstWord(argc, argv);
  std::string commands;
  bool known = false;
  for (const CLI::App* sub : app.get_subcommands({})) {
    commands += (commands.empty() ? "" : ", ") + sub->get_name();
    known = known || sub->get_name() == word;
  }
  if (!word.empty() && !known) {
    std::cerr << "stepsim: unknown command " << stepsim::graph::QuoteValue(word)
              << " (commands: " << commands << "; stepsim --help explains them)\n";
    return t::kExitBadInput;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return t::kExitBadInput;
  }
  if (verbose) spdlog::set_level(spdlog::level::info);

  auto Dispatch = [&]() -> int {
    if (params->parsed()) return t::RunParams(params_args, params_json);
    if (activations->parsed()) return t::RunActivations(activations_args, activations_json);
    if (dag->parsed()) return t::RunDag(dag_args, dag_stage, dag_dot);
    if (run->parsed()) return t::RunSimulation(run_args, run_outputs, verbose);
    if (schedule->parsed()) return t::RunSchedule(schedule_args, schedule_out);
    if (compare->parsed()) {
      return t::RunCompare(compare_args, compare_schedules, compare_json, compare_budget);
    }
    if (check->parsed()) return t::RunCheckTrace(check_path);
    if (plot->parsed()) return t::RunPlot(plot_args, plot_ranks, plot_out);
    if (validate->parsed()) return t::RunValidate(validate_files, validate_json);
    if (sweep->parsed()) return t::RunSweepCommand(sweep_args);
    if (fit->parsed()) return t::RunFitCommand(fit_args);
    if (merge->parsed()) return t::RunMergeCommand(merge_files, merge_outputs);
    if (replay->parsed()) return t::RunAllocatorReplay(replay_args);
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
  const bool written = std::cout && std::fflush(stdout) == 0;
  if (!written && code == t::kExitOk) {  // a failed command has said why already
    std::cerr << "stepsim: writing to standard output failed\n";
    return t::kExitFailed;
  }
  return code;
}
