// `sweep|fit --slurm DIR`: the search as a Slurm job array of N shards plus
// a merge job that runs when every shard has succeeded.
//
// DIR/shards.sbatch   the array: task K runs `stepsim ... --shard K/N
//                     --out DIR/shards/shard-K.textproto`
// DIR/merge.sbatch    `stepsim merge DIR/shards/shard-*.textproto`, writing
//                     DIR/result.txt (the table), result.json, result.csv
//                     and result.textproto
// DIR/submit.sh       submits both, the merge with --dependency=afterok
// DIR/logs/           one log per job
#ifndef STEPSIM_TOOLS_SLURM_JOBS_H_
#define STEPSIM_TOOLS_SLURM_JOBS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "graph/status.h"

namespace stepsim::tools {

struct SlurmArgs {
  std::string dir;          // --slurm DIR; empty: run here
  int64_t shards = 4;       // --shards N
  int64_t cpus = 1;         // --slurm-cpus: CPUs per shard (its -j)
  bool submit = false;      // --submit: run DIR/submit.sh
};

// One word quoted for bash: 'it'\''s'.
std::string ShellQuote(const std::string& word);

// Writes the three scripts and the folders. `command` is the stepsim
// command line of the whole search (binary first, absolute paths), without
// --shard, -j or outputs. kInvalidInput if DIR cannot be created or written.
Status WriteSlurmJobs(const SlurmArgs& args, const std::vector<std::string>& command);

// Runs DIR/submit.sh; returns what it printed (the job ids). kFailed if
// sbatch is missing or refuses.
StatusOr<std::string> SubmitSlurmJobs(const SlurmArgs& args);

// The absolute path of the running stepsim binary.
std::string SelfPath();

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_SLURM_JOBS_H_
