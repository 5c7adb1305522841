// The command as a determined user attacks it: devices and FIFOs, outputs
// that would destroy inputs or each other, full disks, runs that would take
// hours, hostile text, closed streams. Every case ends with a clear message
// and exit 2 (bad input) or 1 (the run failed), never a hang or a partial
// file. Commands run under `timeout`, so a hang fails the test (exit 124).
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "report.pb.h"
#include "sim/budget.h"
#include "tests/e2e/run_cli.h"
#include "tests/test_util.h"

namespace stepsim::testing {
namespace {

std::string TempDir() {
  char dir[] = "/tmp/stepsim_hostile_XXXXXX";
  return mkdtemp(dir);
}

// stepsim with `args` under a 20-second timeout.
CliResult Stepsim(const std::string& args) { return RunShell("timeout 20 \"$S\" " + args); }

std::string Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const char kTiny[] = "scenarios/pp4_tiny.textproto";

TEST(HostileCliTest, DevicesAreRefusedAtOnce) {
  for (const char* args : {"run /dev/zero", "run /dev/urandom", "check-trace /dev/zero",
                           "params /dev/stdin"}) {
    CliResult r = Stepsim(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    // /dev/stdin is whatever the test runner gave: a device or a pipe.
    const bool refused = r.err.find(": is a device, not a regular file") != std::string::npos ||
                         r.err.find(": is a FIFO") != std::string::npos;
    EXPECT_TRUE(refused) << args << ": " << r.err;
  }
}

TEST(HostileCliTest, FifosNeverBlock) {
  const std::string dir = TempDir();
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string refused = ": is a FIFO (named pipe), not a regular file";
  for (const std::string& args :
       {"run " + fifo, std::string("run ") + kTiny + " --schedule " + fifo,
        std::string("run ") + kTiny + " --set schedule.file=" + fifo, "check-trace " + fifo,
        std::string("run ") + kTiny + " --report " + fifo,
        std::string("run ") + kTiny + " --chrome-trace " + fifo,
        std::string("schedule ") + kTiny + " --out " + fifo,
        std::string("params ") + kTiny + " --json " + fifo}) {
    CliResult r = Stepsim(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(refused), std::string::npos) << args << ": " << r.err;
  }
}

TEST(HostileCliTest, OutputsNeverDestroyInputs) {
  const std::string dir = TempDir();
  const std::string scenario = dir + "/s.textproto";
  const std::string text = Slurp(std::string(STEPSIM_SOURCE_DIR) + "/" + kTiny);
  Write(scenario, text);
  for (const std::string& args : {"run " + scenario + " --report " + scenario,
                                  "run " + scenario + " --timeline " + dir + "/./s.textproto",
                                  "schedule " + scenario + " --out " + scenario,
                                  "params " + scenario + " --json " + scenario}) {
    CliResult r = Stepsim(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_NE(r.err.find("of this command; refusing to overwrite it"), std::string::npos) << r.err;
  }
  EXPECT_EQ(Slurp(scenario), text);
  // The schedule file, given or named by the scenario, is an input too.
  CliResult schedule = Stepsim("schedule " + scenario + " --out " + dir + "/s.schedule");
  ASSERT_EQ(schedule.exit_code, 0) << schedule.err;
  const std::string written = Slurp(dir + "/s.schedule");
  CliResult over = Stepsim("run " + scenario + " --schedule " + dir + "/s.schedule --report " + dir +
                       "/s.schedule");
  EXPECT_EQ(over.exit_code, 2) << over.err;
  CliResult named = Stepsim("run " + scenario + " --set schedule.file=s.schedule --chrome-trace " +
                        dir + "/s.schedule");
  EXPECT_EQ(named.exit_code, 2) << named.err;
  EXPECT_EQ(Slurp(dir + "/s.schedule"), written);
}

TEST(HostileCliTest, OutputsNeverCollide) {
  const std::string dir = TempDir();
  CliResult same = Stepsim(std::string("run ") + kTiny + " --report " + dir + "/x.json --chrome-trace " +
                       dir + "/x.json");
  EXPECT_EQ(same.exit_code, 2);
  EXPECT_EQ(same.err, "stepsim: --report and --chrome-trace both write " + dir +
                          "/x.json; give each output its own file\n");
  CliResult both = Stepsim(std::string("run ") + kTiny + " --report - --chrome-trace -");
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_EQ(both.out, "");
  EXPECT_EQ(both.err, "stepsim: --report and --chrome-trace both write to standard output (-); "
                      "give one of them a file\n");
  EXPECT_TRUE(FilesIn(dir).empty());
}

TEST(HostileCliTest, AFullDiskLeavesNoPartialOutput) {
  const std::string dir = TempDir();
  Write(dir + "/r.json", "the old report");
  // A file-size limit of 64 KiB: the report fits, the trace does not.
  CliResult r = RunShell("ulimit -f 128 && timeout 20 \"$S\" run scenarios/deepseek_v3.textproto "
                      "--report " + dir + "/r.json --chrome-trace " + dir + "/t.json --timeline " +
                      dir + "/c.csv");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err, "stepsim: --chrome-trace " + dir + "/t.json: write failed: File too large\n");
  // No trace, no CSV, no temporaries, and the report was not replaced.
  EXPECT_EQ(FilesIn(dir), std::set<std::string>{"r.json"});
  EXPECT_EQ(Slurp(dir + "/r.json"), "the old report");
  // Standard output full: the files written before are removed as well.
  CliResult full = Stepsim(std::string("run ") + kTiny + " --report " + dir +
                       "/new.json --chrome-trace - >/dev/full");
  EXPECT_EQ(full.exit_code, 1);
  EXPECT_EQ(full.err, "stepsim: --chrome-trace: writing to standard output failed: No space left "
                      "on device\n");
  EXPECT_EQ(FilesIn(dir), std::set<std::string>{"r.json"});
}

TEST(HostileCliTest, ARealFullDiskLeavesNoPartialOutput) {
  // A 256 KiB tmpfs in a private mount namespace (unshare -rm needs no root
  // where user namespaces are enabled): the report fits, the trace does not.
  if (RunShell("unshare -rm true").exit_code != 0) {
    GTEST_SKIP() << "no mount namespace here; AFullDiskLeavesNoPartialOutput covers the path";
  }
  const std::string dir = TempDir();
  CliResult r = RunShell("unshare -rm sh -c 'mount -t tmpfs -o size=256k tmpfs " + dir +
                         " && timeout 20 \"$S\" run scenarios/deepseek_v3.textproto --report " +
                         dir + "/r.json --chrome-trace " + dir + "/t.json >/dev/null; echo \"exit $?\"; "
                         "ls -A " + dir + "'");
  EXPECT_EQ(r.err, "stepsim: --chrome-trace " + dir +
                       "/t.json: write failed: No space left on device\n");
  EXPECT_EQ(r.out, "exit 1\n");  // and the folder is empty
}

TEST(HostileCliTest, UnwritableOutputsAreRefusedBeforeSimulating) {
  CliResult r = Stepsim("run scenarios/deepseek_v3.textproto --report /proc/r.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");  // nothing was simulated
  EXPECT_EQ(r.err.substr(0, 55), "stepsim: --report /proc/r.json: cannot write in folder ");
  CliResult missing = Stepsim(std::string("run ") + kTiny + " --report no/such/r.json");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "stepsim: --report no/such/r.json: folder no/such does not exist\n");
}

TEST(HostileCliTest, RunsThatWouldTakeHoursAreRefusedAtOnce) {
  // Simulating 20,000 micro-batches of V3 takes about half a minute since
  // the engine became linear; writing their timeline too, minutes
  // (sim/budget.cc). Refused before the output is created.
  const std::string dir = TempDir();
  CliResult v3 = Stepsim("run scenarios/deepseek_v3.textproto --set batch.num_microbatches=20000 "
                         "--timeline " + dir + "/t.csv");
  EXPECT_EQ(v3.exit_code, 2);
  EXPECT_EQ(v3.err.substr(0, 120),
            "stepsim: --set batch.num_microbatches=20000: batch.num_microbatches: 20,000 "
            "micro-batches on 16 stages would take about ");
  EXPECT_NE(v3.err.find("--max-seconds or lift it with --no-budget"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir + "/t.csv"));
  CliResult huge = Stepsim("run scenarios/deepseek_v3.textproto --set batch.num_microbatches=200000");
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_NE(huge.err.find("events a run may hold in memory"), std::string::npos) << huge.err;
  // The limit is the user's: a tiny one refuses a small run, --no-budget lifts it.
  CliResult strict = Stepsim(std::string("run ") + kTiny + " --max-seconds 0.001");
  EXPECT_EQ(strict.exit_code, 2);
  EXPECT_NE(strict.err.find("more than the limit of 1 s"), std::string::npos) << strict.err;
  CliResult lifted = Stepsim(std::string("run ") + kTiny + " --no-budget --report -");
  EXPECT_EQ(lifted.exit_code, 0) << lifted.err;
  CliResult both = Stepsim(std::string("run ") + kTiny + " --no-budget --max-seconds 5");
  EXPECT_EQ(both.exit_code, 2);
}

// compare has run's budget, for its schedules together: the sum of their
// estimates (each of these alone, about half a minute, is within it).
TEST(HostileCliTest, ComparisonsThatWouldTakeHoursAreRefusedAtOnce) {
  CliResult v3 = Stepsim("compare scenarios/deepseek_v3.textproto --schedules one_f_one_b,gpipe,"
                         "zb_h1 --set batch.num_microbatches=20000");
  EXPECT_EQ(v3.exit_code, 2);
  EXPECT_EQ(v3.out, "");  // nothing was simulated
  const std::string refused =
      "stepsim: compare ONE_F_ONE_B, GPIPE, ZB_H1: batch.num_microbatches: 20,000 micro-batches "
      "on 16 stages would take about ";
  EXPECT_EQ(v3.err.substr(0, refused.size()), refused);
  EXPECT_NE(v3.err.find("--max-seconds or lift it with --no-budget"), std::string::npos);
  // A limit above either schedule's estimate and below their sum: one runs,
  // both are refused.
  double one = 0, sum = 0;
  for (const char* kind : {"GPIPE", "ONE_F_ONE_B"}) {
    const graph::Config c =
        LoadScenario("pp4_tiny.textproto", {std::string("schedule.kind=") + kind});
    const double seconds = sim::EstimateRunCost(c, false).seconds;
    one = std::max(one, seconds);
    sum += seconds;
  }
  const std::string limit = " --max-seconds " + std::to_string((one + sum) / 2);
  CliResult alone = Stepsim(std::string("compare ") + kTiny + " --schedules gpipe" + limit);
  EXPECT_EQ(alone.exit_code, 0) << alone.err;
  CliResult pair =
      Stepsim(std::string("compare ") + kTiny + " --schedules gpipe,one_f_one_b" + limit);
  EXPECT_EQ(pair.exit_code, 2) << pair.out;
  EXPECT_EQ(pair.err.substr(0, 35), "stepsim: compare GPIPE, ONE_F_ONE_B") << pair.err;
  CliResult huge = Stepsim("compare scenarios/deepseek_v3.textproto --schedules zb_h1 "
                           "--set batch.num_microbatches=200000");
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_EQ(huge.err.substr(0, 16), "stepsim: ZB_H1: ") << huge.err;
  EXPECT_NE(huge.err.find("events a run may hold in memory"), std::string::npos) << huge.err;
  CliResult strict =
      Stepsim(std::string("compare ") + kTiny + " --schedules gpipe --max-seconds 0.001");
  EXPECT_EQ(strict.exit_code, 2);
  EXPECT_NE(strict.err.find("more than the limit of 1 s"), std::string::npos) << strict.err;
  CliResult lifted =
      Stepsim(std::string("compare ") + kTiny + " --schedules gpipe --no-budget --json -");
  EXPECT_EQ(lifted.exit_code, 0) << lifted.err;
  CliResult both = Stepsim(std::string("compare ") + kTiny + " --no-budget --max-seconds 5");
  EXPECT_EQ(both.exit_code, 2);
}

TEST(HostileCliTest, SemanticErrorsNameTheirPlace) {
  const std::string dir = TempDir();
  const std::string file = Write(dir + "/v3.textproto",
                                 "model { preset: \"deepseek-v3\" }\n"
                                 "parallel {\n  pp: 16\n  ep: 7\n}\nbatch { seq_len: 4096 }\n");
  CliResult r = Stepsim("params " + file + " --set zero.stage=9");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "stepsim: " + file + ":4:3: parallel.ep: 7 does not divide model.num_routed_experts "
            "(256)\n" + file + ":4:3: parallel.ep: EP*ETP = 7 does not divide DP*CP*TP = 1, so "
            "the expert data-parallel size EDP is not whole\n"
            "--set zero.stage=9: zero.stage: 9 is outside 0..3\n");
  const std::string preset = Write(dir + "/p.textproto", "batch { seq_len: 1 }\nmodel {\n  preset: \"nope\"\n}\n");
  CliResult unknown = Stepsim("params " + preset);
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err, "stepsim: " + preset + ":3:3: model.preset: unknown preset \"nope\" "
                         "(known: deepseek-v2, deepseek-v2-lite, deepseek-v3, gpt-22b, "
                         "llama-3-8b, llama-3.1-405b, llama-3.1-70b, mixtral-8x22b, mixtral-8x7b, "
                         "moonlight-16b-a3b, qwen3-30b-a3b)\n");
  // Errors found after loading, by the schedule generator, are placed too.
  CliResult zb = Stepsim(std::string("run ") + kTiny + " --set schedule.kind=ZB_H1 "
                     "--set batch.num_microbatches=2");
  EXPECT_EQ(zb.exit_code, 2);
  EXPECT_EQ(zb.err.substr(0, 77),
            "stepsim: --set batch.num_microbatches=2: batch.num_microbatches: ZB_H1 needs ");
  // A value of megabytes is not echoed in full.
  const std::string huge = Write(dir + "/h.textproto", "batch { seq_len: 1 }\nmodel { preset: \"" +
                                                            std::string(3 << 20, 'x') + "\" }\n");
  CliResult echoed = Stepsim("params " + huge);
  EXPECT_EQ(echoed.exit_code, 2);
  EXPECT_LT(echoed.err.size(), 1200u);
  EXPECT_NE(echoed.err.find("more bytes)"), std::string::npos);
}

