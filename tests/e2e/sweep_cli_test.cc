// stepsim sweep, fit and merge from the command line, and run --fail-if-oom.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "report.pb.h"
#include "tests/e2e/run_cli.h"

namespace stepsim::testing {
namespace {

std::string TempDir() {
  char dir[] = "/tmp/stepsim_sweep_XXXXXX";
  return mkdtemp(dir);
}

template <typename Message>
Message FromJson(const std::string& json) {
  Message m;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &m).ok()) << json.substr(0, 500);
  return m;
}

TEST(SweepCliTest, ARowEqualsRunOfTheSameConfiguration) {
  CliResult sweep = RunCli("sweep scenarios/deepseek_v3.textproto --vary zero.stage=0,1 "
                           "--vary schedule.kind=ONE_F_ONE_B,GPIPE --json -");
  ASSERT_EQ(sweep.exit_code, 0) << sweep.err;
  const SweepReport report = FromJson<SweepReport>(sweep.out);
  ASSERT_EQ(report.configs_size(), 4);
  for (const SweepConfig& c : report.configs()) {
    std::string sets;
    for (const auto& [path, value] : c.overrides()) sets += " --set " + path + "=" + value;
    CliResult run = RunCli("run scenarios/deepseek_v3.textproto" + sets + " --report -");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const RunReport r = FromJson<RunReport>(run.out);
    EXPECT_EQ(c.step_time_us(), r.step_time_us()) << sets;
    int64_t peak = -1, peak_rank = -1;
    bool fits = true;
    double bubble = 0;
    for (const RankReport& k : r.ranks()) {
      if (k.peak_bytes() > peak) peak = k.peak_bytes(), peak_rank = k.pp_rank();
      fits = fits && k.fits();
      bubble += k.bubble_fraction();
    }
    EXPECT_EQ(c.max_peak_bytes(), peak) << sets;
    EXPECT_EQ(c.peak_rank(), peak_rank) << sets;
    EXPECT_EQ(c.fits(), fits) << sets;
    EXPECT_DOUBLE_EQ(c.bubble_fraction(), bubble / r.ranks_size()) << sets;
    EXPECT_EQ(c.schedule(), r.schedule());
    // 1 sequence of 4,096 tokens x 120 micro-batches x DP 128 per step, on
    // 2,048 GPUs.
    EXPECT_DOUBLE_EQ(c.tokens_per_s_per_gpu(),
                     4096.0 * 120 * 128 / (r.step_time_us() * 1e-6) / 2048);
  }
}

TEST(SweepCliTest, TheTableIsSortedAndNamesInvalidCombinations) {
  CliResult r = RunCli("sweep scenarios/pp4_tiny.textproto --vary schedule.kind=GPIPE,ZB_H1 "
                       "--vary batch.num_microbatches=2,8");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("3 of 4 configurations simulated, 3 fit"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ZB_H1     2  invalid: batch.num_microbatches: ZB_H1 needs at least 4"),
            std::string::npos)
      << r.out;
}

TEST(SweepCliTest, BadVariesAndShardsAreNamed) {
  CliResult path = RunCli("sweep scenarios/pp4_tiny.textproto --vary parallel.ppp=2,4");
  EXPECT_EQ(path.exit_code, 2);
  EXPECT_NE(path.err.find("--vary parallel.ppp: unknown field \"ppp\" in parallel"),
            std::string::npos)
      << path.err;
  CliResult value = RunCli("sweep scenarios/pp4_tiny.textproto --vary zero.stage=1,x");
  EXPECT_EQ(value.exit_code, 2);
  EXPECT_NE(value.err.find("--vary zero.stage: \"x\" is not an integer"), std::string::npos)
      << value.err;
  CliResult empty = RunCli("sweep scenarios/pp4_tiny.textproto --vary zero.stage=");
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("--vary zero.stage: no values"), std::string::npos) << empty.err;
  CliResult shard = RunCli("sweep scenarios/pp4_tiny.textproto --vary zero.stage=0,1 --shard 3/2");
  EXPECT_EQ(shard.exit_code, 2);
  EXPECT_NE(shard.err.find("--shard \"3/2\": shard 3 is out of range 1..2"), std::string::npos)
      << shard.err;
  CliResult many = RunCli("sweep scenarios/pp4_tiny.textproto --vary zero.stage=0,1 --shard 1/3");
  EXPECT_EQ(many.exit_code, 2);
  EXPECT_NE(many.err.find("the sweep has only 2 configurations, fewer than 3 shards"),
            std::string::npos)
      << many.err;
}

