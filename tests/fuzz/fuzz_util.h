// What the libFuzzer targets share (tests/fuzz/targets.txt lists them).
//
// Every target treats two outcomes as crashes: a signal or sanitizer
// report, and a failure stepsim reports about itself (a kFailed status, or
// any message that says "a stepsim bug": a ledger not back to its static
// state, a built-in schedule that deadlocks, a file not read). Bad input
// must end in kInvalidInput, nothing else.
// Simulations run in a child process (SimGrid allows one engine per
// process); a child that dies or exits non-zero aborts the fuzzer, so
// libFuzzer keeps the input.
#ifndef STEPSIM_TESTS_FUZZ_FUZZ_UTIL_H_
#define STEPSIM_TESTS_FUZZ_FUZZ_UTIL_H_

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/activations.h"
#include "graph/config.h"
#include "graph/hf_config.h"
#include "graph/overrides.h"
#include "graph/params_report.h"
#include "graph/scenario_text.h"
#include "graph/status.h"
#include "sim/budget.h"
#include "sim/engine.h"
#include "sim/schedule.h"
#include "tools/cli_io.h"

namespace stepsim::fuzz {

// The input being fuzzed: a message that says "a stepsim bug" only counts
// when the input did not put those words there itself.
inline std::string_view& CurrentInput() {
  static std::string_view input;
  return input;
}
inline std::string_view SetInput(const uint8_t* data, size_t size) {
  return CurrentInput() = std::string_view(reinterpret_cast<const char*>(data), size);
}

// Aborts on a kFailed status or a message that says "a stepsim bug":
// stepsim says it has a bug.
inline void CheckNotFailed(const Status& status, const char* where) {
  const bool bug = status.message().find("stepsim bug") != std::string::npos &&
                   CurrentInput().find("stepsim bug") == std::string_view::npos;
  if (status.code() != StatusCode::kFailed && !bug) return;
  std::fprintf(stderr, "%s: %s: %s\n", where,
               status.code() == StatusCode::kFailed ? "kFailed" : "a stepsim bug",
               status.message().c_str());
  std::abort();
}

// Aborts unless a refusal of the input `filename` starts with its place:
// "filename:LINE:COL: " (or "filename: " for a whole-file problem when
// `whole_file` is allowed).
inline void CheckLocated(const Status& status, std::string_view filename, const char* where,
                         bool whole_file = false) {
  if (status.ok()) return;
  const std::string& m = status.message();
  bool located = m.size() > filename.size() && m.compare(0, filename.size(), filename) == 0 &&
                 m[filename.size()] == ':';
  if (located) {
    size_t i = filename.size() + 1;
    int numbers = 0;
    for (; numbers < 2; ++numbers) {
      const size_t start = i;
      while (i < m.size() && std::isdigit(static_cast<unsigned char>(m[i]))) ++i;
      if (i == start || i >= m.size() || m[i] != ':') break;
      ++i;
    }
    located = numbers == 2 || (whole_file && numbers == 0 && m[filename.size() + 1] == ' ');
  }
  if (located) return;
  std::fprintf(stderr, "%s: an error without its place in %.*s: %s\n", where,
               static_cast<int>(filename.size()), filename.data(), m.c_str());
  std::abort();
}

// A file an input names (model.hf_config, scenario_file), read only when it
// lies inside the current folder (tools/fuzz.sh runs in the repository), so
// that fuzzing never reads the rest of the machine.
inline StatusOr<std::string> ReadRepoFile(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path here = fs::current_path(ec);
  const fs::path full = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec || path.empty()) return Status::Invalid(path + ": not read by the fuzzer");
  const auto [end, _] = std::mismatch(here.begin(), here.end(), full.begin(), full.end());
  if (end != here.end()) return Status::Invalid(path + ": outside the repository");
  return tools::ReadFile(path);
}

// What tools/cli_io.cc does with model.hf_config before Resolve: read the
// config.json relative to `base` and merge it under the explicit fields.
inline Status MergeHfConfig(const std::string& base, Scenario* scenario) {
  if (!scenario->model().has_hf_config()) return Status::Ok();
  const std::string path = tools::RelativeToScenario(base, scenario->model().hf_config());
  StatusOr<std::string> json = ReadRepoFile(path);
  if (!json.ok()) return json.status();
  return graph::ApplyHfConfig(*json, path, scenario);
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
  Status merged = MergeHfConfig("fuzz.textproto", &*scenario);
  if (!merged.ok()) {
    CheckNotFailed(merged, "MergeHfConfig");
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

// What every command does with a resolved configuration: the budget, the
// parameter and static-memory report, the op DAGs and activations (up to
// 64 layers, to keep each input fast). True when it is small enough to
// simulate as well.
inline bool Exercise(const graph::Config& config) {
  (void)sim::CheckBudget(config, sim::EstimateRunCost(config, false), sim::Budget{});
  StatusOr<ParamsReport> params = graph::BuildParamsReport(config);
  CheckNotFailed(params.status(), "BuildParamsReport");
  if (!params.ok() || config.model.layers > 64) return false;
  StatusOr<ActivationsReport> activations = graph::BuildActivationsReport(config);
  CheckNotFailed(activations.status(), "BuildActivationsReport");
  return activations.ok() && Small(config);
}

// Builds the configuration's schedule and simulates a step in a child,
// then runs `then` on the result there (its return value is the child's
// exit code: non-zero aborts the fuzzer).
inline void SimulateInChild(const graph::Config& config,
                            const std::function<int(const sim::SimResult&)>& then = nullptr) {
  InChild([&] {
    StatusOr<sim::Schedule> schedule = sim::BuildSchedule(config);
    CheckNotFailed(schedule.status(), "BuildSchedule");
    if (!schedule.ok()) return 0;
    StatusOr<sim::SimResult> result = sim::Simulate(config, *schedule, sim::SimOptions{});
    CheckNotFailed(result.status(), "Simulate");
    return result.ok() && then ? then(*result) : 0;
  });
}

}  // namespace stepsim::fuzz

#endif  // STEPSIM_TESTS_FUZZ_FUZZ_UTIL_H_
