// Runs the stepsim binary as a user would and captures what it prints.
#ifndef STEPSIM_TESTS_E2E_RUN_CLI_H_
#define STEPSIM_TESTS_E2E_RUN_CLI_H_

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace stepsim::testing {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `script` with /bin/sh from the source directory, so scenario paths
// are relative to it; $S (exported) names the stepsim binary.
inline CliResult RunShell(const std::string& script) {
  char dir_template[] = "/tmp/stepsim_cli_XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string command = "cd '" + std::string(STEPSIM_SOURCE_DIR) + "' && S='" +
                              std::string(STEPSIM_BINARY) + "' && export S && (" + script + ") >" + dir +
                              "/out 2>" + dir + "/err";
  const int status = std::system(command.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(dir + "/out");
  r.err = Slurp(dir + "/err");
  std::system(("rm -rf '" + dir + "'").c_str());
  return r;
}

// `args` is appended to the binary's path (RunShell).
inline CliResult RunCli(const std::string& args) { return RunShell("\"$S\" " + args); }

}  // namespace stepsim::testing

#endif  // STEPSIM_TESTS_E2E_RUN_CLI_H_
