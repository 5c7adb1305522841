// stepsim validate end to end: the shipped cases pass with their errors
// printed and the JSON the README documents; bad cases are refused with
// file:line:col.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "tests/e2e/run_cli.h"

namespace stepsim::testing {
namespace {

std::string TempDir() {
  char dir_template[] = "/tmp/stepsim_validate_XXXXXX";
  return mkdtemp(dir_template);
}

std::string Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

// A small case around the golden scenario (paths relative to the case).
std::string Case(const std::string& measured) {
  return "name: \"small\"\nsource: \"a test\"\ntolerance: 0.05\n"
         "scenario_file: \"" + std::string(STEPSIM_SOURCE_DIR) +
         "/scenarios/pp4_1f1b_golden.textproto\"\n" + measured;
}

TEST(ValidateCliTest, ShippedCasesPassWithTheirErrorsInJson) {
  CliResult r = RunCli("validate scenarios/validation/megatron_ci_gpt3_7b_tp1_pp4_vpp8.textproto "
                       "--json -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["cases"].size(), 1u);
  const auto& c = j["cases"][0];
  EXPECT_EQ(c["name"], "megatron_ci_gpt3_7b_tp1_pp4_vpp8");
  EXPECT_EQ(c["source"].get<std::string>().rfind("NVIDIA/Megatron-LM", 0), 0u);
  ASSERT_EQ(c["measurements"].size(), 2u);
  for (const auto& m : c["measurements"]) {
    EXPECT_EQ(m["pp_rank"], 3);
    const double error = (m["predicted_bytes"].get<double>() - m["measured_bytes"].get<double>()) /
                         m["measured_bytes"].get<double>();
    EXPECT_DOUBLE_EQ(m["error"].get<double>(), error);
    EXPECT_LE(std::abs(error), 0.05);
  }
  EXPECT_EQ(c["measurements"][0]["metric"], "PEAK_ALLOCATED");
  EXPECT_EQ(c["measurements"][0]["measured_bytes"], 60720852992);
}

TEST(ValidateCliTest, AMissIsExitOneAndPrinted) {
  const std::string dir = TempDir();
  // The golden run's rank 0 peaks far above 1,000 B.
  const std::string path = Write(dir + "/miss.textproto",
                                 Case("measured { metric: PEAK_ALLOCATED pp_rank: 0 bytes: 1000 }\n"));
  CliResult r = RunCli("validate " + path);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("MISS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("validation: 0 of 1 measurements"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

TEST(ValidateCliTest, BadCasesNameTheirPlace) {
  const std::string dir = TempDir();
  const std::string none = Write(dir + "/none.textproto", Case(""));
  CliResult r = RunCli("validate " + none);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "stepsim: " + none + ":1:1: case \"small\" has no measured { ... } entries");

  // Places point at the field: line 5 is the measured entry, col 35 its pp_rank.
  const std::string rank = Write(dir + "/rank.textproto",
                                 Case("measured { metric: PEAK_ALLOCATED pp_rank: 9 bytes: 5 }\n"));
  r = RunCli("validate " + rank);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "stepsim: " + rank + ":5:35: measured: pp_rank 9 is outside the pipeline "
            "(parallel.pp = 4)");

  // With allocator.kind NONE reserved memory cannot be predicted.
  const std::string reserved = Write(
      dir + "/reserved.textproto",
      Case("set: \"allocator.kind=NONE\"\nmeasured { metric: PEAK_RESERVED pp_rank: 0 bytes: 5 }\n"));
  r = RunCli("validate " + reserved);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "stepsim: " + reserved + ":6:12: measured: PEAK_RESERVED needs reserved memory, which "
            "this scenario cannot produce (allocator.kind NONE)");

  const std::string syntax = Write(dir + "/syntax.textproto", "name: \"x\"\ntolerance: 0.05\nmeasured {\n");
  r = RunCli("validate " + syntax);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("stepsim: " + syntax + ":4:1: ", 0), 0u) << r.err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stepsim::testing
