// stepsim_bench: the speed and memory figures of stepsim, measured on whole
// processes (start-up included, peak RSS as the OS reports it), and the
// honest floor: stepsim_floor, a bare SimGrid program running the same plan
// (same actors, sleeps, mailboxes, detached sends and waited receives) with
// no memory model and no outputs.
//
//   cmake --build build --target stepsim_bench stepsim_floor
//   build/stepsim_bench [--runs N] [--callgrind-max-m M] [--no-callgrind] [--allocator-only]
//
// Each figure is the best (least CPU) of N runs of `build/stepsim ...` or
// `build/stepsim_floor`; CPU is user + system time of the child. Where
// valgrind is installed, each case also runs once under callgrind for its
// instruction count, in total and inside simgrid::s4u::Engine::run (the
// SimGrid part: the simulation loop with the actors' own code), up to
// --callgrind-max-m micro-batches (callgrind is ~50x slower).
//
// Sections: start-up; DeepSeek-V3 PP16 over micro-batches with a linear fit
// of the instructions; PP 4..64 at 128 micro-batches; the trace and CSV
// write rates; check-trace's rate and memory on a large trace; the caching
// allocator's cost (run with allocator.kind CACHING against NONE).
//
// Wall-clock time and the date are what a benchmark reports; neither ever
// reaches stepsim's own outputs.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "sim/plan.h"
#include "sim/schedule.h"
#include "sim/step_profile.h"
#include "tools/bench_floor.h"
#include "tools/cli_io.h"

