// The stepsim command end to end: what a user types, what comes back, and
// the exit codes (0 success, 1 failed run, 2 bad input or usage).
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "report.pb.h"
#include "tests/e2e/run_cli.h"

namespace stepsim::testing {
namespace {

TEST(CliTest, ParamsJsonHoldsThePaperFigures) {
  CliResult r = RunCli("params scenarios/deepseek_v3_paper.textproto --json -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ParamsReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.out;
  EXPECT_EQ(report.total_params(), 671'026'404'352);
  EXPECT_EQ(report.mtp_params(), 0);
  ASSERT_EQ(report.stages_size(), 16);
  EXPECT_EQ(report.stages(1).stage(), 1);
  EXPECT_EQ(report.stages(1).params(), 46'029'144'064);
  const DeviceParams& d = report.stages(1).device();
  EXPECT_EQ(d.params(), 6'250'364'928);
  EXPECT_EQ(d.modules().at("mla"), 429'654'016);
  EXPECT_EQ(d.modules().at("moe"), 5'820'645'376);
  EXPECT_EQ(d.modules().at("norms"), 65'536);
  // One of each slot kind (see params_test.cc for the arithmetic).
  EXPECT_EQ(report.layer_params().at("moe_layer"), 11'507'286'016);
  EXPECT_EQ(report.layer_params().at("dense_layer"), 583'483'392);
  EXPECT_EQ(report.layer_params().at("embedding"), 926'679'040);
  EXPECT_EQ(report.layer_params().at("loss"), 926'679'040 + 7168);
  // 2, 4 and 8 bytes per parameter without ZeRO.
  EXPECT_EQ(d.weights_bytes(), 2 * 6'250'364'928);
  EXPECT_EQ(d.gradients_bytes(), 4 * 6'250'364'928);
  EXPECT_EQ(d.optimizer_bytes(), 8 * 6'250'364'928);
}

TEST(CliTest, ParamsTableShowsGib) {
  CliResult r = RunCli("params scenarios/deepseek_v3_paper.textproto --set zero.stage=3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("671,026,404,352 parameters"), std::string::npos) << r.out;
  // Stage 1: 85.74 GiB whole; device 1.38 / 2.76 / 5.52 / 9.66 GiB.
  EXPECT_NE(r.out.find("t4-t7    46,029,144,064  85.74    6,250,364,928         1.38       2.76"
                       "       5.52        9.66"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("GiB = 2^30 bytes"), std::string::npos);
}

TEST(CliTest, JsonToAFileKeepsTheTable) {
  char path[] = "/tmp/stepsim_json_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  CliResult r = RunCli("params scenarios/deepseek_v2.textproto --json " + std::string(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("235,741,434,880 parameters"), std::string::npos);
  ParamsReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(Slurp(path), &report).ok());
  EXPECT_EQ(report.total_params(), 235'741'434'880);
  std::remove(path);
}

TEST(CliTest, SameInputSameBytes) {
  CliResult a = RunCli("params scenarios/deepseek_v3.textproto --json -");
  CliResult b = RunCli("params scenarios/deepseek_v3.textproto --json -");
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
}

TEST(CliTest, SyntaxErrorIsLocatedAndExitsTwo) {
  char path[] = "/tmp/stepsim_bad_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "model { preset: \"deepseek-v3\" }\nparallel { pipline: 2 }\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  CliResult r = RunCli("params " + std::string(path));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "stepsim: " + std::string(path) +
                       ":2:12: unknown field \"pipline\" in message Parallel\n"
                       "  parallel { pipline: 2 }\n"
                       "             ^\n");
  std::remove(path);
}

TEST(CliTest, InvalidConfigurationListsEveryProblem) {
  CliResult r = RunCli("params scenarios/deepseek_v3_paper.textproto --set parallel.ep=7 "
                       "--set zero.stage=9");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "stepsim: --set parallel.ep=7: parallel.ep: 7 does not divide "
            "model.num_routed_experts (256)\n"
            "--set parallel.ep=7: parallel.ep: EP*ETP = 7 does not divide DP*CP*TP = 64, so the "
            "expert data-parallel size EDP is not whole\n"
            "--set zero.stage=9: zero.stage: 9 is outside 0..3\n");
  EXPECT_EQ(r.out, "");
}

TEST(CliTest, MissingFileDirectoryAndBadUsage) {
  CliResult missing = RunCli("params no/such.textproto");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "stepsim: no/such.textproto: no such file\n");
  CliResult dir = RunCli("params scenarios");
  EXPECT_EQ(dir.exit_code, 2);
  EXPECT_EQ(dir.err, "stepsim: scenarios: is a directory, not a file\n");
  CliResult flag = RunCli("params scenarios/pp4_tiny.textproto --frobnicate");
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_NE(flag.err.find("frobnicate"), std::string::npos) << flag.err;
  CliResult none = RunCli("");
  EXPECT_EQ(none.exit_code, 2);
  CliResult set = RunCli("params scenarios/pp4_tiny.textproto --set parallel.pp");
  EXPECT_EQ(set.exit_code, 2);
  EXPECT_EQ(set.err, "stepsim: --set \"parallel.pp\": expected path=value\n");
}

TEST(CliTest, ActivationsJsonPerStage) {
  CliResult r = RunCli("activations scenarios/deepseek_v3_paper.textproto "
                       "--set recompute.policy=FULL --json -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ActivationsReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.out;
  ASSERT_EQ(report.stages_size(), 16);
  // 8bsh + 8bs N_r = 8*4096*7168 + 8*4096*8 at b = 1.
  EXPECT_EQ(report.stages(1).per_microbatch_bytes(), 8 * 4096 * 7168 + 8 * 4096 * 8);
  EXPECT_EQ(report.stages(1).modules().at("mla") + report.stages(1).modules().at("moe"),
            report.stages(1).per_microbatch_bytes());
  EXPECT_EQ(report.recompute(), "FULL");
}

TEST(CliTest, ActivationsTable) {
  CliResult r = RunCli("activations scenarios/pp4_tiny.textproto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("kept bytes by module"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("t2-t3"), std::string::npos) << r.out;
}

TEST(CliTest, DagWritesGraphviz) {
  char path[] = "/tmp/stepsim_dot_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  CliResult r = RunCli("dag scenarios/pp4_tiny.textproto --stage 1 --dot " + std::string(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stage 1 (t2-t3):"), std::string::npos) << r.out;
  const std::string dot = Slurp(path);
  EXPECT_EQ(dot.substr(0, 10), "digraph G ");
  EXPECT_NE(dot.find("B L3.moe.combine"), std::string::npos);
  std::remove(path);
  CliResult bad = RunCli("dag scenarios/pp4_tiny.textproto --stage 9 --dot -");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "stepsim: --stage: 9 is not a stage of this layout (0..3)\n");
}

TEST(CliTest, UnknownSelectiveModuleIsNamed) {
  CliResult r = RunCli("activations scenarios/pp4_tiny.textproto --set recompute.policy=SELECTIVE "
                       "--set recompute.modules=attn");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "stepsim: --set recompute.modules=attn: recompute.modules: unknown module \"attn\" "
            "(expected one of core_attn, mla_up_proj, moe_act, layernorm, mlp, moe, "
            "shared_experts)\n");
}

TEST(CliTest, HugeAndBinaryFilesAreRefused) {
  char path[] = "/tmp/stepsim_huge_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 17 << 20), 0);  // 17 MiB of zeros
  close(fd);
  CliResult huge = RunCli("params " + std::string(path));
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_EQ(huge.err, "stepsim: " + std::string(path) +
                          ": 17825792 bytes is larger than the 16 MiB this input may have\n");
  ASSERT_EQ(truncate(path, 100), 0);  // 100 NUL bytes
  CliResult binary = RunCli("params " + std::string(path));
  EXPECT_EQ(binary.exit_code, 2);
  EXPECT_EQ(binary.err,
            "stepsim: " + std::string(path) + ": not a text file (contains a NUL byte)\n");
  std::remove(path);
}

TEST(CliTest, HelpExitsZero) {
  CliResult r = RunCli("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("params"), std::string::npos);
}

}  // namespace
}  // namespace stepsim::testing
