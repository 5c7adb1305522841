// What the libFuzzer targets share (tests/fuzz/targets.txt lists them).
//
// Every target treats two outcomes as crashes: a signal or sanitizer
// report, and a failure stepsim reports about itself (a kFailed status: "a
// stepsim bug", a ledger not back to its static state, a built-in schedule
// that deadlocks). Bad input must end in kInvalidInput, nothing else.
// Simulations run in a child process (SimGrid allows one engine per
// process); a child that dies or exits non-zero aborts the fuzzer, so
// libFuzzer keeps the input.
#ifndef STEPSIM_TESTS_FUZZ_FUZZ_UTIL_H_
#define STEPSIM_TESTS_FUZZ_FUZZ_UTIL_H_

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/config.h"
#include "graph/overrides.h"
#include "graph/scenario_text.h"
#include "graph/status.h"
#include "sim/budget.h"

namespace stepsim::fuzz {

// Aborts on a kFailed status: stepsim says it has a bug.
inline void CheckNotFailed(const Status& status, const char* where) {
  if (status.code() != StatusCode::kFailed) return;
  std::fprintf(stderr, "%s: kFailed: %s\n", where, status.message().c_str());
  std::abort();
}

// A fuzz input for a scenario: its text, then optionally a line "%%" and
// one --set override per line (at most 16 are applied).
struct ScenarioInput {
  std::string text;
  std::vector<std::string> sets;
};

inline ScenarioInput SplitScenarioInput(std::string_view data) {
  ScenarioInput input;
  const size_t split = data.find("\n%%\n");
  input.text = std::string(data.substr(0, split));
  if (split == std::string_view::npos) return input;
  std::string_view rest = data.substr(split + 4);
  while (!rest.empty() && input.sets.size() < 16) {
    const size_t end = rest.find('\n');
    input.sets.emplace_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return input;
}

// Parses, overrides and resolves; nullopt when stepsim refuses the input
// (cleanly: any kFailed aborts).
inline std::optional<graph::Config> LoadScenario(std::string_view data) {
  const ScenarioInput input = SplitScenarioInput(data);
  graph::FieldPlaces places;
  StatusOr<Scenario> scenario = graph::ParseScenario(input.text, "fuzz.textproto", &places);
  if (!scenario.ok()) {
    CheckNotFailed(scenario.status(), "ParseScenario");
    return std::nullopt;
  }
  std::vector<std::string> notes;
  Status overridden = graph::ApplyOverrides(input.sets, &*scenario, &places, &notes);
  if (!overridden.ok()) {
    CheckNotFailed(overridden, "ApplyOverrides");
    return std::nullopt;
  }
  StatusOr<graph::Config> config = graph::Resolve(*scenario);
  if (!config.ok()) {
    CheckNotFailed(config.status(), "Resolve");
    (void)places.Locate(config.status());
    return std::nullopt;
  }
  return *config;
}

// Small enough to simulate a few hundred times a minute.
inline bool Small(const graph::Config& c) {
  if (c.model.layers > 16 || c.layout.stages.size() > 16 || c.batch.microbatches > 16 ||
      c.parallel.pp > 8) {
    return false;
  }
  sim::Budget budget;
  budget.max_seconds = 2;
  return sim::CheckBudget(c, sim::EstimateRunCost(c, true), budget).ok();
}

// Runs `work` in a child; the child's return value is its exit code. A
// child killed by a signal or exiting non-zero aborts the fuzzer.
inline void InChild(const std::function<int()>& work) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return;
  if (pid == 0) _exit(work());
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) std::abort();
}

}  // namespace stepsim::fuzz

#endif  // STEPSIM_TESTS_FUZZ_FUZZ_UTIL_H_
