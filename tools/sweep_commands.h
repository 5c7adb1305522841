// stepsim sweep, fit and merge: searching many configurations. Each returns
// the process exit code. The runner is sim/sweep.h and sim/fit.h; these
// are the command-line ends.
#ifndef STEPSIM_TOOLS_SWEEP_COMMANDS_H_
#define STEPSIM_TOOLS_SWEEP_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "report.pb.h"
#include "sim/fit.h"
#include "sim/sweep.h"
#include "tools/cli_io.h"
#include "tools/slurm_jobs.h"

namespace stepsim::tools {

// Where a search's result goes. The table goes to stdout unless a file
// is "-".
struct SearchOutputs {
  std::string json, csv;  // FILE or -
  std::string out;        // protobuf text (SweepReport), what merge reads
  int64_t top = -1;       // table rows (fit: 10 by default); negative: all
};

// Prints the table (headed by `title`) unless an output is stdout, then
// writes the files. Returns the exit code of writing them.
int WriteSearchOutputs(const SweepReport& report, const SearchOutputs& outputs,
                       const std::string& title);

// sweep: 0 when a configuration was simulated; fit: 0 when one fits; else
// 1, with a message. An empty shard is 0.
int SearchExitCode(const SweepReport& report);

// Parses "K/N" (empty: the whole search).
StatusOr<sim::Shard> ParseShardArg(const std::string& text);

// Every core when `jobs` is 0.
int JobsOrCores(int jobs);

// The base scenario's identity for SweepReport.space: the file and --set
// overrides, so shards of different searches do not merge.
std::vector<std::string> ScenarioContext(const ScenarioArgs& args);

// Writes (and with --submit, submits) the Slurm jobs for `command`.
int WriteSlurm(const SlurmArgs& slurm, const std::vector<std::string>& command);

struct SweepArgs {
  ScenarioArgs scenario;
  std::vector<std::string> varies;  // PATH=V1,V2,...
  int jobs = 0;                     // -j; 0: every core
  std::string shard;                // --shard K/N
  SearchOutputs outputs;
  SlurmArgs slurm;
};
// Exit 0 when at least one configuration was simulated, 1 when none could
// be, 2 for bad input.
int RunSweepCommand(const SweepArgs& args);

struct FitArgs {
  ScenarioArgs scenario;
  int64_t gpus = 0;          // --gpus N
  int64_t global_batch = 0;  // --global-batch B; 0: the scenario's
  double headroom_gib = 0;   // --headroom GiB
  int64_t top = 10;          // --top K
  // The space, as given (comma-separated lists split): --pp, --tp, --cp,
  // --ep, --etp, --mbs, --vpp, --zero, --schedules, --recompute.
  std::vector<std::string> pp, tp, cp, ep, etp, mbs, vpp, zero, schedules, recompute;
  int jobs = 0;
  std::string shard;
  SearchOutputs outputs;
  SlurmArgs slurm;
};
// Exit 0 when at least one configuration fits, 1 when none does, 2 for bad
// input (an empty search space included).
int RunFitCommand(const FitArgs& args);

// Merges shard files (protobuf text, from --out) into the whole result.
// Exit 0 as the whole search would have, 2 for files that do not belong
// together.
int RunMergeCommand(const std::vector<std::string>& files, const SearchOutputs& outputs);

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_SWEEP_COMMANDS_H_