TEST(HostileCliTest, TextEncoding) {
  const std::string dir = TempDir();
  const std::string text = Slurp(std::string(STEPSIM_SOURCE_DIR) + "/" + kTiny);
  const std::string bom = Write(dir + "/bom.textproto", "\xEF\xBB\xBF" + text);
  CliResult with_bom = Stepsim("params " + bom);
  EXPECT_EQ(with_bom.exit_code, 0) << with_bom.err;
  const std::string bad = Write(dir + "/bad.textproto", "name: \"a\xFF\"\n" + text.substr(text.find("\nmodel {") + 1));
  CliResult invalid = Stepsim("params " + bad + " --json -");
  EXPECT_EQ(invalid.exit_code, 2);
  EXPECT_EQ(invalid.err.substr(0, invalid.err.find('\n')),
            "stepsim: " + bad + ":1:9: invalid UTF-8 (byte 0xFF): stepsim reads text files as "
                                "UTF-8");
  CliResult set = Stepsim(std::string("params ") + kTiny + " --set \"$(printf 'name=a\\377')\"");
  EXPECT_EQ(set.exit_code, 2);
  EXPECT_NE(set.err.find("invalid UTF-8"), std::string::npos) << set.err;
  // A file name that is not UTF-8 names the scenario with U+FFFD, silently
  // dropping nothing and logging no protobuf error.
  std::string stripped = text;
  stripped.erase(0, stripped.find("\nmodel {") + 1);  // no name: the file name is used
  Write(dir + "/b\xFF" "d.textproto", stripped);
  CliResult named = Stepsim("run \"$(printf '" + dir + "/b\\377d.textproto')\" --report -");
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_EQ(named.err, "");
  RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(named.out, &report).ok());
  EXPECT_EQ(report.scenario(), "b\xEF\xBF\xBD" "d");
}

