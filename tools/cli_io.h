// What every stepsim command shares: reading inputs, loading a scenario with
// its --set overrides, preparing the process's standard streams, and turning
// a Status into a message and an exit code. Outputs go through OutputPlan
// (tools/output_plan.h).
//
// Exit codes: 0 success, 1 the run failed, 2 bad input or usage.
#ifndef STEPSIM_TOOLS_CLI_IO_H_
#define STEPSIM_TOOLS_CLI_IO_H_

#include <cstdint>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/scenario_text.h"
#include "graph/status.h"

namespace stepsim::tools {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;
constexpr std::uintmax_t kMaxInputBytes = 16u << 20;
// Longest line of a message printed to stderr; longer lines are cut (an
// echoed value of megabytes says no more than its first kilobyte).
constexpr size_t kMaxMessageLine = 1000;

int ExitCode(const Status& status);
// Prints a non-ok status to stderr ("stepsim: message", every line cut at
// kMaxMessageLine bytes); returns its exit code.
int Report(const Status& status);

// Makes the process safe for hostile surroundings; call first in main.
// A closed stdin or stderr is reopened on /dev/null, so no file opened later
// takes its descriptor; a closed stdout becomes a pipe without reader, so
// writing to it fails (and is reported) instead of landing in a file.
// SIGPIPE and SIGXFSZ are ignored: a write to a closed pipe or past the file
// size limit is an error the command reports, not a silent death.
void PrepareStandardStreams();

// "path: reason" for an errno from opening `path`: no such file, permission
// denied, a symbolic-link loop, a path through a file, ...
std::string OpenError(const std::string& path, int error);
// "is a FIFO (named pipe)", "is a device", ... for a file that is not a
// regular one (stat's st_mode); "" for a regular file.
std::string NotRegular(unsigned mode);
// "is a FIFO (named pipe)", "is a device", ... for a file type that is not a
// regular file; "" for a regular file.
std::string NotRegular(unsigned mode);

// The whole file, read without blocking and never more than `max_bytes`.
// kInvalidInput naming the path for a missing or unreadable file, a
// directory, anything but a regular file (FIFO, device, socket: refused
// before reading, so neither /dev/zero nor a FIFO can hang the command) and
// a file larger than `max_bytes`.
StatusOr<std::string> ReadFile(const std::string& path,
                               std::uintmax_t max_bytes = kMaxInputBytes);

// A scenario file and its --set overrides.
struct ScenarioArgs {
  std::string path;
  std::vector<std::string> sets;
};

// A scenario read, overridden and resolved, with what later messages need.
struct LoadedScenario {
  graph::Config config;
  // Where each field was set: the scenario's "file:line:col" or the
  // "--set path=value"; locates any later "field: problem" message.
  graph::FieldPlaces places;
  // About overrides, e.g. a policy change that dropped the old policy's
  // settings (graph::ApplyOverrides); print them with PrintNotes.
  std::vector<std::string> notes;
  // Every file the scenario reads: its own path, then the files it refers
  // to (schedule.file, relative to its folder). No output may be one of them.
  std::vector<std::string> inputs;
};

// `file` as named in the scenario at `scenario_path`: relative to the
// scenario's folder unless absolute.
std::string RelativeToScenario(const std::string& scenario_path, const std::string& file);

// Reads, parses, overrides and resolves the scenario, with its
// model.hf_config (relative to the scenario's folder) merged under the
// explicit model fields. An invalid configuration names, on each problem
// line, where the field was set.
StatusOr<LoadedScenario> LoadScenario(const ScenarioArgs& args);

// The scenario as LoadScenario reads it (overrides and Hugging Face config
// applied, named), not resolved: for commands that vary it further.
StatusOr<Scenario> ReadScenario(const ScenarioArgs& args);

// Applies `sets` to `scenario`, merges its model.hf_config relative to
// `base_file`'s folder, names it after `base_file` if it has no name, and
// resolves it.
StatusOr<graph::Config> ResolveScenarioAt(Scenario scenario, const std::string& base_file,
                                          const std::vector<std::string>& sets);
// LoadScenario's config alone.
StatusOr<graph::Config> LoadConfig(const ScenarioArgs& args);

// Prints each note to stderr as "stepsim: note: ...".
void PrintNotes(const std::vector<std::string>& notes);

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_CLI_IO_H_