namespace {

namespace fs = std::filesystem;
using stepsim::tools::ScenarioArgs;

struct Options {
  int runs = 3;
  int64_t callgrind_max_m = 4096;
  bool callgrind = true;
  bool allocator_only = false;  // only the allocator section
};

struct Process {
  bool ok = false;
  double cpu = 0;      // seconds, user + system
  double wall = 0;     // seconds, from fork to exit
  double rss_mib = 0;  // peak resident set
  std::string out;     // standard output
};

// Runs `argv` with stdout captured in `out_file`; stderr goes to /dev/null.
Process RunOnce(const std::vector<std::string>& argv, const std::string& out_file) {
  std::fflush(nullptr);
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    if (!std::freopen(out_file.c_str(), "w", stdout) || !std::freopen("/dev/null", "w", stderr)) {
      _exit(127);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  Process p;
  int status = 0;
  rusage usage{};
  if (pid < 0 || wait4(pid, &status, 0, &usage) != pid) return p;
  p.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  p.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  p.cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
          1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  p.rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
  std::ifstream in(out_file);
  std::ostringstream text;
  text << in.rdbuf();
  p.out = text.str();
  return p;
}

struct Bench {
  Options options;
  std::string stepsim, floor, valgrind, source, tmp;

  Process Best(const std::vector<std::string>& argv) const {
    Process best;
    for (int i = 0; i < options.runs; ++i) {
      Process p = RunOnce(argv, tmp + "/out");
      if (!p.ok) return p;
      const double wall = best.ok ? std::min(best.wall, p.wall) : p.wall;
      if (!best.ok || p.cpu < best.cpu) best = p;
      best.wall = wall;  // the best of each, CPU and wall
    }
    return best;
  }

  // Instructions in total and inside Engine::run (0 when not inside).
  struct Count {
    double total = 0, simgrid = 0;
  };
  std::optional<Count> Instructions(const std::vector<std::string>& argv) const {
    if (valgrind.empty()) return std::nullopt;
    for (const auto& entry : fs::directory_iterator(tmp)) {
      if (entry.path().filename().string().starts_with("cg.")) fs::remove(entry.path());
    }
    const std::string run = "simgrid::s4u::Engine::run() const";
    std::vector<std::string> cmd = {valgrind, "--tool=callgrind",
                                    "--callgrind-out-file=" + tmp + "/cg.%p",
                                    "--dump-before=" + run, "--dump-after=" + run};
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    if (!RunOnce(cmd, tmp + "/out").ok) return std::nullopt;
    // Parts: 1 before the run, 2 inside it, 3 after it (no run: part 1 only).
    std::vector<std::pair<int, double>> parts;
    for (const auto& entry : fs::directory_iterator(tmp)) {
      if (!entry.path().filename().string().starts_with("cg.")) continue;
      std::ifstream in(entry.path());
      int part = 0;
      for (std::string line; std::getline(in, line);) {
        if (line.starts_with("part:")) part = std::atoi(line.c_str() + 5);
        if (line.starts_with("summary:")) {
          parts.push_back({part, std::strtod(line.c_str() + 8, nullptr)});
          break;
        }
      }
    }
    Count c;
    for (const auto& [part, ir] : parts) {
      c.total += ir;
      if (part == 2) c.simgrid = ir;  // dumped after Engine::run: what ran inside it
    }
    return c;
  }

  std::vector<std::string> Stepsim(const std::string& command, const std::string& scenario,
                                   const std::vector<std::string>& sets,
                                   const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv = {stepsim, command, source + "/scenarios/" + scenario};
    for (const std::string& s : sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
};

// The plan of a V3 run, flattened for stepsim_floor (tools/bench_floor.h).
bool WriteFloorWorkload(const ScenarioArgs& args, const std::string& path) {
  stepsim::StatusOr<stepsim::graph::Config> config = stepsim::tools::LoadConfig(args);
  if (!config.ok()) return false;
  stepsim::StatusOr<stepsim::sim::Schedule> schedule = stepsim::sim::BuildSchedule(*config);
  if (!schedule.ok()) return false;
  if (schedule->routes.empty()) schedule->routes = config->layout.routes;
  const stepsim::sim::CostModel cost(*config);
  auto stages = stepsim::sim::BuildStageProfiles(*config, cost);
  if (!stages.ok()) return false;
  auto plan = stepsim::sim::BuildPlan(*config, *schedule, *stages, cost);
  if (!plan.ok()) return false;
  std::ofstream out(path, std::ios::binary);
  auto put = [&](const auto& value) {
    out.write(reinterpret_cast<const char*>(&value), sizeof value);
  };
  stepsim::tools::FloorHeader header;
  header.ranks = static_cast<int64_t>(plan->ranks.size());
  header.channels = static_cast<int64_t>(plan->wire_receiver.size());
  header.links = static_cast<int64_t>(plan->links.size());
  header.fixed_p2p = plan->fixed_p2p;
  header.host_speed = plan->host_speed;
  for (int64_t receiver : plan->wire_receiver) header.wire_channels += receiver >= 0;
  put(header);
  for (const auto& link : plan->links) put(link);
  for (int64_t ch = 0; ch < header.channels; ++ch) {
    if (plan->wire_receiver[ch] < 0) continue;
    const std::string name = plan->ChannelName(ch);
    put(stepsim::tools::FloorChannel{ch, plan->wire_receiver[ch],
                                     static_cast<int64_t>(name.size())});
    out.write(name.data(), static_cast<std::streamsize>(name.size()));
  }
  for (int64_t r = 0; r < header.ranks; ++r) {
    const stepsim::sim::RankPlan& rank = plan->ranks[r];
    put(stepsim::tools::FloorRank{static_cast<int64_t>(rank.steps.size()),
                                  rank.grad_sync_seconds + rank.optimizer_seconds +
                                      rank.param_gather_seconds});
    for (const auto& s : rank.steps) {
      stepsim::tools::FloorStep step;
      step.input = s.input >= 0 && s.input_from != r ? s.input : -1;
      step.output = s.output >= 0 && s.output_to != r ? s.output : -1;
      step.duration = s.duration;
      step.bytes = static_cast<double>(s.output_bytes);
      put(step);
    }
  }
  return static_cast<bool>(out);
}

std::string Num(double v, const char* format) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

std::string Giga(const std::optional<Bench::Count>& c, bool simgrid = false) {
  return c ? Num((simgrid ? c->simgrid : c->total) / 1e9, "%.3f") : "-";
}

// One line of a scaling table: stepsim and its floor on V3.
struct Point {
  int64_t x = 0;
  Process run, floor;
  std::optional<Bench::Count> run_ir, floor_ir;
  bool same_end = false;
};

Point Measure(const Bench& b, const std::vector<std::string>& sets, int64_t m) {
  Point p;
  const std::vector<std::string> run =
      b.Stepsim("run", "deepseek_v3.textproto", sets, {"--report", b.tmp + "/report.json"});
  p.run = b.Best(run);
  ScenarioArgs args{b.source + "/scenarios/deepseek_v3.textproto", sets};
  const std::string workload = b.tmp + "/floor.bin";
  if (!WriteFloorWorkload(args, workload)) return p;
  p.floor = b.Best({b.floor, workload});
  if (b.options.callgrind && m <= b.options.callgrind_max_m) {
    p.run_ir = b.Instructions(run);
    p.floor_ir = b.Instructions({b.floor, workload});
  }
  // The floor simulates the same step: it must end when stepsim's step does.
  std::ifstream in(b.tmp + "/report.json");
  std::ostringstream report;
  report << in.rdbuf();
  const std::string text = report.str();
  const size_t at = text.find("\"step_time_us\":");
  if (at != std::string::npos && p.floor.ok) {
    const double step_us = std::strtod(text.c_str() + at + 15, nullptr);
    const double floor_us = std::strtod(p.floor.out.c_str(), nullptr) * 1e6;
    p.same_end = std::fabs(step_us - floor_us) <= 1e-9 * std::max(1.0, step_us) + 1e-3;
  }
  return p;
}

void PrintPoints(const char* label, const std::vector<Point>& points) {
  std::printf("%-7s %8s %8s %9s %9s %8s %8s %9s %9s %7s %6s %s\n", label, "CPU s", "RSS MiB",
              "G instr", "SimGrid G", "floor s", "MiB", "floor G", "floor SG", "total x", "SG x",
              "same end");
  for (const Point& p : points) {
    const bool ir = p.run_ir && p.floor_ir;
    const std::string total_x = ir ? Num(p.run_ir->total / p.floor_ir->total, "%.2f")
                                   : Num(p.run.cpu / p.floor.cpu, "%.2f") + "*";
    const std::string sg_x = ir ? Num(p.run_ir->simgrid / p.floor_ir->simgrid, "%.2f") : "-";
    std::printf("%-7lld %8.3f %8.1f %9s %9s %8.3f %8.1f %9s %9s %7s %6s %s\n",
                static_cast<long long>(p.x), p.run.cpu, p.run.rss_mib, Giga(p.run_ir).c_str(),
                Giga(p.run_ir, true).c_str(), p.floor.cpu, p.floor.rss_mib,
                Giga(p.floor_ir).c_str(), Giga(p.floor_ir, true).c_str(), total_x.c_str(),
                sg_x.c_str(), !p.run.ok ? "stepsim failed" : (p.same_end ? "yes" : "NO"));
  }
}

// Least squares of y = a + b x over the points with x <= fit_max; prints
// every point's excess over the line.
void PrintFit(const std::vector<Point>& points, int64_t fit_max, const char* unit) {
  std::vector<std::pair<double, double>> xy;
  for (const Point& p : points) {
    if (p.run_ir && p.x <= fit_max) xy.push_back({static_cast<double>(p.x), p.run_ir->total});
  }
  if (xy.size() < 2) return;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [x, y] : xy) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double n = static_cast<double>(xy.size());
  const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const double intercept = (sy - slope * sx) / n;
  std::printf("linear fit over %s <= %lld: %.1f M + %.3f M x %s instructions; measured vs fit:",
              unit, static_cast<long long>(fit_max), intercept / 1e6, slope / 1e6, unit);
  for (const Point& p : points) {
    if (!p.run_ir) continue;
    const double fit = intercept + slope * static_cast<double>(p.x);
    std::printf(" %lld %+.1f%%", static_cast<long long>(p.x), 100 * (p.run_ir->total / fit - 1));
  }
  std::printf("\n");
}

std::string Machine() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string model = "unknown CPU";
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.starts_with("model name")) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return model + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores, " +
         Num(static_cast<double>(pages) * static_cast<double>(page) / (1 << 30), "%.0f") + " GiB";
}

// The caching allocator's cost: whole `run` processes of DeepSeek-V3 under
// 1F1B with allocator.kind CACHING and NONE (the scenario without its own
// allocator settings, which only CACHING takes), and the shipped V3 run
// (DualPipe, its own allocator settings) against the same with NONE. Ranks
// replay on every core, so wall time gains on CPU time. Goal (issue 12):
// CACHING at most 2x NONE, in wall and in CPU time.
void PrintAllocatorRows(const Bench& b) {
  std::printf("\ncaching allocator (V3, run with allocator.kind CACHING vs NONE; best of %d):\n",
              b.options.runs);
  std::printf("%-13s %8s %8s %6s %8s %8s %6s %8s %8s %6s\n", "case", "wall s", "NONE s", "x",
              "CPU s", "NONE s", "x", "G instr", "NONE G", "x");
  std::ifstream in(b.source + "/scenarios/deepseek_v3.textproto");
  const std::string scenario = b.tmp + "/v3_default_allocator.textproto";
  {
    std::ofstream out(scenario);
    for (std::string line; std::getline(in, line);) {
      if (!line.starts_with("allocator {")) out << line << '\n';
    }
  }
  auto row = [&](const std::string& name, int64_t m, const std::string& path,
                 std::vector<std::string> sets) {
    Process p[2];
    std::optional<Bench::Count> ir[2];
    for (int k = 0; k < 2; ++k) {
      std::vector<std::string> argv = {b.stepsim, "run", path};
      for (const std::string& s : sets) argv.insert(argv.end(), {"--set", s});
      if (k == 1) argv.insert(argv.end(), {"--set", "allocator.kind=NONE"});
      p[k] = b.Best(argv);
      if (b.options.callgrind && m <= b.options.callgrind_max_m) ir[k] = b.Instructions(argv);
    }
    const std::string ir_x = ir[0] && ir[1] ? Num(ir[0]->total / ir[1]->total, "%.2f") : "-";
    std::printf("%-13s %8.3f %8.3f %6.2f %8.3f %8.3f %6.2f %8s %8s %6s%s\n", name.c_str(),
                p[0].wall, p[1].wall, p[0].wall / std::max(1e-9, p[1].wall), p[0].cpu, p[1].cpu,
                p[0].cpu / std::max(1e-9, p[1].cpu), Giga(ir[0]).c_str(), Giga(ir[1]).c_str(),
                ir_x.c_str(), p[0].ok && p[1].ok ? "" : "  FAILED");
  };
  row("shipped V3", 120, b.source + "/scenarios/deepseek_v3.textproto", {});
  for (int64_t m : {16, 128, 1024, 4096}) {
    row("1F1B m=" + std::to_string(m), m, scenario,
        {"schedule.kind=ONE_F_ONE_B", "batch.num_microbatches=" + std::to_string(m)});
  }
}

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      b.options.runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--callgrind-max-m" && i + 1 < argc) {
      b.options.callgrind_max_m = std::atoll(argv[++i]);
    } else if (a == "--no-callgrind") {
      b.options.callgrind = false;
    } else if (a == "--allocator-only") {
      b.options.allocator_only = true;
    } else {
      std::fprintf(stderr,
                   "usage: stepsim_bench [--runs N] [--callgrind-max-m M] [--no-callgrind] "
                   "[--allocator-only]\n");
      return 2;
    }
  }
  const fs::path self = fs::canonical("/proc/self/exe").parent_path();
  b.stepsim = (self / "stepsim").string();
  b.floor = (self / "stepsim_floor").string();
  b.source = STEPSIM_SOURCE_DIR;
  if (!fs::exists(b.stepsim) || !fs::exists(b.floor)) {
    std::fprintf(stderr, "stepsim_bench: build stepsim and stepsim_floor first\n");
    return 2;
  }
  for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
    if (b.options.callgrind && fs::exists(fs::path(dir) / "valgrind")) {
      b.valgrind = (fs::path(dir) / "valgrind").string();
      break;
    }
  }
  char dir_template[] = "/tmp/stepsim_bench_XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return 1;
  b.tmp = dir_template;
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::printf("stepsim_bench %s on %s; best of %d runs; instructions: %s\n", date,
              Machine().c_str(), b.options.runs, b.valgrind.empty() ? "no valgrind" : "callgrind");
  if (b.options.allocator_only) {
    PrintAllocatorRows(b);
    fs::remove_all(b.tmp);
    return 0;
  }

  // Start-up.
  {
    std::printf("\nstart-up (whole processes)      CPU ms  RSS MiB  M instr\n");
    const std::string empty = b.tmp + "/empty.bin";
    {
      std::ofstream out(empty, std::ios::binary);
      const stepsim::tools::FloorHeader header;
      out.write(reinterpret_cast<const char*>(&header), sizeof header);
    }
    const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
        {"stepsim params pp4_tiny", b.Stepsim("params", "pp4_tiny.textproto", {})},
        {"stepsim run V3 m=128",
         b.Stepsim("run", "deepseek_v3.textproto", {"batch.num_microbatches=128"})},
        {"bare SimGrid (empty floor)", {b.floor, empty}},
    };
    for (const auto& [label, argv_case] : cases) {
      const Process p = b.Best(argv_case);
      const auto ir = b.Instructions(argv_case);
      std::printf("  %-28s %7.1f %8.1f %8s%s\n", label.c_str(), p.cpu * 1e3, p.rss_mib,
                  ir ? Num(ir->total / 1e6, "%.1f").c_str() : "-", p.ok ? "" : "  FAILED");
    }
  }

  // Micro-batches.
  {
    std::printf("\nDeepSeek-V3 PP16 (scenarios/deepseek_v3.textproto), micro-batches m:\n");
    std::vector<Point> points;
    for (int64_t m : {16, 128, 512, 1024, 2048, 4096, 8192, 16384}) {
      Point p = Measure(b, {"batch.num_microbatches=" + std::to_string(m)}, m);
      p.x = m;
      points.push_back(std::move(p));
    }
    PrintPoints("m", points);
    PrintFit(points, 1024, "m");
  }

  // Pipeline stages.
  {
    std::printf(
        "\nDeepSeek-V3, 128 micro-batches, pipeline stages PP (even layouts; PP64: "
        "E|(t|)*61m|L):\n");
    std::vector<Point> points;
    for (int64_t pp : {4, 8, 16, 32, 64}) {
      const std::string layout = pp == 64 ? "E|(t|)*61m|L" : "";
      Point p = Measure(b,
                        {"parallel.pp=" + std::to_string(pp), "parallel.layout=" + layout,
                         "batch.num_microbatches=128"},
                        128);
      p.x = pp;
      points.push_back(std::move(p));
    }
    PrintPoints("PP", points);
    PrintFit(points, 16, "PP");
  }

  // Writers and the checker.
  {
    std::printf("\nwriters (V3 PP16 m=128; rate = bytes / extra CPU over the report-only run)\n");
    const std::vector<std::string> sets = {"batch.num_microbatches=128"};
    const Process base = b.Best(b.Stepsim("run", "deepseek_v3.textproto", sets));
    for (const auto& [label, flag, file] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"Chrome trace", "--chrome-trace", "trace.json"},
             {"CSV timeline", "--timeline", "timeline.csv"}}) {
      const std::string path = b.tmp + "/" + file;
      const Process p = b.Best(b.Stepsim("run", "deepseek_v3.textproto", sets, {flag, path}));
      if (!p.ok || !base.ok) {
        std::printf("  %-13s FAILED\n", label.c_str());
        continue;
      }
      const double mb = static_cast<double>(fs::file_size(path)) / 1e6;
      std::printf("  %-13s %8.1f MB  %7.3f s  %7.0f MB/s  RSS %6.1f MiB\n", label.c_str(), mb,
                  p.cpu - base.cpu, mb / std::max(1e-9, p.cpu - base.cpu), p.rss_mib);
      fs::remove(path);
    }
    const std::string big = b.tmp + "/big.json";
    const Process write =
        RunOnce(b.Stepsim("run", "deepseek_v3.textproto", {"batch.num_microbatches=512"},
                          {"--chrome-trace", big}),
                b.tmp + "/out");
    if (write.ok) {
      const double mb = static_cast<double>(fs::file_size(big)) / 1e6;
      const Process check = b.Best({b.stepsim, "check-trace", big});
      std::printf("  check-trace   %8.1f MB  %7.3f s  %7.0f MB/s  RSS %6.1f MiB%s\n", mb, check.cpu,
                  mb / std::max(1e-9, check.cpu), check.rss_mib, check.ok ? "" : "  (INVALID)");
      fs::remove(big);
    }
  }
  PrintAllocatorRows(b);
  std::printf(
      "\n(CPU: user + system of the whole process; G instr: callgrind, in total and "
      "inside Engine::run (SimGrid, with the actors' code); floor: stepsim_floor, bare "
      "SimGrid on the same plan; total x, SG x: stepsim over the floor in instructions "
      "(* in CPU time); same end: the floor's simulated step ends when stepsim's "
      "does)\n");
  fs::remove_all(b.tmp);
  return 0;
}