TEST(SweepCliTest, MergedShardsEqualTheWholeSweep) {
  const std::string dir = TempDir();
  const std::string space = "sweep scenarios/pp4_tiny.textproto --vary zero.stage=0,1,2,3 "
                            "--vary schedule.kind=ONE_F_ONE_B,GPIPE,ZB_H2";
  CliResult whole = RunCli(space + " -j 1 --json " + dir + "/whole.json --csv " + dir +
                           "/whole.csv");
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  std::string files;
  for (int k = 1; k <= 3; ++k) {
    const std::string file = dir + "/shard" + std::to_string(k) + ".textproto";
    CliResult part = RunCli(space + " --shard " + std::to_string(k) + "/3 --out " + file);
    ASSERT_EQ(part.exit_code, 0) << part.err;
    files += " " + file;
  }
  CliResult merged = RunCli("merge" + files + " --json " + dir + "/merged.json --csv " + dir +
                            "/merged.csv");
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  EXPECT_EQ(Slurp(dir + "/merged.json"), Slurp(dir + "/whole.json"));
  EXPECT_EQ(Slurp(dir + "/merged.csv"), Slurp(dir + "/whole.csv"));
  EXPECT_EQ(Slurp(dir + "/whole.csv").substr(0, 39), "index,zero.stage,schedule.kind,valid,si");
  // A shard missing, or given twice, is refused by name.
  CliResult missing = RunCli("merge " + dir + "/shard1.textproto " + dir + "/shard3.textproto");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("merge: shards 2 of 3 are missing"), std::string::npos)
      << missing.err;
  CliResult twice = RunCli("merge" + files + " " + dir + "/shard2.textproto");
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_NE(twice.err.find("shard 2/3 is also in"), std::string::npos) << twice.err;
  std::filesystem::remove_all(dir);
}

TEST(SweepCliTest, MergeNamesThePlaceOfABadShardFile) {
  const std::string dir = TempDir();
  {
    std::ofstream(dir + "/bad.textproto") << "scenario: \"x\"\ncommand: \"sweep\"\nbogus: 1\n";
  }
  CliResult r = RunCli("merge " + dir + "/bad.textproto");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(dir + "/bad.textproto:3:1:"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

TEST(SweepCliTest, FitRanksWhatFitsAndSaysWhenNothingDoes) {
  // A CPU device has no CUDA library workspaces: 1.4 MB then separates what fits.
  const std::string tiny = "fit scenarios/pp4_tiny.textproto --set hardware.gpu=CPU "
                           "--set hardware.comm_workspace_bytes=0 "
                           "--gpus 16 --global-batch 32 --pp 2,4 --ep 1,2 --zero 0,3 --mbs 1,2 "
                           "--cp 1 --etp 1 --schedules one_f_one_b,gpipe,zb_h1 --recompute none,full";
  CliResult r = RunCli(tiny + " --set hardware.hbm_bytes=1400000 --top 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("candidates by outcome:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the fastest: stepsim run SCENARIO --set batch.micro_batch_size="),
            std::string::npos)
      << r.out;
  CliResult none = RunCli(tiny + " --set hardware.hbm_bytes=1000");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no configuration fits"), std::string::npos) << none.err;
  EXPECT_NE(none.out.find("static memory exceeds the device"), std::string::npos) << none.out;
  std::string three = tiny;
  three.replace(three.find("--gpus 16"), 9, "--gpus 3");
  CliResult empty = RunCli(three + " --set hardware.hbm_bytes=1400000");
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("the search space is empty"), std::string::npos) << empty.err;
  CliResult bad = RunCli(tiny + " --schedules 3f3b");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--schedules: unknown value \"3f3b\" (expected one of GPIPE,"),
            std::string::npos)
      << bad.err;
}

TEST(SweepCliTest, RunFailIfOomExitsThreeWhenARankDoesNotFit) {
  // DeepSeek-V3 with BF16 activations: every rank peaks above 90 GiB of an
  // 80 GB H800 (README), the first named.
  CliResult oom = RunCli(
      "run scenarios/deepseek_v3.textproto --set precision.fp8_recipe=NONE --fail-if-oom");
  EXPECT_EQ(oom.exit_code, 3);
  EXPECT_NE(oom.err.find("rank 0 does not fit (--fail-if-oom)"), std::string::npos) << oom.err;
  CliResult fits = RunCli("run scenarios/pp4_tiny.textproto --fail-if-oom");
  EXPECT_EQ(fits.exit_code, 0) << fits.err;
  CliResult plain = RunCli("run scenarios/deepseek_v3.textproto");
  EXPECT_EQ(plain.exit_code, 0);
}

TEST(SweepCliTest, SlurmJobsAreWrittenAsAnArrayAndADependentMerge) {
  const std::string dir = TempDir();
  CliResult r = RunCli("sweep scenarios/pp4_tiny.textproto --vary zero.stage=0,1,2 --slurm " +
                       dir + " --shards 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string shards = Slurp(dir + "/shards.sbatch");
  EXPECT_NE(shards.find("#SBATCH --array=1-3"), std::string::npos) << shards;
  EXPECT_NE(shards.find("--shard \"${SLURM_ARRAY_TASK_ID}/3\""), std::string::npos) << shards;
  EXPECT_NE(shards.find("--vary=zero.stage=0,1,2"), std::string::npos) << shards;
  EXPECT_NE(Slurp(dir + "/merge.sbatch").find(" merge shards/shard-{1..3}.textproto"),
            std::string::npos);
  EXPECT_NE(Slurp(dir + "/submit.sh").find("--dependency=afterok:"), std::string::npos);
  CliResult too_many = RunCli("sweep scenarios/pp4_tiny.textproto --vary zero.stage=0,1 --slurm " +
                              dir + " --shards 3");
  EXPECT_EQ(too_many.exit_code, 2);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stepsim::testing