TEST(HostileCliTest, ScheduleNamesRoundTrip) {
  const std::string dir = TempDir();
  const std::string scenario = Write(dir + "/s.textproto",
                                     Slurp(std::string(STEPSIM_SOURCE_DIR) +
                                           "/scenarios/pp4_1f1b_golden.textproto"));
  Write(dir + "/mine.txt", "name: \"a \\\"quoted\\\" \\\\ name\"\n"
                           "rank 0: F0 F1 F2 F3 F4 F5 F6 F7 BW0 BW1 BW2 BW3 BW4 BW5 BW6 BW7\n"
                           "rank 1: F0 F1 F2 F3 F4 F5 F6 F7 BW0 BW1 BW2 BW3 BW4 BW5 BW6 BW7\n"
                           "rank 2: F0 F1 F2 F3 F4 F5 F6 F7 BW0 BW1 BW2 BW3 BW4 BW5 BW6 BW7\n"
                           "rank 3: F0 F1 F2 F3 F4 F5 F6 F7 BW0 BW1 BW2 BW3 BW4 BW5 BW6 BW7\n");
  for (const char* out : {"/x.textproto", "/x.txt"}) {
    CliResult written = Stepsim("schedule " + scenario + " --set schedule.file=mine.txt --out " + dir + out);
    ASSERT_EQ(written.exit_code, 0) << written.err;
    CliResult replayed = Stepsim("run " + scenario + " --schedule " + dir + out + " --report -");
    ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
    RunReport report;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(replayed.out, &report).ok());
    EXPECT_EQ(report.schedule(), "a \"quoted\" \\ name");
  }
}

