// stepsim plot: simulates the scenario, writes what tools/plot_memory.py
// draws from (the CSV timeline, the steps of each rank, the report) into a
// temporary folder, runs it with Debian's /usr/bin/python3 (matplotlib,
// pandas), and moves the figure into place only once it is complete.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <vector>

#include "sim/engine.h"
#include "sim/memory_stream.h"
#include "tools/commands.h"
#include "tools/output_plan.h"
#include "traces/json.h"
#include "traces/run_report.h"
#include "traces/text_writer.h"
#include "traces/timeline_csv.h"

namespace stepsim::tools {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPython = "/usr/bin/python3";

// "0,1,15" -> ranks of a `pp`-rank pipeline; empty: every rank up to 4, else
// the first, the one with the highest peak and the last.
StatusOr<std::vector<int64_t>> ParseRanks(const std::string& text, const RunReport& report) {
  const int64_t pp = report.ranks_size();
  std::vector<int64_t> ranks;
  if (text.empty()) {
    int64_t highest = 0;
    for (const RankReport& r : report.ranks()) {
      if (r.peak_bytes() > report.ranks(static_cast<int>(highest)).peak_bytes()) {
        highest = r.pp_rank();
      }
    }
    ranks = pp <= 4 ? std::vector<int64_t>{} : std::vector<int64_t>{0, highest, pp - 1};
    if (pp <= 4) {
      for (int64_t r = 0; r < pp; ++r) ranks.push_back(r);
    }
  } else {
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ',');) {
      size_t used = 0;
      int64_t r = -1;
      try {
        r = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != item.size() || r < 0 || r >= pp) {
        return Status::Invalid("--ranks: \"" + item + "\" is not a pipeline rank (0.." +
                               std::to_string(pp - 1) + ")");
      }
      ranks.push_back(r);
    }
    if (ranks.empty()) return Status::Invalid("--ranks: no rank given");
  }
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  return ranks;
}

// rank,step,kind,start_us,end_us for every step every rank ran, and its
// gradient reduction (kind DP), its optimizer step (kind OPT) and the
// weights' all-gather after it (kind AG).
std::string StepsCsv(const sim::SimResult& result) {
  std::ostringstream out;
  {
    traces::TextWriter w(out);
    w << "rank,step,kind,start_us,end_us\n";
    for (const sim::RankRun& run : result.ranks) {
      for (const sim::StepRecord& r : run.ledger.steps()) {
        const char* kind = r.step.kind == sim::StepKind::kForward    ? "F"
                           : r.step.kind == sim::StepKind::kBackward ? "B"
                           : r.step.kind == sim::StepKind::kWeight   ? "W"
                                                                     : "BW";
        w << run.rank << ',' << sim::StepName(r.step, r.chunks) << ',' << kind << ',';
        w.Micros(std::llround(r.start * 1e9)) << ',';
        w.Micros(std::llround(r.End() * 1e9)) << '\n';
      }
      if (run.grad_sync_seconds > 0) {
        w << run.rank << ",DP,DP,";
        w.Micros(std::llround(run.compute_end * 1e9)) << ',';
        w.Micros(std::llround((run.compute_end + run.grad_sync_seconds) * 1e9)) << '\n';
      }
      if (run.optimizer_seconds > 0) {
        w << run.rank << ",OPT,OPT,";
        w.Micros(std::llround(run.optimizer_step * 1e9)) << ',';
        w.Micros(std::llround((run.optimizer_step + run.optimizer_seconds) * 1e9)) << '\n';
      }
      if (run.param_gather_seconds > 0) {
        const double start = run.optimizer_step + run.optimizer_seconds;
        w << run.rank << ",AG,AG,";
        w.Micros(std::llround(start * 1e9)) << ',';
        w.Micros(std::llround((start + run.param_gather_seconds) * 1e9)) << '\n';
      }
    }
  }
  return out.str();
}

// Runs `argv` and returns its standard output; its standard error goes to
// ours. kFailed if it cannot run or exits non-zero.
StatusOr<std::string> Run(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe(fds) != 0) return Status::Failed("plot: cannot create a pipe");
  std::cout.flush();
  const pid_t pid = fork();
  if (pid < 0) return Status::Failed("plot: cannot start " + argv[0]);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) out.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) {
    return Status::Failed("plot: cannot run " + argv[0] + " " + argv[1] +
                          " (tools/setup.sh installs python3-matplotlib and python3-pandas)");
  }
  if (WEXITSTATUS(status) != 0) return Status::Failed("plot: " + argv[1] + " failed");
  return out;
}

}  // namespace

