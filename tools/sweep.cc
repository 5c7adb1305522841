// stepsim sweep, and what sweep, fit and merge share: outputs, shards,
// the base scenario's identity and the Slurm jobs.
#include <google/protobuf/text_format.h>

#include <filesystem>
#include <iostream>

#include "sim/process_pool.h"
#include "tools/output_plan.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/sweep_commands.h"
#include "traces/json.h"
#include "traces/run_report.h"
#include "traces/sweep_table.h"

namespace stepsim::tools {

int WriteSearchOutputs(const SweepReport& report, const SearchOutputs& outputs,
                       const std::string& title) {
  const bool to_stdout = outputs.json == "-" || outputs.csv == "-" || outputs.out == "-";
  if (!to_stdout) {
    std::cout << title << "\n\n"
              << (report.command() == "fit" ? traces::FormatFitTable(report, outputs.top)
                                            : traces::FormatSweepTable(report, outputs.top));
  }
  Status status;
  if (!outputs.json.empty()) {
    status = WriteOutput(outputs.json, traces::ToJsonByElement(report, "configs"));
  }
  if (status.ok() && !outputs.csv.empty()) status = WriteOutput(outputs.csv, traces::SweepCsv(report));
  if (status.ok() && !outputs.out.empty()) {
    google::protobuf::TextFormat::Printer printer;
    std::string text;
    printer.PrintToString(report, &text);
    status = WriteOutput(outputs.out, text);
  }
  return Report(status);
}

int SearchExitCode(const SweepReport& report) {
  const bool fit = report.command() == "fit";
  for (const SweepConfig& c : report.configs()) {
    if (c.simulated() && (!fit || c.fits())) return kExitOk;
  }
  if (report.configs_size() == 0) return kExitOk;  // an empty shard
  std::cerr << (fit ? "stepsim: no configuration fits\n"
                    : "stepsim: no configuration of the sweep could be simulated\n");
  return kExitFailed;
}

StatusOr<sim::Shard> ParseShardArg(const std::string& text) {
  if (text.empty()) return sim::Shard{};
  return sim::ParseShard(text);
}

int JobsOrCores(int jobs) { return jobs > 0 ? jobs : sim::AvailableCores(); }

std::vector<std::string> ScenarioContext(const ScenarioArgs& args) {
  std::vector<std::string> lines = {"scenario " + std::filesystem::path(args.path).filename().string()};
  for (const std::string& set : args.sets) lines.push_back("set " + set);
  return lines;
}

int WriteSlurm(const SlurmArgs& slurm, const std::vector<std::string>& command) {
  if (slurm.shards < 1 || slurm.shards > 100'000) {
    return Report(Status::Invalid("--shards: " + std::to_string(slurm.shards) +
                                  " is outside 1..100000"));
  }
  if (slurm.cpus < 1 || slurm.cpus > 1024) {
    return Report(Status::Invalid("--slurm-cpus: " + std::to_string(slurm.cpus) +
                                  " is outside 1..1024"));
  }
  if (Status s = WriteSlurmJobs(slurm, command); !s.ok()) return Report(s);
  const std::string dir = std::filesystem::absolute(slurm.dir).string();
  std::cout << "Slurm jobs in " << dir << ": shards.sbatch (" << slurm.shards
            << " shards), merge.sbatch, submit.sh\n";
  if (!slurm.submit) {
    std::cout << "submit them with: bash " << ShellQuote(dir + "/submit.sh") << "\n";
    return kExitOk;
  }
  StatusOr<std::string> submitted = SubmitSlurmJobs(slurm);
  if (!submitted.ok()) return Report(submitted.status());
  std::cout << *submitted << "the merged result will be in " << dir << "/result.txt, "
            << "result.json and result.csv\n";
  return kExitOk;
}

namespace {

// The sweep's command line for the Slurm shards: absolute paths, no
// outputs, shards or -j.
std::vector<std::string> SweepCommand(const SweepArgs& args) {
  std::vector<std::string> command = {SelfPath(), "sweep",
                                      std::filesystem::absolute(args.scenario.path).string()};
  for (const std::string& set : args.scenario.sets) command.push_back("--set=" + set);
  for (const std::string& vary : args.varies) command.push_back("--vary=" + vary);
  return command;
}

}  // namespace

int RunSweepCommand(const SweepArgs& args) {
  StatusOr<Scenario> base = ReadScenario(args.scenario);
  if (!base.ok()) return Report(base.status());
  std::vector<sim::Vary> varies;
  for (const std::string& text : args.varies) {
    StatusOr<sim::Vary> vary = sim::ParseVary(text);
    if (!vary.ok()) return Report(vary.status());
    varies.push_back(std::move(*vary));
  }
  StatusOr<sim::Shard> shard = ParseShardArg(args.shard);
  if (!shard.ok()) return Report(shard.status());
  if (!args.slurm.dir.empty()) {
    // Check the space here, not in N failing jobs.
    std::vector<sim::Vary> checked = varies;
    if (Status s = sim::CheckVaries(*base, &checked); !s.ok()) return Report(s);
    StatusOr<int64_t> total = sim::CountPoints(checked);
    if (!total.ok()) return Report(total.status());
    if (args.slurm.shards > *total) {
      return Report(Status::Invalid("--shards: " + std::to_string(args.slurm.shards) +
                                    " shards for a sweep of " + std::to_string(*total) +
                                    " configurations"));
    }
    return WriteSlurm(args.slurm, SweepCommand(args));
  }

  ProgressBar progress("sweep");
  sim::SweepOptions options;
  options.jobs = JobsOrCores(args.jobs);
  options.shard = *shard;
  options.context = ScenarioContext(args.scenario);
  options.progress = [&](int64_t done, int64_t total) { progress.Update(done, total); };
  options.schedule = [&](const graph::Config& config) -> StatusOr<sim::ScheduleChoice> {
    sim::ScheduleChoice choice;
    StatusOr<sim::Schedule> schedule = ResolveSchedule(config, args.scenario, "", &choice.from_file);
    if (!schedule.ok()) return schedule.status();
    choice.schedule = std::move(*schedule);
    return choice;
  };
  StatusOr<SweepReport> report = sim::RunSweep(*base, varies, traces::ReportRun, options);
  if (!report.ok()) return Report(report.status());
  const std::string title = base->name() + ": sweep of " + std::to_string(report->total()) +
                            " configurations" +
                            (shard->whole() ? "" : ", shard " + sim::ShardName(*shard));
  if (int code = WriteSearchOutputs(*report, args.outputs, title); code != kExitOk) return code;
  return SearchExitCode(*report);
}

}  // namespace stepsim::tools
