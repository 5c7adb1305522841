// Reading inputs as a hostile user would hand them over: devices, FIFOs,
// directories, symlink loops, files that grow past their bound.
#include "tools/cli_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>

namespace stepsim::tools {
namespace {

std::string TempDir() {
  char dir[] = "/tmp/stepsim_cli_io_XXXXXX";
  return mkdtemp(dir);
}

TEST(CliIoTest, ReadsARegularFile) {
  const std::string path = TempDir() + "/s.textproto";
  std::ofstream(path) << "name: \"x\"\n";
  StatusOr<std::string> text = ReadFile(path);
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text, "name: \"x\"\n");
}

TEST(CliIoTest, DevicesAreRefusedBeforeReading) {
  // /dev/zero never ends and /dev/urandom neither: refused by type.
  for (const char* device : {"/dev/zero", "/dev/urandom", "/dev/null"}) {
    StatusOr<std::string> text = ReadFile(device);
    ASSERT_FALSE(text.ok()) << device;
    EXPECT_EQ(text.status().message(), std::string(device) +
                                           ": is a device, not a regular file; stepsim reads "
                                           "inputs from regular files");
  }
}

TEST(CliIoTest, AFifoWithoutWriterIsRefusedWithoutBlocking) {
  const std::string path = TempDir() + "/fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  // Run in a child with an alarm: a blocking open would kill it.
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    StatusOr<std::string> text = ReadFile(path);
    _exit(!text.ok() && text.status().message() ==
                            path + ": is a FIFO (named pipe), not a regular file; stepsim reads "
                                   "inputs from regular files"
              ? 0
              : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "ReadFile blocked on a FIFO";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(CliIoTest, MissingDirectoryLoopAndPathThroughAFile) {
  const std::string dir = TempDir();
  EXPECT_EQ(ReadFile(dir + "/none").status().message(), dir + "/none: no such file");
  EXPECT_EQ(ReadFile(dir).status().message(), dir + ": is a directory, not a file");
  ASSERT_EQ(symlink((dir + "/b").c_str(), (dir + "/a").c_str()), 0);
  ASSERT_EQ(symlink((dir + "/a").c_str(), (dir + "/b").c_str()), 0);
  EXPECT_EQ(ReadFile(dir + "/a").status().message(),
            dir + "/a: too many levels of symbolic links (a symlink loop?)");
  std::ofstream(dir + "/file") << "x";
  EXPECT_EQ(ReadFile(dir + "/file/x").status().message(),
            dir + "/file/x: a folder in this path is not a folder");
  EXPECT_EQ(ReadFile("").status().message(), "an empty file name");
}

TEST(CliIoTest, OpenErrorsSayWhy) {
  // Permission checks do not apply to root, so the wording is tested here.
  EXPECT_EQ(OpenError("s", EACCES), "s: permission denied");
  EXPECT_EQ(OpenError("s", EPERM), "s: permission denied");
  EXPECT_EQ(OpenError("s", ENOENT), "s: no such file");
  EXPECT_EQ(OpenError("s", ENAMETOOLONG), "s: file name too long");
  EXPECT_EQ(OpenError("s", EIO), "s: cannot be opened: Input/output error");
}

TEST(CliIoTest, TheBoundHoldsForFilesOfAnySize) {
  const std::string path = TempDir() + "/big";
  std::ofstream(path) << std::string(5000, 'x');
  EXPECT_EQ(ReadFile(path, 4096).status().message(),
            path + ": 5000 bytes is larger than the 4096 bytes this input may have");
  EXPECT_TRUE(ReadFile(path, 5000).ok());
  // /proc files claim size 0 and may hold more: read up to the bound only.
  StatusOr<std::string> small = ReadFile("/proc/self/status", 16);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("larger than"), std::string::npos);
}

TEST(CliIoTest, ReportCutsLongLines) {
  ::testing::internal::CaptureStderr();
  const int code = Report(Status::Invalid("a: " + std::string(5000, 'v') + "\nb: short"));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, kExitBadInput);
  EXPECT_EQ(err, "stepsim: a: " + std::string(kMaxMessageLine - 3, 'v') + "... (" +
                     std::to_string(5003 - kMaxMessageLine) + " more bytes)\nb: short\n");
}

TEST(CliIoTest, ClosedStandardStreamsBecomeHarmless) {
  const pid_t pid = fork();
  if (pid == 0) {
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
    PrepareStandardStreams();
    // Nothing may land on descriptors 0 and 1 now, and writing to stdout fails.
    const int fd = open("/dev/null", O_RDONLY);
    const bool fresh = fd > STDERR_FILENO;
    const bool fails = write(STDOUT_FILENO, "x", 1) < 0 && errno == EPIPE;
    _exit(fresh && fails ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));  // SIGPIPE is ignored
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace stepsim::tools
