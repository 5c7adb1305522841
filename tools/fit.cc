// stepsim fit: the layouts of N GPUs that fit, fastest first.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <tuple>

#include "tools/progress.h"
#include "tools/sweep_commands.h"
#include "tools/sweep_names.h"
#include "traces/run_report.h"

namespace stepsim::tools {
namespace {

Status ParseNumbers(const std::string& flag, const std::vector<std::string>& items,
                    std::vector<int64_t>* out) {
  for (const std::string& item : items) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size()) {
      return Status::Invalid(flag + ": \"" + item + "\" is not a whole number");
    }
    out->push_back(v);
  }
  return Status::Ok();
}

StatusOr<sim::FitSpace> ParseSpace(const FitArgs& args) {
  sim::FitSpace space;
  space.gpus = args.gpus;
  space.global_batch = args.global_batch;
  space.top = args.top;
  if (!(args.headroom_gib >= 0 && args.headroom_gib <= 1 << 20)) {
    return Status::Invalid("--headroom: must be between 0 and 1048576 GiB");
  }
  space.headroom_bytes = std::llround(args.headroom_gib * static_cast<double>(int64_t{1} << 30));
  for (const auto& [flag, items, values] :
       {std::tuple{"--pp", &args.pp, &space.pp}, {"--tp", &args.tp, &space.tp},
        {"--cp", &args.cp, &space.cp}, {"--ep", &args.ep, &space.ep},
        {"--etp", &args.etp, &space.etp}, {"--mbs", &args.mbs, &space.mbs},
        {"--vpp", &args.vpp, &space.vpp}, {"--zero", &args.zero, &space.zero}}) {
    if (Status s = ParseNumbers(flag, *items, values); !s.ok()) return s;
  }
  for (const std::string& name : args.schedules) {
    StatusOr<ScheduleKind> kind = ScheduleByName(name, "--schedules");
    if (!kind.ok()) return kind.status();
    space.schedules.push_back(*kind);
  }
  for (const std::string& name : args.recompute) {
    StatusOr<sim::RecomputeChoice> choice = RecomputeByName(name);
    if (!choice.ok()) return choice.status();
    space.recompute.push_back(*choice);
  }
  return space;
}

// The fit's command line for the Slurm shards: absolute paths, the space
// as given, no outputs, shards or -j.
std::vector<std::string> FitCommand(const FitArgs& args) {
  std::vector<std::string> command = {SelfPath(), "fit",
                                      std::filesystem::absolute(args.scenario.path).string()};
  for (const std::string& set : args.scenario.sets) command.push_back("--set=" + set);
  command.push_back("--gpus=" + std::to_string(args.gpus));
  if (args.global_batch > 0) command.push_back("--global-batch=" + std::to_string(args.global_batch));
  if (args.headroom_gib > 0) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "--headroom=%.17g", args.headroom_gib);
    command.push_back(buffer);
  }
  command.push_back("--top=" + std::to_string(args.top));
  for (const auto& [flag, items] :
       {std::pair{"--pp", &args.pp}, {"--tp", &args.tp}, {"--cp", &args.cp},
        {"--ep", &args.ep}, {"--etp", &args.etp}, {"--mbs", &args.mbs},
        {"--vpp", &args.vpp}, {"--zero", &args.zero}, {"--schedules", &args.schedules},
        {"--recompute", &args.recompute}}) {
    if (items->empty()) continue;
    std::string list;
    for (const std::string& item : *items) list += (list.empty() ? "" : ",") + item;
    command.push_back(std::string(flag) + "=" + list);
  }
  return command;
}

}  // namespace

int RunFitCommand(const FitArgs& args) {
  StatusOr<Scenario> base = ReadScenario(args.scenario);
  if (!base.ok()) return Report(base.status());
  StatusOr<sim::Shard> shard = ParseShardArg(args.shard);
  if (!shard.ok()) return Report(shard.status());
  StatusOr<sim::FitSpace> space = ParseSpace(args);
  if (!space.ok()) return Report(space.status());
  if (!args.slurm.dir.empty()) {
    // Check the space here, not in N failing jobs.
    const Scenario fit_base = sim::FitBase(*base);
    StatusOr<graph::Config> config = graph::Resolve(fit_base);
    if (!config.ok()) return Report(config.status());
    StatusOr<sim::FitCandidates> candidates = sim::EnumerateFit(fit_base, *config, *space);
    if (!candidates.ok()) return Report(candidates.status());
    const int64_t total = static_cast<int64_t>(candidates->candidates.size());
    if (args.slurm.shards > total) {
      return Report(Status::Invalid("--shards: " + std::to_string(args.slurm.shards) +
                                    " shards for a search of " + std::to_string(total) +
                                    " candidates"));
    }
    return WriteSlurm(args.slurm, FitCommand(args));
  }
  // Past the quick bounds, a fit stops once the K fastest are settled:
  // how many it bounds in full and simulates is known only at the end.
  ProgressBar bounds("fit: bounds"), profiles("fit: profile bounds", ProgressBar::kOpen),
      simulating("fit: simulating", ProgressBar::kOpen);
  sim::FitOptions options;
  options.jobs = JobsOrCores(args.jobs);
  options.shard = *shard;
  options.context = ScenarioContext(args.scenario);
  options.progress = [&](const std::string& phase, int64_t done, int64_t total) {
    (phase == "bounds" ? bounds : phase == "profiles" ? profiles : simulating).Update(done, total);
  };
  options.timing_reporter = [](const graph::Config& c, const sim::SimResult& result) {
    return StatusOr<RunReport>(traces::BuildRunReport(c, result));
  };
  StatusOr<SweepReport> report = sim::RunFit(*base, *space, traces::ReportRun, options);
  if (!report.ok()) return Report(report.status());
  SearchOutputs outputs = args.outputs;
  if (outputs.top < 0) outputs.top = space->top;
  const std::string title =
      base->name() + ": fit on " + std::to_string(space->gpus) + " GPUs, " +
      std::to_string(report->total()) + " candidates" +
      (shard->whole() ? "" : ", shard " + sim::ShardName(*shard));
  if (int code = WriteSearchOutputs(*report, outputs, title); code != kExitOk) return code;
  return SearchExitCode(*report);
}

}  // namespace stepsim::tools
