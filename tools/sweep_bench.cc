// stepsim_sweep_bench: configurations per second of `stepsim sweep` on
// DeepSeek-V3 (scenarios/deepseek_v3.textproto), against starting one
// `stepsim run` process per configuration.
//
//   cmake --build build --target stepsim stepsim_sweep_bench && build/stepsim_sweep_bench [runs]
//
// Cases (each the best of `runs`):
//   shared:   5 schedules x 4 ZeRO stages x 10 routing imbalances at 32
//             micro-batches: 200 configurations, 30 stage-profile keys
//             (the schedules and ZeRO stages 0-1 of one imbalance share
//             its profiles)
//   shared-bare: `shared` with allocator.kind NONE, what the caching
//             allocator's replay costs
//   distinct: 200 routing imbalances, the shipped schedule (DualPipe, 120
//             micro-batches): 200 configurations, each its own key
//   zero:     50 routing imbalances x 4 ZeRO stages, the shipped schedule:
//             200 configurations, 150 keys (ZeRO 0 and 1 share one)
//   process:  the `zero` space's first 20 configurations, one
//             `stepsim run` process each
// Wall-clock time is what a benchmark measures; it never reaches stepsim's
// own outputs. The load average is printed: other work on the machine
// slows every wall-clock figure. CPU time (this process and every process
// it waited for) is printed too: CPU ms per configuration does not depend
// on the load, and cores * 1000 / it is what the cores could do alone.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "sim/process_pool.h"
#include "sim/sweep.h"
#include "tools/cli_io.h"
#include "tools/cpu_time.h"
#include "traces/run_report.h"

namespace {

using Clock = std::chrono::steady_clock;

// CPU seconds of this process and of the processes it has waited for.
double CpuSeconds() { return stepsim::tools::CpuSeconds(/*children=*/true); }

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string Imbalances(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%.2f", 1.0 + 0.01 * i);
    out += (i ? "," : "") + std::string(buffer);
  }
  return out;
}

struct Case {
  std::string name;
  std::vector<std::string> sets;
  std::vector<std::string> varies;
};

// Best wall time of `runs` sweeps (and the CPU time of that run); -1 on
// failure.
double TimeSweep(const Case& c, int jobs, int runs, int64_t* simulated, double* cpu) {
  stepsim::tools::ScenarioArgs args{std::string(STEPSIM_SOURCE_DIR) +
                                        "/scenarios/deepseek_v3.textproto",
                                    c.sets};
  stepsim::StatusOr<stepsim::Scenario> base = stepsim::tools::ReadScenario(args);
  if (!base.ok()) return -1;
  std::vector<stepsim::sim::Vary> varies;
  for (const std::string& v : c.varies) varies.push_back(*stepsim::sim::ParseVary(v));
  double best = -1;
  for (int r = 0; r < runs; ++r) {
    stepsim::sim::SweepOptions options;
    options.jobs = jobs;
    const auto start = Clock::now();
    const double cpu_start = CpuSeconds();
    stepsim::StatusOr<stepsim::SweepReport> report =
        stepsim::sim::RunSweep(*base, varies, stepsim::traces::ReportRun, options);
    const double s = Seconds(start);
    const double used = CpuSeconds() - cpu_start;
    if (!report.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name.c_str(), report.status().message().c_str());
      return -1;
    }
    *simulated = 0;
    for (const auto& row : report->configs()) *simulated += row.simulated() ? 1 : 0;
    if (best < 0 || s < best) *cpu = used;
    best = best < 0 ? s : std::min(best, s);
  }
  return best;
}

double TimeProcesses(int count, int runs, double* cpu) {
  double best = -1;
  for (int r = 0; r < runs; ++r) {
    const auto start = Clock::now();
    const double cpu_start = CpuSeconds();
    for (int i = 0; i < count; ++i) {
      char imbalance[64];
      std::snprintf(imbalance, sizeof imbalance, "conventions.routing_imbalance=%.2f",
                    1.0 + 0.01 * (i / 4));
      const std::string zero = "zero.stage=" + std::to_string(i % 4);
      const std::string scenario =
          std::string(STEPSIM_SOURCE_DIR) + "/scenarios/deepseek_v3.textproto";
      std::fflush(nullptr);
      const pid_t pid = fork();
      if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == nullptr) _exit(127);
        execl(STEPSIM_BINARY, "stepsim", "run", scenario.c_str(), "--set", imbalance, "--set",
              zero.c_str(), static_cast<char*>(nullptr));
        _exit(127);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    }
    const double s = Seconds(start);
    if (best < 0 || s < best) *cpu = CpuSeconds() - cpu_start;
    best = best < 0 ? s : std::min(best, s);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  const int cores = stepsim::sim::AvailableCores();
  double load = 0;
  {
    std::ifstream in("/proc/loadavg");
    in >> load;
  }
  std::printf("stepsim sweep on DeepSeek-V3, best of %d; %d cores; load average %.2f\n\n", runs,
              cores, load);
  std::printf("%-11s %8s %5s %9s %12s %14s %14s\n", "case", "configs", "-j", "wall s", "configs/s",
              "CPU ms/config", "cores alone/s");
  const std::vector<Case> cases = {
      {"shared",
       {"batch.num_microbatches=32"},
       {"schedule.kind=ONE_F_ONE_B,GPIPE,ZB_H1,ZB_H2,DUALPIPE", "zero.stage=0,1,2,3",
        "conventions.routing_imbalance=" + Imbalances(10)}},
      {"shared-bare",  // the same without the caching allocator's replay
       {"batch.num_microbatches=32", "allocator.kind=NONE"},
       {"schedule.kind=ONE_F_ONE_B,GPIPE,ZB_H1,ZB_H2,DUALPIPE", "zero.stage=0,1,2,3",
        "conventions.routing_imbalance=" + Imbalances(10)}},
      {"distinct", {}, {"conventions.routing_imbalance=" + Imbalances(200)}},
      {"zero",
       {},
       {"conventions.routing_imbalance=" + Imbalances(50), "zero.stage=0,1,2,3"}},
  };
  for (const Case& c : cases) {
    for (int jobs : {1, cores}) {
      if (jobs == 1 && cores == 1 && &c != &cases.front()) continue;
      int64_t simulated = 0;
      double cpu = 0;
      const double s = TimeSweep(c, jobs, runs, &simulated, &cpu);
      if (s < 0) return 1;
      const double per = 1000 * cpu / static_cast<double>(simulated);
      std::printf("%-11s %8lld %5d %9.3f %12.1f %14.2f %14.1f\n", c.name.c_str(),
                  static_cast<long long>(simulated), jobs, s, simulated / s, per,
                  jobs * 1000 / per);
    }
  }
  const int count = 20;
  double cpu = 0;
  const double s = TimeProcesses(count, runs, &cpu);
  if (s < 0) return 1;
  const double per = 1000 * cpu / count;
  std::printf("%-11s %8d %5s %9.3f %12.1f %14.2f %14.1f\n", "process", count, "1", s, count / s,
              per, 1000 / per);
  return 0;
}