TEST(HostileCliTest, OneVocabulary) {
  CliResult run = Stepsim(std::string("run ") + kTiny + " --set schedule.kind=gpipe --report -");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &report).ok());
  EXPECT_EQ(report.schedule(), "GPIPE");
  CliResult table = Stepsim(std::string("run ") + kTiny);
  EXPECT_NE(table.out.find("ONE_F_ONE_B, PP4"), std::string::npos) << table.out;
  CliResult compare = Stepsim(std::string("compare ") + kTiny + " --schedules gpipe --json -");
  ASSERT_EQ(compare.exit_code, 0) << compare.err;
  CompareReport c;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(compare.out, &c).ok());
  EXPECT_EQ(c.entries(0).schedule(), "GPIPE");
  EXPECT_EQ(c.entries(0).run().schedule(), "GPIPE");
  // What --set refuses, files refuse too, and the other way round.
  for (const char* set : {"schedule.kind=1f1b", "schedule.kind=2", "conventions.dropout=1",
                          "conventions.dropout=True"}) {
    EXPECT_EQ(Stepsim(std::string("params ") + kTiny + " --set " + set).exit_code, 2) << set;
  }
  const std::string dir = TempDir();
  std::string text = Slurp(std::string(STEPSIM_SOURCE_DIR) + "/" + kTiny);
  text.replace(text.find("kind: ONE_F_ONE_B"), 17, "kind: 2");
  EXPECT_EQ(Stepsim("params " + Write(dir + "/n.textproto", text)).exit_code, 2);
  text.replace(text.find("kind: 2"), 7, "kind: one_f_one_b");
  EXPECT_EQ(Stepsim("params " + Write(dir + "/l.textproto", text)).exit_code, 0);
}

