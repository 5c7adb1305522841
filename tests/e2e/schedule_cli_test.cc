// Schedules from the command line: generate, write, replay, compare.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "report.pb.h"
#include "tests/e2e/run_cli.h"

namespace stepsim::testing {
namespace {

std::string TempPath(const std::string& suffix) {
  char dir[] = "/tmp/stepsim_sched_XXXXXX";
  return std::string(mkdtemp(dir)) + "/schedule" + suffix;
}

struct Case {
  const char* kind;
  const char* layout;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.kind; }

class RoundTripTest : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTripTest, GeneratedWrittenAndReplayedGiveTheSameSimulation) {
  const Case& c = GetParam();
  const std::string scenario = std::string("run scenarios/pp4_1f1b_golden.textproto ") +
                               "--set model.num_layers=8 --set batch.num_microbatches=8 " +
                               "--set schedule.kind=" + c.kind + " --set parallel.layout='" +
                               c.layout + "'";
  CliResult generated = RunCli(scenario + " --report -");
  ASSERT_EQ(generated.exit_code, 0) << generated.err;
  for (const char* suffix : {".txt", ".textproto"}) {
    const std::string path = TempPath(suffix);
    std::string write = scenario + " --report -";
    write.replace(0, 3, "schedule");
    write.replace(write.find(" --report -"), 11, " --out " + path);
    CliResult written = RunCli(write);
    ASSERT_EQ(written.exit_code, 0) << written.err;
    CliResult replayed = RunCli(scenario + " --schedule " + path + " --report -");
    ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
    EXPECT_EQ(replayed.out, generated.out) << c.kind << suffix;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Schedules, RoundTripTest,
    ::testing::Values(Case{"GPIPE", "Ett|tt|tt|ttL"}, Case{"ONE_F_ONE_B", "Ett|tt|tt|ttL"},
                      Case{"INTERLEAVED_ONE_F_ONE_B", "Et|t|t|t|t|t|t|tL"},
                      Case{"ZB_H1", "Ett|tt|tt|ttL"}, Case{"ZB_H2", "Ett|tt|tt|ttL"},
                      Case{"DUALPIPE", "Ett|tt|tt|ttL"},
                      Case{"DUALPIPE_V", "Et|t|t|t|t|t|t|tL"}),
    [](const ::testing::TestParamInfo<Case>& param) { return std::string(param.param.kind); });

TEST(ScheduleCliTest, DeadlockingFileIsNamedQuickly) {
  const std::string path = TempPath(".txt");
  // Rank 2 waits for micro-batch 0's gradient before it sends micro-batch
  // 1's activation; rank 3 wants micro-batch 1 first.
  std::ofstream(path) << "rank 0: F0 F1 BW0 BW1\n"
                         "rank 1: F0 F1 BW0 BW1\n"
                         "rank 2: F0 BW0 F1 BW1\n"
                         "rank 3: F1 BW1 F0 BW0\n";
  const auto start = std::chrono::steady_clock::now();
  CliResult r = RunCli("run scenarios/pp4_1f1b_golden.textproto --set batch.num_microbatches=2 "
                       "--schedule " + path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_LT(seconds, 1.0);
  EXPECT_EQ(r.err,
            "stepsim: deadlock: the schedule cannot complete at 300.000000 us\n"
            "  rank 0: BW0 waits for the gradient of micro-batch 0 from stage 1 (rank 1)\n"
            "  rank 1: BW0 waits for the gradient of micro-batch 0 from stage 2 (rank 2)\n"
            "  rank 2: BW0 waits for the gradient of micro-batch 0 from stage 3 (rank 3)\n"
            "  rank 3: F1 waits for the activation of micro-batch 1 from stage 2 (rank 2)\n");
}

TEST(ScheduleCliTest, BadScheduleFileIsLocated) {
  const std::string path = TempPath(".txt");
  std::ofstream(path) << "name: broken\nrank 0: F0 BW0 F1 BX1\n";
  CliResult r = RunCli("run scenarios/pp4_1f1b_golden.textproto --set batch.num_microbatches=2 "
                       "--schedule " + path);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.substr(0, 9 + path.size() + 7), "stepsim: " + path + ":2:19: ") << r.err;
}

TEST(ScheduleCliTest, ScenarioScheduleFileIsRelativeToTheScenario) {
  char dir[] = "/tmp/stepsim_rel_XXXXXX";
  const std::string folder = mkdtemp(dir);
  CliResult schedule = RunCli("schedule scenarios/pp4_1f1b_golden.textproto --out " + folder +
                              "/mine.txt");
  ASSERT_EQ(schedule.exit_code, 0) << schedule.err;
  std::ifstream golden(std::string(STEPSIM_SOURCE_DIR) + "/scenarios/pp4_1f1b_golden.textproto");
  std::ofstream(folder + "/scenario.textproto") << golden.rdbuf();
  CliResult replayed =
      RunCli("run " + folder + "/scenario.textproto --set schedule.file=mine.txt --report -");
  ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
  RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(replayed.out, &report).ok());
  EXPECT_DOUBLE_EQ(report.step_time_us(), 3300.448);  // as golden_test.cc derives it
}

TEST(ScheduleCliTest, CompareTabulatesEverySchedule) {
  CliResult r = RunCli("compare scenarios/pp4_1f1b_golden.textproto --set model.num_layers=8 "
                       "--set parallel.layout='Ett|tt|tt|ttL' --set batch.num_microbatches=8 "
                       "--set timing.backward_input_us=100 --set timing.backward_weight_us=100 "
                       "--schedules one_f_one_b,zb_h1,gpipe,DUALPIPE,interleaved_one_f_one_b --json -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  CompareReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.out;
  ASSERT_EQ(report.entries_size(), 5);
  EXPECT_EQ(report.entries(0).schedule(), "ONE_F_ONE_B");
  // 1F1B: (8 + 3) * 300 us; ZB-H1: 8 * 300 + 3 * 100 us; then the last
  // rank's optimizer step over its 2 layers, final norm and head, 2 * 33,472
  // + 128 + 16,384 = 83,456 parameters at 30 B each (golden_test.cc) and
  // 3.35e12 B/s: 0.74737 us, 0.747 in whole nanoseconds.
  EXPECT_DOUBLE_EQ(report.entries(0).run().step_time_us(), 3300.747);
  EXPECT_DOUBLE_EQ(report.entries(1).run().step_time_us(), 2700.747);
  EXPECT_DOUBLE_EQ(report.entries(2).run().step_time_us(), 3300.747);
  EXPECT_TRUE(report.entries(3).error().empty());
  // Interleaved needs more stages than ranks: an explained error, not a crash.
  EXPECT_NE(report.entries(4).error().find("at least 2 chunks per rank"), std::string::npos);
  CliResult table = RunCli("compare scenarios/pp4_1f1b_golden.textproto --schedules one_f_one_b,gpipe");
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("ONE_F_ONE_B"), std::string::npos);
  CliResult bad = RunCli("compare scenarios/pp4_1f1b_golden.textproto --schedules 2f2b");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "stepsim: --schedules: unknown value \"2f2b\" (expected one of GPIPE, "
                     "ONE_F_ONE_B, INTERLEAVED_ONE_F_ONE_B, ZB_H1, ZB_H2, DUALPIPE, DUALPIPE_V)\n");
  // The scenario's own kind need not fit: the schedules compared decide.
  CliResult other = RunCli("compare scenarios/pp4_1f1b_golden.textproto --set parallel.pp=2 "
                           "--set parallel.layout='Ett|ttL' --set schedule.kind=DUALPIPE_V "
                           "--schedules one_f_one_b");
  EXPECT_EQ(other.exit_code, 0) << other.err;
}

}  // namespace
}  // namespace stepsim::testing
