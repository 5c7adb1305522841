// The outputs of one command, planned before anything runs and written all
// or nothing.
//
//   OutputPlan plan;
//   plan.AddInput(scenario_path);              // every file the command reads
//   plan.AddOutput("--report", report_path);   // "" = not asked for, "-" = stdout
//   plan.AddOutput("--chrome-trace", trace_path);
//   if (Status s = plan.Prepare(); !s.ok()) ...  // before simulating
//   plan.Write("--report", text);               // into a temporary file
//   plan.Stream("--chrome-trace", [&](std::ostream& out) { ... });
//   if (Status s = plan.Commit(); !s.ok()) ...  // renames, or removes all
//
// Prepare refuses, naming the flags: an empty path, the same file twice
// (compared by device and inode when it exists, else by canonical path), an
// output that is one of the inputs, two outputs on stdout, an output that is
// a directory or anything but a regular file (a FIFO, a device: use - for
// stdout), and a folder that does not exist or cannot be written. It then
// creates every file output's temporary file (".NAME.XXXXXX" in the same
// folder), which proves the folder writable before any work is done.
//
// All or nothing: Write and Stream fill the temporaries; stdout outputs are
// held back and written by Commit, after every file output is complete, so
// a failure anywhere (a full disk, a file-size limit, a closed stdout)
// leaves no output at all: no partial file, and no complete report beside a
// failed trace. Commit then renames the temporaries into place (atomic per
// file; an existing file keeps its permissions). Only a failing rename, after
// others succeeded, can leave some outputs written; Commit's message says
// which. Temporaries not committed are removed by the destructor, and by
// SIGINT, SIGTERM and SIGHUP handlers while the plan lives.
#ifndef STEPSIM_TOOLS_OUTPUT_PLAN_H_
#define STEPSIM_TOOLS_OUTPUT_PLAN_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "graph/status.h"

namespace stepsim::tools {

class OutputPlan {
 public:
  OutputPlan() = default;
  OutputPlan(const OutputPlan&) = delete;
  OutputPlan& operator=(const OutputPlan&) = delete;
  ~OutputPlan();  // removes temporaries that were not committed

  // A file the command reads ("-" and "" are ignored).
  void AddInput(const std::string& path);
  // Output `flag` ("--report") goes to `path`: a file, "-" for stdout, or ""
  // for not asked. Call before Prepare.
  void AddOutput(const std::string& flag, const std::string& path);

  // Checks every output against the rules above and creates the temporary
  // files. kInvalidInput naming the flag and path; kFailed when a temporary
  // cannot be created for another reason than the user's path.
  Status Prepare();

  // Whether any output goes to stdout (the command then prints no summary).
  bool ToStdout() const;

  // Writes output `flag` (ignored when it was not asked for). For a file,
  // into its temporary now; for stdout, at Commit. kFailed on a write error.
  Status Write(const std::string& flag, std::string text);
  Status Stream(const std::string& flag, std::function<void(std::ostream&)> write);

  // Writes the stdout outputs, then renames every temporary into place. On
  // any failure removes the temporaries not yet renamed and returns kFailed.
  Status Commit();

 private:
  struct Output {
    std::string flag, path;
    std::string target;     // the file renamed onto (a symlink's target)
    std::string temporary;  // "" until Prepare
    std::function<void(std::ostream&)> deferred;  // stdout: written at Commit
    bool written = false;
  };
  Output* Find(const std::string& flag);
  Status PrepareFile(Output& output);
  void RemoveTemporaries();

  std::vector<std::string> inputs_;
  std::vector<Output> outputs_;
  bool prepared_ = false;
};

// Writes `text` to `path` (or stdout for "-") through a one-output plan: a
// temporary file renamed into place, never a partial file.
Status WriteOutput(const std::string& path, const std::string& text);

}  // namespace stepsim::tools

#endif  // STEPSIM_TOOLS_OUTPUT_PLAN_H_
