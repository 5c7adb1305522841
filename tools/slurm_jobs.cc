#include "tools/slurm_jobs.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "tools/cli_io.h"
#include "tools/output_plan.h"

namespace stepsim::tools {
namespace {

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : " ") + ShellQuote(w);
  return out;
}

}  // namespace

std::string ShellQuote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789_-./=:,+") == std::string::npos) {
    return word;
  }
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string SelfPath() {
  std::error_code ec;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("stepsim") : path.string();
}

Status WriteSlurmJobs(const SlurmArgs& args, const std::vector<std::string>& command) {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::absolute(args.dir, ec);
  if (ec) return Status::Invalid("--slurm " + args.dir + ": " + ec.message());
  for (const char* sub : {"", "shards", "logs"}) {
    std::filesystem::create_directories(dir / sub, ec);
    if (ec) return Status::Invalid("--slurm " + args.dir + ": cannot create " +
                                   (dir / sub).string() + ": " + ec.message());
  }
  const std::string d = dir.string();
  const std::string n = std::to_string(args.shards);
  const std::string shard_file = ShellQuote(d + "/shards/shard-") + "\"${SLURM_ARRAY_TASK_ID}\".textproto";
  const std::string shards =
      "#!/bin/bash\n"
      "# One shard of the search per array task (written by stepsim --slurm).\n"
      "#SBATCH --job-name=stepsim-shards\n"
      "#SBATCH --array=1-" + n + "\n"
      "#SBATCH --cpus-per-task=" + std::to_string(args.cpus) + "\n"
      "#SBATCH --output=" + d + "/logs/shard-%a.log\n"
      "set -euo pipefail\n" +
      Join(command) + " \\\n  --shard \"${SLURM_ARRAY_TASK_ID}/" + n +
      "\" -j \"${SLURM_CPUS_PER_TASK:-1}\" \\\n  --out " + shard_file + "\n";
  const std::string merge =
      "#!/bin/bash\n"
      "# Merges the shards into the result of the whole search.\n"
      "#SBATCH --job-name=stepsim-merge\n"
      "#SBATCH --output=" + d + "/logs/merge.log\n"
      "set -euo pipefail\n"
      "cd " + ShellQuote(d) + "\n" +
      ShellQuote(command.front()) + " merge shards/shard-{1.." + n + "}.textproto \\\n"
      "  --json result.json --csv result.csv --out result.textproto > result.txt\n";
  const std::string submit =
      "#!/bin/bash\n"
      "# Submits the shards and, once they all succeed, the merge.\n"
      "set -euo pipefail\n"
      "cd " + ShellQuote(d) + "\n"
      "shards=$(sbatch --parsable shards.sbatch)\n"
      "shards=${shards%%;*}\n"
      "merge=$(sbatch --parsable --dependency=afterok:\"$shards\" merge.sbatch)\n"
      "merge=${merge%%;*}\n"
      "echo \"shards: job $shards, merge: job $merge\"\n";
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"shards.sbatch", shards},
                                   {"merge.sbatch", merge}, {"submit.sh", submit}}) {
    const std::string path = d + "/" + name;
    Status s = WriteOutput(path, text);
    if (!s.ok()) return s;
    chmod(path.c_str(), 0755);
  }
  return Status::Ok();
}

StatusOr<std::string> SubmitSlurmJobs(const SlurmArgs& args) {
  const std::string script =
      (std::filesystem::absolute(args.dir) / "submit.sh").string();
  std::fflush(nullptr);
  FILE* pipe = popen(("bash " + ShellQuote(script) + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return Status::Failed("cannot run " + script);
  std::string out;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) {
    return Status::Failed(script + " failed (is Slurm's sbatch installed and a cluster "
                          "reachable?):\n" + out);
  }
  return out;
}

}  // namespace stepsim::tools
