// stepsim compare: one simulation per schedule, each in a child process
// (SimGrid allows one engine per process), reports gathered over a pipe.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>

#include "graph/names.h"
#include "sim/engine.h"
#include "sim/schedule.h"
#include "tools/commands.h"
#include "traces/format.h"
#include "traces/json.h"
#include "traces/run_report.h"
#include "traces/table.h"

namespace stepsim::tools {
namespace {

// Runs one simulation in a child; fills `entry`.
void SimulateInChild(const graph::Config& config, CompareEntry* entry) {
  int fds[2];
  if (pipe(fds) != 0) {
    entry->set_error("cannot create a pipe");
    return;
  }
  std::cout.flush();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    entry->set_error("cannot fork");
    close(fds[0]);
    close(fds[1]);
    return;
  }
  if (pid == 0) {
    close(fds[0]);
    const graph::Config& c = config;
    std::string payload;
    char code = 0;
    StatusOr<sim::Schedule> schedule = sim::BuildSchedule(c);
    if (!schedule.ok()) {
      code = 1;
      payload = schedule.status().message();
    } else {
      StatusOr<sim::SimResult> result = sim::Simulate(c, *schedule, sim::SimOptions{});
      if (!result.ok()) {
        code = 1;
        payload = result.status().message();
      } else {
        traces::BuildRunReport(c, *result).SerializeToString(&payload);
      }
    }
    std::string message = std::string(1, code) + payload;
    size_t written = 0;
    while (written < message.size()) {
      const ssize_t n = write(fds[1], message.data() + written, message.size() - written);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  std::string data;
  char buffer[1 << 16];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) data.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (data.empty() || !WIFEXITED(status)) {
    entry->set_error("the simulation process died");
  } else if (data[0] != 0) {
    entry->set_error(data.substr(1));
  } else if (!entry->mutable_run()->ParseFromString(data.substr(1))) {
    entry->set_error("unreadable report from the simulation process");
  }
}

}  // namespace

int RunCompare(const ScenarioArgs& args, const std::vector<std::string>& schedules,
               const std::string& json) {
  std::vector<ScheduleKind> kinds;
  if (schedules.empty()) {
    kinds = {GPIPE, ONE_F_ONE_B, INTERLEAVED_ONE_F_ONE_B, ZB_H1, ZB_H2, DUALPIPE, DUALPIPE_V};
  }
  for (const std::string& name : schedules) {
    StatusOr<ScheduleKind> kind = graph::ParseEnumName<ScheduleKind>(name);
    if (!kind.ok()) return Report(Status::Invalid("--schedules: " + kind.status().message()));
    kinds.push_back(*kind);
  }
  // The scenario as the first schedule places it (its own kind may not fit).
  ScenarioArgs first = args;
  first.sets.push_back("schedule.kind=" + ScheduleKind_Name(kinds.front()));
  StatusOr<graph::Config> config = LoadConfig(first);
  if (!config.ok()) {
    config = LoadConfig(args);
    if (!config.ok()) return Report(config.status());
  }
  CompareReport report;
  report.set_scenario(config->name);
  for (ScheduleKind kind : kinds) {
    CompareEntry* entry = report.add_entries();
    entry->set_schedule(ScheduleKind_Name(kind));
    // Resolved again: the schedule decides where stages run (DualPipe).
    ScenarioArgs with_kind = args;
    with_kind.sets.push_back("schedule.kind=" + ScheduleKind_Name(kind));
    StatusOr<graph::Config> resolved = LoadConfig(with_kind);
    if (!resolved.ok()) {
      entry->set_error(resolved.status().message());
      continue;
    }
    SimulateInChild(*resolved, entry);
  }
  if (json != "-") {
    traces::Table table({"<schedule", "step ms", "bubble", "max peak GiB", "fits",
                         "<peak GiB by rank"});
    for (const CompareEntry& e : report.entries()) {
      if (!e.error().empty()) {
        table.AddRow({e.schedule(), "-", "-", "-", "-",
                      "cannot run: " + e.error().substr(0, e.error().find('\n'))});
        continue;
      }
      const RunReport& r = e.run();
      double bubble = 0;
      int64_t max_peak = 0;
      bool fits = true;
      std::string peaks;
      for (const RankReport& k : r.ranks()) {
        bubble += k.bubble_fraction() / r.ranks_size();
        max_peak = std::max(max_peak, k.peak_bytes());
        fits = fits && k.fits();
        peaks += (peaks.empty() ? "" : " ") + traces::Gib(k.peak_bytes());
      }
      table.AddRow({e.schedule(), traces::Fixed(r.step_time_us() / 1000, 3),
                    traces::Fixed(100 * bubble, 1) + "%", traces::Gib(max_peak), fits ? "yes" : "NO",
                    peaks});
    }
    std::cout << config->model.name << " (" << config->name << "): PP" << config->parallel.pp
              << ", " << config->batch.microbatches << " micro-batches\n\n"
              << table.Render()
              << "(GiB = 2^30 bytes; bubble: mean over ranks of idle time before the last "
                 "step ends)\n";
  }
  if (!json.empty()) {
    Status written = WriteOutput(json, traces::ToJson(report));
    if (!written.ok()) return Report(written);
  }
  for (const CompareEntry& e : report.entries()) {
    if (e.error().empty()) return kExitOk;
  }
  std::cerr << "stepsim: no schedule could run this scenario\n";
  return kExitFailed;
}

}  // namespace stepsim::tools
