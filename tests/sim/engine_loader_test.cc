// The stepsim command keeps SimGrid in build/stepsim_engine.so and loads it
// only to simulate (sim/engine_loader.cc): commands that never simulate run
// without it, and a missing module is a named failure, not a crash.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/e2e/run_cli.h"

namespace stepsim::testing {
namespace {

namespace fs = std::filesystem;

std::string Command(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[4096];
    for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
    pclose(pipe);
  }
  return out;
}

TEST(EngineLoaderTest, TheExecutableDoesNotNeedSimGrid) {
  const std::string needed = Command("readelf -d '" + std::string(STEPSIM_BINARY) + "'");
  ASSERT_NE(needed.find("(NEEDED)"), std::string::npos) << needed;
  EXPECT_EQ(needed.find("libsimgrid"), std::string::npos) << needed;
  const fs::path module = fs::path(STEPSIM_BINARY).parent_path() / "stepsim_engine.so";
  EXPECT_NE(Command("readelf -d '" + module.string() + "'").find("libsimgrid"),
            std::string::npos);
}

TEST(EngineLoaderTest, WithoutTheModuleOnlySimulatingFails) {
  char dir_template[] = "/tmp/stepsim_loader_XXXXXX";
  const fs::path dir = mkdtemp(dir_template);
  fs::copy_file(STEPSIM_BINARY, dir / "stepsim");
  const std::string source = STEPSIM_SOURCE_DIR;
  auto run = [&](const std::string& args) {
    return std::system(("cd '" + source + "' && '" + (dir / "stepsim").string() + "' " + args +
                        " >'" + (dir / "out").string() + "' 2>'" + (dir / "err").string() + "'")
                           .c_str());
  };
  const int params = run("params scenarios/pp4_tiny.textproto");
  EXPECT_TRUE(WIFEXITED(params) && WEXITSTATUS(params) == 0) << Slurp(dir / "err");
  EXPECT_NE(Slurp(dir / "out").find("tiny-moe"), std::string::npos);
  const int simulate = run("run scenarios/pp4_tiny.textproto");
  EXPECT_TRUE(WIFEXITED(simulate) && WEXITSTATUS(simulate) == 1);
  EXPECT_EQ(Slurp(dir / "err").rfind("stepsim: cannot load the simulation engine " +
                                         (dir / "stepsim_engine.so").string() + ": ",
                                     0),
            0u)
      << Slurp(dir / "err");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace stepsim::testing
