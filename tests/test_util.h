// Helpers shared by the tests: scenario files from the source tree and a
// resolved Config from text.
#ifndef STEPSIM_TESTS_TEST_UTIL_H_
#define STEPSIM_TESTS_TEST_UTIL_H_

#include <dirent.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/overrides.h"
#include "graph/scenario_text.h"

namespace stepsim::testing {

inline std::string SourcePath(const std::string& relative) {
  return std::string(STEPSIM_SOURCE_DIR) + "/" + relative;
}

inline std::string ReadSource(const std::string& relative) {
  std::ifstream in(SourcePath(relative));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Parses scenarios/<name> and applies `sets`, without resolving. Fails the
// test on error.
inline Scenario ReadScenario(const std::string& name, const std::vector<std::string>& sets = {}) {
  const std::string path = "scenarios/" + name;
  StatusOr<Scenario> scenario = graph::ParseScenario(ReadSource(path), path);
  EXPECT_TRUE(scenario.ok()) << scenario.status().message();
  if (!scenario.ok()) return {};
  for (const std::string& s : sets) {
    Status status = graph::ApplyOverride(s, &*scenario);
    EXPECT_TRUE(status.ok()) << status.message();
  }
  return *scenario;
}

// Parses scenarios/<name>, applies `sets`, resolves. Fails the test on error.
inline graph::Config LoadScenario(const std::string& name,
                                  const std::vector<std::string>& sets = {}) {
  StatusOr<graph::Config> config = graph::Resolve(ReadScenario(name, sets));
  EXPECT_TRUE(config.ok()) << config.status().message();
  return config.ok() ? *config : graph::Config{};
}

// The names of the files in `dir` (hidden ones included).
inline std::set<std::string> FilesIn(const std::string& dir) {
  std::set<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.insert(name);
    }
    closedir(d);
  }
  return names;
}

// Resolves a scenario written inline; returns the status for error tests.
inline StatusOr<graph::Config> ResolveText(const std::string& text) {
  StatusOr<Scenario> scenario = graph::ParseScenario(text, "test.textproto");
  if (!scenario.ok()) return scenario.status();
  return graph::Resolve(*scenario);
}

}  // namespace stepsim::testing

#endif  // STEPSIM_TESTS_TEST_UTIL_H_
