// Traces of every schedule kind (pp4_tiny) and of DeepSeek-V3, loaded in the
// trace engine of Chrome DevTools' Performance panel by
// tests/viewers/devtools_check.mjs (Node; the npm package is pinned in
// tests/viewers/package-lock.json and installed by tools/setup.sh): no slice
// dropped, every op slice under its own step, every flow bound to its own
// send and receive (or producing and consuming step), every peak marker
// kept. check-trace's rules hold for each of them too.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/e2e/run_cli.h"
#include "traces/trace_check.h"

namespace stepsim::testing {
namespace {

namespace fs = std::filesystem;

struct Case {
  std::string name;
  std::string args;  // for `stepsim run`
  int ranks;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (const char* kind : {"GPIPE", "ONE_F_ONE_B", "INTERLEAVED_ONE_F_ONE_B", "ZB_H1", "ZB_H2",
                           "DUALPIPE", "DUALPIPE_V"}) {
    std::string args = std::string("scenarios/pp4_tiny.textproto --set schedule.kind=") + kind;
    if (std::string(kind) == "INTERLEAVED_ONE_F_ONE_B") args += " --set parallel.vpp=2";
    cases.push_back({kind, args, 4});
  }
  cases.push_back({"DeepSeekV3", "scenarios/deepseek_v3.textproto", 16});
  return cases;
}

// Runs a shell command; its standard output, and its exit status in `status`.
std::string Shell(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return out;
  }
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int raw = pclose(pipe);
  *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

class DevToolsTest : public ::testing::TestWithParam<Case> {};

TEST_P(DevToolsTest, EverySliceFlowAndMarkerIsKept) {
  const Case& c = GetParam();
  const fs::path viewers = fs::path(STEPSIM_SOURCE_DIR) / "tests" / "viewers";
  ASSERT_TRUE(fs::exists(viewers / "node_modules" / "@paulirish" / "trace_engine"))
      << "the DevTools trace engine is not installed: run tools/setup.sh (npm ci in "
      << viewers.string() << ")";
  char dir_template[] = "/tmp/stepsim_devtools_XXXXXX";
  const fs::path dir = mkdtemp(dir_template);
  const std::string trace = (dir / "trace.json").string();
  const CliResult run = RunCli("run " + c.args + " --chrome-trace '" + trace + "'");
  ASSERT_EQ(run.exit_code, 0) << run.err;

  const traces::TraceCheck check = traces::CheckChromeTrace(Slurp(trace));
  EXPECT_EQ(check.problem_count, 0) << (check.problems.empty() ? "" : check.problems.front());

  int status = 0;
  const std::string out = Shell("cd '" + viewers.string() + "' && node devtools_check.mjs '" +
                                    trace + "' 2>&1",
                                &status);
  fs::remove_all(dir);
  ASSERT_NE(status, 2) << out;
  const nlohmann::json r = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(r.is_object()) << out;
  EXPECT_EQ(status, 0) << out;
  EXPECT_GT(r["slices"].get<int64_t>(), 1000) << out;
  EXPECT_EQ(r["slices"].get<int64_t>(), check.slices);
  EXPECT_EQ(r["dropped"].get<int64_t>(), 0) << out;
  EXPECT_GT(r["ops"].get<int64_t>(), 0) << out;
  EXPECT_EQ(r["misplaced"].get<int64_t>(), 0) << out;
  EXPECT_EQ(r["flows"].get<int64_t>(), check.flows) << out;
  EXPECT_GT(r["flows"].get<int64_t>(), 0) << out;
  EXPECT_EQ(r["bound"].get<int64_t>(), r["flows"].get<int64_t>()) << out;
  EXPECT_EQ(r["markers"].get<int64_t>(), c.ranks) << out;
  EXPECT_EQ(r["kept"].get<int64_t>(), c.ranks) << out;
}

INSTANTIATE_TEST_SUITE_P(Schedules, DevToolsTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& p) { return p.param.name; });

}  // namespace
}  // namespace stepsim::testing
