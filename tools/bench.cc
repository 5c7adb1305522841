// stepsim_bench: the speed and memory figures of stepsim's main job, and
// the same workload's floor, in one invocation.
//
// For DeepSeek-V3 (scenarios/deepseek_v3.textproto) at PP 8/16/32 and
// 64/128/256 micro-batches it runs the simulation (report only, then with a
// Chrome trace written to a temporary file) and a bare SimGrid program with
// the same actors, executions and transfers: the floor any SimGrid-based
// simulator pays. Every measurement runs in a child process (one SimGrid
// engine per process) and reports wall time and peak RSS.
//
//   cmake --build build --target stepsim_bench && build/stepsim_bench [runs]
//
// Wall-clock time is what a benchmark measures; it never reaches stepsim's
// own outputs.
#include <simgrid/s4u.hpp>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xbt/log.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "sim/engine.h"
#include "sim/schedule.h"
#include "tools/cli_io.h"
#include "traces/chrome_trace.h"
#include "traces/run_report.h"

namespace {

namespace sg4 = simgrid::s4u;
using stepsim::tools::ScenarioArgs;

struct Figures {
  double seconds = 0;
  double rss_mib = 0;
  double events = 0;  // memory events replayed, or trace bytes
  bool ok = false;
};

// Runs `work` in a child; the child reports its figures through a pipe.
template <typename Work>
Figures InChild(Work work) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Figures f;
    const auto start = std::chrono::steady_clock::now();
    f.events = work();
    f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    f.rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
    f.ok = f.events >= 0;
    if (write(fds[1], &f, sizeof f) != sizeof f) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  Figures f;
  if (read(fds[0], &f, sizeof f) != sizeof f) f.ok = false;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return f;
}

// The floor: pp actors, each sleeping once per step and sending one message
// per transfer to the next actor in a ring, with eager delivery.
double Floor(int64_t pp, const std::vector<int64_t>& steps, int64_t transfers_per_rank) {
  int argc = 1;
  char name[] = "floor";
  char* argv[] = {name, nullptr};
  sg4::Engine engine(&argc, argv);
  xbt_log_control_set("root.thresh:critical");
  xbt_log_control_set("root.app:file:/dev/null");
  engine.set_config("network/model:CM02");
  auto* zone = sg4::create_full_zone("z");
  std::vector<sg4::Host*> hosts;
  for (int64_t r = 0; r < pp; ++r) hosts.push_back(zone->create_host("h" + std::to_string(r), 1e15));
  for (int64_t r = 0; r < pp; ++r) {
    const int64_t q = (r + 1) % pp;
    if (q == r) continue;
    auto* link = zone->create_split_duplex_link("l" + std::to_string(r), 50e9)->set_latency(5e-6);
    link->seal();
    zone->add_route(hosts[r]->get_netpoint(), hosts[q]->get_netpoint(), nullptr, nullptr,
                    {sg4::LinkInRoute(link, sg4::LinkInRoute::Direction::UP)}, true);
  }
  zone->seal();
  static int payload = 0;
  std::vector<sg4::ActorPtr> actors;
  for (int64_t r = 0; r < pp; ++r) {
    actors.push_back(sg4::Actor::create("a" + std::to_string(r), hosts[r], [&, r] {
      sg4::Mailbox* out = sg4::Mailbox::by_name("m" + std::to_string((r + 1) % pp));
      sg4::Mailbox* in = sg4::Mailbox::by_name("m" + std::to_string(r));
      std::vector<sg4::CommPtr> sent;
      for (int64_t i = 0; i < steps[r]; ++i) {
        sg4::this_actor::sleep_for(1e-3);
        if (i < transfers_per_rank) sent.push_back(out->put_async(&payload, 4096));
      }
      for (int64_t i = 0; i < transfers_per_rank; ++i) in->get<int>();
      sg4::Comm::wait_all(sent);
    }));
  }
  for (int64_t r = 0; r < pp; ++r) sg4::Mailbox::by_name("m" + std::to_string(r))->set_receiver(actors[r]);
  engine.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  std::printf("stepsim_bench: DeepSeek-V3 (scenarios/deepseek_v3.textproto), best of %d runs, "
              "%ld cores\n",
              runs, sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("%-22s %9s %8s %12s %9s %8s %10s %9s %8s %7s\n", "case", "report s", "RSS MiB",
              "events/s", "trace s", "RSS MiB", "trace MB/s", "floor s", "ratio", "steps");
  const std::vector<std::pair<int64_t, int64_t>> cases = {
      {16, 64}, {16, 128}, {16, 256}, {8, 128}, {32, 128}};
  for (const auto& [pp, m] : cases) {
    ScenarioArgs args;
    args.path = std::string(STEPSIM_SOURCE_DIR) + "/scenarios/deepseek_v3.textproto";
    args.sets = {"parallel.pp=" + std::to_string(pp), "parallel.layout=",
                 "batch.num_microbatches=" + std::to_string(m)};
    stepsim::StatusOr<stepsim::graph::Config> config = stepsim::tools::LoadConfig(args);
    if (!config.ok()) {
      std::printf("PP%lld m=%lld: %s\n", static_cast<long long>(pp), static_cast<long long>(m),
                  config.status().message().c_str());
      continue;
    }
    stepsim::StatusOr<stepsim::sim::Schedule> schedule = stepsim::sim::BuildSchedule(*config);
    if (!schedule.ok()) continue;
    auto best = [&](auto work) {
      Figures b;
      for (int i = 0; i < runs; ++i) {
        Figures f = InChild(work);
        if (f.ok && (!b.ok || f.seconds < b.seconds)) b = f;
      }
      return b;
    };
    const Figures report = best([&] {
      auto r = stepsim::sim::Simulate(*config, *schedule, stepsim::sim::SimOptions{});
      if (!r.ok()) return -1.0;
      const stepsim::RunReport rr = stepsim::traces::BuildRunReport(*config, *r);
      return static_cast<double>(rr.memory_events());
    });
    const std::string trace_path = "/tmp/stepsim_bench_trace.json";
    const Figures trace = best([&] {
      auto r = stepsim::sim::Simulate(*config, *schedule, stepsim::sim::SimOptions{});
      if (!r.ok()) return -1.0;
      const stepsim::RunReport rr = stepsim::traces::BuildRunReport(*config, *r);
      std::ofstream out(trace_path, std::ios::binary);
      stepsim::traces::WriteChromeTrace(*r, rr, out);
      return static_cast<double>(out.tellp());
    });
    std::remove(trace_path.c_str());
    std::vector<int64_t> steps(pp);
    int64_t total_steps = 0;
    for (int64_t r = 0; r < pp; ++r) {
      steps[r] = static_cast<int64_t>(schedule->ranks[r].size());
      total_steps += steps[r];
    }
    const int64_t transfers = 2 * m;  // per rank: one activation and one gradient each
    const Figures floor = best([&] { return Floor(pp, steps, transfers); });
    std::printf("%-22s %9.3f %8.1f %12.3g %9.3f %8.1f %10.0f %9.3f %8.2f %7lld\n",
                ("PP" + std::to_string(pp) + " m=" + std::to_string(m)).c_str(), report.seconds,
                report.rss_mib, report.events / report.seconds, trace.seconds, trace.rss_mib,
                trace.events / 1e6 / trace.seconds, floor.seconds, report.seconds / floor.seconds,
                static_cast<long long>(total_steps));
  }
  std::printf("(report s: simulate and report; trace s: the same plus writing the Chrome trace; "
              "floor: bare SimGrid, same actors, executions, transfers; ratio = report / floor)\n");
  return 0;
}