TEST(HostileCliTest, APolicyChangeDropsTheOldPolicysModules) {
  CliResult r = Stepsim("run scenarios/deepseek_v3.textproto --set recompute.policy=FULL");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "stepsim: note: --set recompute.policy=FULL clears recompute.modules, which "
                   "only policy SELECTIVE uses\n");
}

TEST(HostileCliTest, TheCommandLine) {
  CliResult unknown = Stepsim("frobnicate x");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err, "stepsim: unknown command \"frobnicate\" (commands: params, activations, "
                         "dag, run, allocator-replay, schedule, compare, sweep, fit, merge, check-trace, validate, "
                         "plot, presets; stepsim --help explains them)\n");
  CliResult version = Stepsim("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out, "stepsim 0.1.0\n");
  CliResult verbose = Stepsim(std::string("run ") + kTiny + " -v");
  EXPECT_EQ(verbose.exit_code, 0) << verbose.err;
  EXPECT_NE(verbose.err.find("[info]"), std::string::npos);
  CliResult empty = Stepsim(std::string("run ") + kTiny + " --report ''");
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("--report: an empty file name"), std::string::npos) << empty.err;
  CliResult resolution = Stepsim(std::string("run ") + kTiny + " --timeline-resolution-us 5");
  EXPECT_EQ(resolution.exit_code, 2);
  EXPECT_NE(resolution.err.find("--timeline-resolution-us requires --timeline"), std::string::npos);
  const std::string dir = TempDir();
  ASSERT_EQ(symlink((dir + "/b").c_str(), (dir + "/a").c_str()), 0);
  ASSERT_EQ(symlink((dir + "/a").c_str(), (dir + "/b").c_str()), 0);
  CliResult loop = Stepsim("params " + dir + "/a");
  EXPECT_EQ(loop.exit_code, 2);
  EXPECT_EQ(loop.err, "stepsim: " + dir + "/a: too many levels of symbolic links (a symlink loop?)\n");
}