int RunPlot(const ScenarioArgs& args, const std::string& ranks_text, const std::string& out) {
  const std::string ext = fs::path(out).extension().string();
  if (ext != ".png" && ext != ".svg") {
    return Report(Status::Invalid("-o: " + out + " must end in .png or .svg"));
  }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const fs::path script = self.parent_path() / "plot_memory.py";
  if (ec || !fs::exists(script)) {
    return Report(Status::Failed("plot: " + script.string() + " is missing (build stepsim)"));
  }
  StatusOr<LoadedScenario> loaded = LoadScenario(args);
  if (!loaded.ok()) return Report(loaded.status());
  PrintNotes(loaded->notes);
  const graph::Config& config = loaded->config;
  OutputPlan plan;
  for (const std::string& input : loaded->inputs) plan.AddInput(input);
  plan.AddOutput("-o", out);
  if (Status s = plan.Prepare(); !s.ok()) return Report(s);
  bool from_file = false;
  StatusOr<sim::Schedule> schedule = ResolveSchedule(config, args, "", &from_file);
  if (!schedule.ok()) return Report(loaded->places.Locate(schedule.status()));
  sim::SimOptions options;
  options.schedule_from_file = from_file;
  StatusOr<sim::SimResult> result = sim::Simulate(config, *schedule, options);
  if (!result.ok()) return Report(loaded->places.Locate(result.status()));
  StatusOr<std::vector<sim::AllocatorRun>> allocators =
      sim::ReplayAllocators(config, *result, -1, /*threads=*/0);
  if (!allocators.ok()) return Report(allocators.status());
  const RunReport built = traces::BuildRunReport(config, *result, &*allocators);
  const RunReport* report = &built;
  StatusOr<std::vector<int64_t>> ranks = ParseRanks(ranks_text, *report);
  if (!ranks.ok()) return Report(ranks.status());

  char dir_template[] = "/tmp/stepsim_plot_XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return Report(Status::Failed("plot: no temporary folder"));
  const fs::path dir = dir_template;
  // Coarse enough for a figure, fine enough to keep each window's highest
  // point, so the peak is drawn where it is.
  const double resolution_us = report->step_time_us() / 4000;
  auto write = [&](const std::string& name, const std::function<void(std::ostream&)>& body) {
    std::ofstream file(dir / name, std::ios::binary);
    body(file);
    file.close();
    return file ? Status::Ok() : Status::Failed("plot: cannot write " + (dir / name).string());
  };
  Status status = write("timeline.csv", [&](std::ostream& o) {
    traces::WriteTimelineCsv(*result, resolution_us, o, *allocators);
  });
  if (status.ok()) status = write("steps.csv", [&](std::ostream& o) { o << StepsCsv(*result); });
  if (status.ok()) {
    status = write("report.json", [&](std::ostream& o) { o << traces::ToJson(*report); });
  }
  std::string list;
  for (int64_t r : *ranks) list += (list.empty() ? "" : ",") + std::to_string(r);
  const fs::path figure = dir / ("figure" + ext);
  StatusOr<std::string> drawn = Status::Failed("plot: not drawn");
  if (status.ok()) {
    drawn = Run({kPython, script.string(), "--timeline", (dir / "timeline.csv").string(),
                 "--steps", (dir / "steps.csv").string(), "--report",
                 (dir / "report.json").string(), "--ranks", list, "--out", figure.string()});
  }
  // The figure goes into place through the plan: complete, or not at all.
  if (drawn.ok()) {
    status = plan.Stream("-o", [&](std::ostream& o) {
      std::ifstream in(figure, std::ios::binary);
      o << in.rdbuf();
    });
    if (status.ok()) status = plan.Commit();
  }
  fs::remove_all(dir, ec);
  if (!status.ok()) return Report(status);
  if (!drawn.ok()) return Report(drawn.status());
  std::cout << out << ": memory of rank" << (ranks->size() > 1 ? "s " : " ") << list << "\n"
            << *drawn;
  return kExitOk;
}

}  // namespace stepsim::tools
