// What every stepsim command shares: reading inputs, writing outputs, loading
// a scenario with its --set overrides, and turning a Status into an exit code.
//
// Exit codes: 0 success, 1 the run failed, 2 bad input or usage.
#ifndef STEPSIM_TOOLS_CLI_IO_H_
#define STEPSIM_TOOLS_CLI_IO_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/status.h"

namespace stepsim::tools {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;
constexpr std::uintmax_t kMaxInputBytes = 16u << 20;

int ExitCode(const Status& status);
// Prints a non-ok status to stderr ("stepsim: message"); returns its exit code.
int Report(const Status& status);

// The whole file; kInvalidInput for a missing file, a directory or a file
// larger than `max_bytes`.
StatusOr<std::string> ReadFile(const std::string& path,
                               std::uintmax_t max_bytes = kMaxInputBytes);
// Writes `text` to `path`, or to stdout for "-".
Status WriteOutput(const std::string& path, const std::string& text);
// Lets `write` stream into `path` (or stdout for "-"); reports write errors.
Status WriteStream(const std::string& path, const std::function<void(std::ostream&)>& write);

// A scenario file and its --set overrides.
struct ScenarioArgs {
  std::string path;
  std::vector<std::string> sets;
};

// Reads and parses the scenario, applies its --set overrides and merges its
// model.hf_config (relative to the scenario's folder); a scenario without a
// name takes the file's stem.
StatusOr<Scenario> LoadScenario(const ScenarioArgs& args);

// Reads, parses, overrides and resolves the scenario.
StatusOr<graph::Config> LoadConfig(const ScenarioArgs& args);

// Applies `sets` to `scenario`, reads its model.hf_config relative to
// `base_file`'s folder, names it after `base_file` if it has no name, and
// resolves it.
StatusOr<graph::Config> ResolveScenarioAt(Scenario scenario, const std::string& base_file,
                                          const std::vector<std::string>& sets);

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_CLI_IO_H_