TEST(HostileCliTest, AClosedOrFullStdoutFails) {
  for (const char* redirect : {">&-", ">/dev/full"}) {
    CliResult run = Stepsim(std::string("run ") + kTiny + " " + redirect);
    EXPECT_EQ(run.exit_code, 1) << redirect;
    EXPECT_EQ(run.err, "stepsim: writing to standard output failed\n") << redirect;
    CliResult presets = Stepsim(std::string("presets ") + redirect);
    EXPECT_EQ(presets.exit_code, 1) << redirect;
  }
  // Nothing written to stdout: a closed stdout is no failure.
  const std::string dir = TempDir();
  CliResult quiet = Stepsim(std::string("schedule ") + kTiny + " --out " + dir + "/s.txt >&-");
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
}

TEST(HostileCliTest, TheReadmesCompareExampleRuns) {
  // README "Pipeline schedules": V3 with 32 micro-batches, three schedules.
  CliResult r = Stepsim("compare scenarios/deepseek_v3.textproto --set batch.num_microbatches=32 "
                        "--schedules one_f_one_b,zb_h1,dualpipe --json -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  CompareReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok());
  ASSERT_EQ(report.entries_size(), 3);
  for (const CompareEntry& e : report.entries()) {
    EXPECT_EQ(e.error(), "") << e.schedule();
    EXPECT_EQ(e.run().ranks_size(), 16) << e.schedule();
  }
}

}  // namespace
}  // namespace stepsim::testing
