// Outputs planned before anything runs, written all or nothing.
#include "tools/output_plan.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/test_util.h"

namespace stepsim::tools {
namespace {

using testing::FilesIn;

std::string TempDir() {
  char dir[] = "/tmp/stepsim_plan_XXXXXX";
  return mkdtemp(dir);
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status PlanOf(const std::vector<std::string>& inputs,
              const std::vector<std::pair<std::string, std::string>>& outputs) {
  OutputPlan plan;
  for (const std::string& in : inputs) plan.AddInput(in);
  for (const auto& [flag, path] : outputs) plan.AddOutput(flag, path);
  return plan.Prepare();
}

TEST(OutputPlanTest, WritesEveryOutputOnCommit) {
  const std::string dir = TempDir();
  OutputPlan plan;
  plan.AddOutput("--report", dir + "/r.json");
  plan.AddOutput("--chrome-trace", dir + "/t.json");
  plan.AddOutput("--timeline", "");  // not asked for
  ASSERT_TRUE(plan.Prepare().ok());
  EXPECT_FALSE(plan.ToStdout());
  ASSERT_TRUE(plan.Write("--report", "{}").ok());
  ASSERT_TRUE(plan.Stream("--chrome-trace", [](std::ostream& out) { out << "[1]"; }).ok());
  ASSERT_TRUE(plan.Write("--timeline", "ignored").ok());
  // Nothing is in place before Commit: only the two temporaries.
  EXPECT_EQ(FilesIn(dir).size(), 2u);
  EXPECT_EQ(FilesIn(dir).count("r.json"), 0u);
  ASSERT_TRUE(plan.Commit().ok());
  EXPECT_EQ(FilesIn(dir), (std::set<std::string>{"r.json", "t.json"}));
  EXPECT_EQ(Read(dir + "/r.json"), "{}");
  EXPECT_EQ(Read(dir + "/t.json"), "[1]");
}

TEST(OutputPlanTest, RefusesOutputsThatCollide) {
  const std::string dir = TempDir();
  const std::string scenario = dir + "/s.textproto";
  std::ofstream(scenario) << "name: \"x\"\n";
  EXPECT_EQ(PlanOf({scenario}, {{"--report", scenario}}).message(),
            "--report " + scenario + ": is an input of this command; refusing to overwrite it");
  // The same file under another name: a relative path, a symlink, a hard link.
  ASSERT_EQ(symlink(scenario.c_str(), (dir + "/link").c_str()), 0);
  ASSERT_EQ(link(scenario.c_str(), (dir + "/hard").c_str()), 0);
  for (const std::string& alias : {dir + "/./s.textproto", dir + "/link", dir + "/hard"}) {
    EXPECT_EQ(PlanOf({scenario}, {{"--out", alias}}).message(),
              "--out " + alias + ": is the same file as the input " + scenario +
                  " of this command; refusing to overwrite it");
  }
  EXPECT_EQ(PlanOf({}, {{"--report", dir + "/x.json"}, {"--chrome-trace", dir + "/x.json"}})
                .message(),
            "--report and --chrome-trace both write " + dir +
                "/x.json; give each output its own file");
  EXPECT_EQ(PlanOf({}, {{"--report", dir + "/y.json"}, {"--timeline", dir + "/../" +
                                                           dir.substr(5) + "/y.json"}})
                .code(),
            StatusCode::kInvalidInput);
  EXPECT_EQ(PlanOf({}, {{"--report", "-"}, {"--chrome-trace", "-"}}).message(),
            "--report and --chrome-trace both write to standard output (-); give one of them a "
            "file");
  // Refused plans leave nothing behind.
  EXPECT_EQ(FilesIn(dir), (std::set<std::string>{"s.textproto", "link", "hard"}));
}

TEST(OutputPlanTest, RefusesWhatCannotBeAFile) {
  const std::string dir = TempDir();
  ASSERT_EQ(mkfifo((dir + "/fifo").c_str(), 0600), 0);
  EXPECT_EQ(PlanOf({}, {{"--report", dir + "/fifo"}}).message(),
            "--report " + dir + "/fifo: is a FIFO (named pipe), not a regular file (use - for "
                                "standard output)");
  EXPECT_EQ(PlanOf({}, {{"--report", "/dev/null"}}).message(),
            "--report /dev/null: is a device, not a regular file (use - for standard output)");
  EXPECT_EQ(PlanOf({}, {{"--report", dir}}).message(),
            "--report " + dir + ": is a directory, not a file");
  EXPECT_EQ(PlanOf({}, {{"--report", dir + "/no/such/r.json"}}).message(),
            "--report " + dir + "/no/such/r.json: folder " + dir + "/no/such does not exist");
  // A folder nobody may create files in (permissions do not stop root; /proc does).
  EXPECT_EQ(PlanOf({}, {{"--report", "/proc/r.json"}}).message().substr(0, 46),
            "--report /proc/r.json: cannot write in folder ");
}

TEST(OutputPlanTest, AFailedWriteLeavesNoOutputAtAll) {
  const std::string dir = TempDir();
  std::ofstream(dir + "/t.json") << "old trace";
  // A child with a 64 KiB file-size limit: the report fits, the trace does not.
  const pid_t pid = fork();
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{64 << 10, 64 << 10};
    setrlimit(RLIMIT_FSIZE, &limit);
    bool reported = false;
    {
      OutputPlan plan;
      plan.AddOutput("--report", dir + "/r.json");
      plan.AddOutput("--chrome-trace", dir + "/t.json");
      if (!plan.Prepare().ok() || !plan.Write("--report", "{}").ok()) _exit(2);
      Status s = plan.Stream("--chrome-trace",
                             [](std::ostream& out) { out << std::string(1 << 20, 'x'); });
      reported = s.code() == StatusCode::kFailed &&
                 s.message() == "--chrome-trace " + dir + "/t.json: write failed: File too large";
    }  // the command gives up: the plan goes out of scope
    _exit(reported ? 0 : 3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // No report beside the failed trace, no partial trace, no temporaries;
  // the old trace is untouched.
  EXPECT_EQ(FilesIn(dir), std::set<std::string>{"t.json"});
  EXPECT_EQ(Read(dir + "/t.json"), "old trace");
}

TEST(OutputPlanTest, DestructorAndFailureRemoveTemporaries) {
  const std::string dir = TempDir();
  {
    OutputPlan plan;
    plan.AddOutput("--report", dir + "/r.json");
    ASSERT_TRUE(plan.Prepare().ok());
    ASSERT_TRUE(plan.Write("--report", "{}").ok());
    EXPECT_EQ(FilesIn(dir).size(), 1u);  // the temporary
  }  // never committed
  EXPECT_TRUE(FilesIn(dir).empty());
  OutputPlan unwritten;
  unwritten.AddOutput("--report", dir + "/r.json");
  ASSERT_TRUE(unwritten.Prepare().ok());
  EXPECT_EQ(unwritten.Commit().message(), "--report: never written (a stepsim bug)");
  EXPECT_TRUE(FilesIn(dir).empty());
}

TEST(OutputPlanTest, ReplacingAFileKeepsItsPermissionsAndWritesThroughSymlinks) {
  const std::string dir = TempDir();
  const std::string target = dir + "/real.json";
  std::ofstream(target) << "old";
  ASSERT_EQ(chmod(target.c_str(), 0640), 0);
  ASSERT_EQ(symlink(target.c_str(), (dir + "/link.json").c_str()), 0);
  OutputPlan plan;
  plan.AddOutput("--report", dir + "/link.json");
  ASSERT_TRUE(plan.Prepare().ok());
  ASSERT_TRUE(plan.Write("--report", "new").ok());
  ASSERT_TRUE(plan.Commit().ok());
  EXPECT_EQ(Read(target), "new");
  struct stat st {};
  ASSERT_EQ(lstat((dir + "/link.json").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));  // still a link
  ASSERT_EQ(stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(OutputPlanTest, StdoutIsWrittenAtCommitAfterTheFiles) {
  const std::string dir = TempDir();
  OutputPlan plan;
  plan.AddOutput("--report", "-");
  plan.AddOutput("--timeline", dir + "/c.csv");
  ASSERT_TRUE(plan.Prepare().ok());
  EXPECT_TRUE(plan.ToStdout());
  ::testing::internal::CaptureStdout();
  ASSERT_TRUE(plan.Write("--report", "{report}").ok());
  ASSERT_TRUE(plan.Write("--timeline", "csv").ok());
  const std::string before = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(before, "");
  ::testing::internal::CaptureStdout();
  ASSERT_TRUE(plan.Commit().ok());
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "{report}");
  EXPECT_EQ(Read(dir + "/c.csv"), "csv");
}

TEST(OutputPlanTest, AnInterruptRemovesTheTemporaries) {
  const std::string dir = TempDir();
  const pid_t pid = fork();
  if (pid == 0) {
    OutputPlan plan;
    plan.AddOutput("--report", dir + "/r.json");
    if (!plan.Prepare().ok()) _exit(2);
    raise(SIGTERM);
    _exit(3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_TRUE(FilesIn(dir).empty());
}

}  // namespace
}  // namespace stepsim::tools
