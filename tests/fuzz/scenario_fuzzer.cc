// libFuzzer target over everything that reads a scenario: parsing,
// validation, parameter and static-memory accounting, the op DAGs and
// activations, schedule generation and, for small inputs, a simulation.
// The simulation runs in a child process (SimGrid allows one engine per
// process); a child killed by a signal aborts the fuzzer so the input is
// kept.
//
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DSTEPSIM_FUZZ=ON
//   cmake --build build-fuzz --target scenario_fuzzer
//   build-fuzz/tests/scenario_fuzzer -max_total_time=600 build-fuzz/corpus scenarios
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "graph/activations.h"
#include "graph/config.h"
#include "graph/params_report.h"
#include "graph/scenario_text.h"
#include "sim/engine.h"
#include "sim/schedule.h"

namespace {

// Small enough to simulate a few hundred times a minute.
bool Small(const stepsim::graph::Config& c) {
  return c.model.layers <= 16 && c.layout.stages.size() <= 16 && c.batch.microbatches <= 16 &&
         c.parallel.pp <= 8;
}

void SimulateInChild(const stepsim::graph::Config& c) {
  const pid_t pid = fork();
  if (pid < 0) return;
  if (pid == 0) {
    stepsim::StatusOr<stepsim::sim::Schedule> schedule = stepsim::sim::BuildSchedule(c);
    if (schedule.ok()) {
      (void)stepsim::sim::Simulate(c, *schedule, stepsim::sim::SimOptions{});
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  stepsim::StatusOr<stepsim::Scenario> scenario =
      stepsim::graph::ParseScenario(text, "fuzz.textproto");
  if (!scenario.ok()) return 0;
  stepsim::StatusOr<stepsim::graph::Config> config = stepsim::graph::Resolve(*scenario);
  if (!config.ok()) return 0;
  if (!stepsim::graph::BuildParamsReport(*config).ok()) return 0;
  if (config->model.layers > 64) return 0;  // keep each input fast
  if (!stepsim::graph::BuildActivationsReport(*config).ok()) return 0;
  if (Small(*config)) SimulateInChild(*config);
  return 0;
}
