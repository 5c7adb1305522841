// The Slurm round trip: a single-node cluster on this machine
// (tools/slurm/local_cluster.sh), a sweep submitted as a job array of
// shards and a dependent merge, and the merged result equal to the sweep
// run in one process. Needs root (slurmd runs as root) and Debian's
// slurm-wlm and munge, as CI has (tools/setup.sh installs them).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/e2e/run_cli.h"

namespace stepsim::testing {
namespace {

std::string Shell(const std::string& command, int* code = nullptr) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  if (code != nullptr) *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

class SlurmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "slurmd needs root; CI runs this test as root";
    char dir[] = "/tmp/stepsim_slurm_XXXXXX";
    dir_ = mkdtemp(dir);
    script_ = std::string(STEPSIM_SOURCE_DIR) + "/tools/slurm/local_cluster.sh";
    int code = 0;
    // The cluster stops itself when this test process ends, however it ends.
    const std::string out =
        Shell("'" + script_ + "' start '" + dir_ + "/cluster' " + std::to_string(getpid()), &code);
    ASSERT_EQ(code, 0) << out;
    conf_ = dir_ + "/cluster/etc/slurm.conf";
  }
  void TearDown() override {
    if (dir_.empty()) return;
    Shell("'" + script_ + "' stop '" + dir_ + "/cluster'");
    std::filesystem::remove_all(dir_);
  }
  std::string Logs() {
    return Shell("tail -n 30 '" + dir_ + "'/jobs/logs/* '" + dir_ + "'/cluster/log/slurm*.log");
  }

  std::string dir_, script_, conf_;
};

TEST_F(SlurmTest, AShardedSweepMergesToTheSingleProcessResult) {
  const std::string space = "sweep scenarios/pp4_tiny.textproto --vary zero.stage=0,1,2,3 "
                            "--vary schedule.kind=ONE_F_ONE_B,GPIPE,ZB_H1";
  CliResult single = RunCli(space + " --json " + dir_ + "/single.json --csv " + dir_ +
                            "/single.csv");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  setenv("SLURM_CONF", conf_.c_str(), 1);  // for sbatch, run by --submit
  CliResult submit = RunCli(space + " --slurm " + dir_ + "/jobs --shards 3 --submit");
  ASSERT_EQ(submit.exit_code, 0) << submit.err << submit.out;
  EXPECT_NE(submit.out.find("shards: job "), std::string::npos) << submit.out;
  // Wait for the queue to empty: the three shards, then the merge.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool empty = false;
  while (std::chrono::steady_clock::now() < deadline) {
    int code = 0;
    const std::string queue = Shell("SLURM_CONF='" + conf_ + "' squeue -h", &code);
    if (code == 0 && queue.empty()) {
      empty = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(empty) << "the jobs did not finish within 120 s\n" << Logs();
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/jobs/result.json")) << Logs();
  EXPECT_EQ(Slurp(dir_ + "/jobs/result.json"), Slurp(dir_ + "/single.json")) << Logs();
  EXPECT_EQ(Slurp(dir_ + "/jobs/result.csv"), Slurp(dir_ + "/single.csv"));
  for (int k = 1; k <= 3; ++k) {
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/jobs/shards/shard-" + std::to_string(k) +
                                        ".textproto"));
  }
  EXPECT_NE(Slurp(dir_ + "/jobs/result.txt").find("12 configurations, merged from 3 shards"),
            std::string::npos)
      << Slurp(dir_ + "/jobs/result.txt");
}

}  // namespace
}  // namespace stepsim::testing
