// The golden 1F1B run (scenarios/pp4_1f1b_golden.textproto) end to end:
// every rank's peak and its time derived by hand, and the outputs checked
// against each other.
//
// The model: h = 64, 4 heads, GeLU MLP of 128, LayerNorm with biases, one
// layer per stage, b = 1, s = 32, BF16 activations, FLASH attention, no
// dropout, TP 1. What one layer keeps for backward (bytes):
//   attention norm input 2*32*64 = 4,096; QKV input 4,096;
//   Q and K 2*2*32*16*4 = 8,192; V 4,096; log-sum-exp 4*4*32 = 512;
//   output-projection input 4,096; MLP norm input 4,096; fc1 input 4,096;
//   GeLU input 2*32*128 = 8,192; fc2 input 8,192          -> 49,664
// Stage 0 adds the token ids, 8*32 = 256 -> 49,920. Stage 3 adds the final
// norm input 4,096, head input 4,096 and FP32 logits 4*32*256 = 32,768
//   -> 49,664 + 40,960 = 90,624.
// Parameters per layer: QKV 3h^2 + 3h = 12,480; projection h^2 + h = 4,160;
// two LayerNorms 4h = 256; MLP 2*h*128 + 128 + h = 16,576 -> 33,472.
// Embedding (and the tied head's copy on stage 3) 256*64 = 16,384; final
// LayerNorm 128. Static bytes are 2 + 4 + 8 = 14 per parameter, no workspace.
//
// Timing: F = 100 us, B + W = 200 us, hops free. In 1F1B rank 3 runs F0 at
// 300 us and BW0 at 400 us; rank r runs BW0 when rank r + 1's BW0 ends:
// t_r = 400 + 200 (3 - r) us. Before BW0, rank r holds PP - r forwards'
// activations and, for r > 0, the received activation of the forward it
// runs after BW0 (4,096 B, comm); during BW0 ranks 0-2 also hold the
// gradient they received for it (4,096 B, comm, freed when BW0 ends).
// The first op of BW0 is where each rank
// peaks: stages 0-2 start with fc2's input gradient, 2*32*128 = 8,192 B;
// stage 3 with the cross-entropy's input gradient 2*32*256 = 16,384 B,
// while its FP32 logits are still held.
//
// After its last step every rank waits for rank 0's, at 3,300 us, then
// steps its optimizer over its parameters at 2*4 + 2*8 + 2 + 4 = 30 B each
// (gradient read twice, optimizer state read and written, weights written,
// master weights read) at the H800's 3.35e12 B/s: ranks 1-2 33,472 * 30 =
// 1,004,160 B in 0.29975 us, rank 0 (49,856 parameters) 0.44647 us, rank 3
// (49,984) 0.44762 us. The step ends with rank 3's: 3,300.448 us in whole
// nanoseconds.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "graph/op.h"
#include "report.pb.h"
#include "tests/e2e/run_cli.h"
#include "traces/trace_check.h"

namespace stepsim::testing {
namespace {

constexpr int64_t kLayer = 33'472, kEmbedding = 16'384, kFinalNorm = 128;
constexpr int64_t kParams[4] = {kEmbedding + kLayer, kLayer, kLayer,
                                kLayer + kFinalNorm + kEmbedding};
constexpr int64_t kKept[4] = {49'920, 49'664, 49'664, 90'624};
constexpr int64_t kFirstGradient[4] = {8'192, 8'192, 8'192, 16'384};

RunReport Report(const std::string& extra = "") {
  CliResult r = RunCli("run scenarios/pp4_1f1b_golden.textproto --report - " + extra);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  RunReport report;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.out;
  return report;
}

TEST(GoldenTest, PeaksAndTimesDerivedByHand) {
  const RunReport report = Report();
  ASSERT_EQ(report.ranks_size(), 4);
  EXPECT_DOUBLE_EQ(report.step_time_us(), 3300.448);  // (8 + 4 - 1) * 300 + rank 3's optimizer
  const double optimizer_us[4] = {0.446, 0.300, 0.300, 0.448};
  for (int r = 0; r < 4; ++r) {
    const RankReport& k = report.ranks(r);
    const int64_t static_bytes = 14 * kParams[r];
    const int64_t comm = (r > 0 ? 4096 : 0) + (r < 3 ? 4096 : 0);
    EXPECT_EQ(k.static_bytes(), static_bytes) << r;
    EXPECT_EQ(k.peak_bytes(), static_bytes + (4 - r) * kKept[r] + comm + kFirstGradient[r]) << r;
    EXPECT_DOUBLE_EQ(k.peak_time_us(), 400 + 200 * (3 - r)) << r;
    // Rank r's last backward ends one backward (200 us) after rank r + 1's,
    // which hands it the gradient: 3300 - 200 r. Every rank begins its
    // optimizer step with rank 0, at 3300 us (the gradient norm is
    // all-reduced over every rank).
    EXPECT_DOUBLE_EQ(k.compute_end_us(), 3300 - 200 * r) << r;
    EXPECT_DOUBLE_EQ(k.optimizer_step_us(), 3300) << r;
    EXPECT_NEAR(k.optimizer_us(), optimizer_us[r], 1e-9) << r;
    EXPECT_EQ(k.peak_step(), "BW0") << r;
    EXPECT_EQ(k.peak_microbatch(), 0) << r;
    EXPECT_EQ(k.peak_op(), r == 3 ? "B loss.cross_entropy" : "B L" + std::to_string(r) +
                                                                 ".mlp.fc2");
    EXPECT_EQ(k.peak_breakdown().at("activations"), (4 - r) * kKept[r]) << r;
    EXPECT_EQ(k.inflight_at_peak(), 4 - r) << r;
    EXPECT_EQ(k.end_bytes(), k.static_bytes()) << r;
    EXPECT_TRUE(k.fits());
    // Busy 8 * 300 us; the bubble is (PP - 1) * 300 us of 3,300 us.
    EXPECT_DOUBLE_EQ(k.busy_us(), 2400) << r;
    EXPECT_DOUBLE_EQ(k.bubble_us(), 900) << r;
  }
}

TEST(GoldenTest, CsvMaximumIsTheReportedPeak) {
  const RunReport report = Report();
  CliResult csv = RunCli("run scenarios/pp4_1f1b_golden.textproto --timeline -");
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  std::istringstream in(csv.out);
  std::string line;
  std::getline(in, line);
  std::string header = "rank,seq,time_us,step,op";
  for (int k = 0; k < graph::kNumCategories; ++k) {
    header += std::string(",") + graph::CategoryName(static_cast<graph::Category>(k));
  }
  EXPECT_EQ(line, header + ",total,reserved");  // allocator.kind CACHING: reserved
  const size_t columns = 7 + graph::kNumCategories;  // the total, then reserved
  int64_t max_total[4] = {0, 0, 0, 0}, last_total[4] = {0, 0, 0, 0}, rows_of[4] = {0, 0, 0, 0};
  int64_t max_reserved[4] = {0, 0, 0, 0};
  std::string last_row[4];
  int rows = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    ASSERT_EQ(cells.size(), columns) << line;
    const int rank = std::stoi(cells[0]);
    EXPECT_EQ(std::stoll(cells[1]), rows_of[rank]++) << line;  // (rank, seq) is a key
    int64_t sum = 0;
    for (size_t k = 5; k + 2 < columns; ++k) sum += std::stoll(cells[k]);
    EXPECT_EQ(sum, std::stoll(cells[columns - 2])) << line;
    const int64_t reserved = std::stoll(cells[columns - 1]);
    EXPECT_GE(reserved, sum) << line;
    max_reserved[rank] = std::max(max_reserved[rank], reserved);
    max_total[rank] = std::max(max_total[rank], sum);
    last_total[rank] = sum;
    last_row[rank] = line;
    ++rows;
  }
  EXPECT_GT(rows, 100);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(max_total[r], report.ranks(r).peak_bytes()) << r;
    EXPECT_EQ(max_reserved[r], report.ranks(r).reserved_peak_bytes()) << r;
    EXPECT_EQ(last_total[r], report.ranks(r).static_bytes()) << r;
    // Every rank's rows run to the step's end, 3,300.448 us.
    EXPECT_EQ(last_row[r].substr(0, last_row[r].find(",end,")),
              std::to_string(r) + "," + std::to_string(rows_of[r] - 1) + ",3300.448,")
        << last_row[r];
  }
  // Coarsened to 1 ms windows the peak survives.
  CliResult coarse = RunCli(
      "run scenarios/pp4_1f1b_golden.textproto --timeline - --timeline-resolution-us 1000");
  ASSERT_EQ(coarse.exit_code, 0);
  EXPECT_NE(coarse.out.find("," + std::to_string(report.ranks(2).peak_bytes()) + ","),
            std::string::npos);
  EXPECT_LT(coarse.out.size(), csv.out.size() / 10);
}

TEST(GoldenTest, CsvAndReportAgreeWithUnroundTimes) {
  // Fixed times that do not add up exactly in binary floating point: the
  // step's last op still ends exactly with the step, so the CSV (every
  // event replayed) and the report (fast path) find the same peaks.
  for (const char* timing : {"--set timing.forward_us=0.1 --set timing.backward_input_us=0.2 "
                             "--set timing.backward_weight_us=0.1 --set timing.p2p_us=0.1",
                             "--set timing.forward_us=0.123456789 --set "
                             "timing.backward_input_us=1.1 --set timing.backward_weight_us=0.7"}) {
    const std::string args = std::string("run scenarios/pp4_tiny.textproto ") + timing +
                             " --set hardware.comm_workspace_bytes=0";
    CliResult report = RunCli(args + " --report -");
    CliResult csv = RunCli(args + " --timeline -");
    ASSERT_EQ(report.exit_code, 0) << report.err;
    RunReport r;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(report.out, &r).ok());
    std::map<int, int64_t> max_total;
    std::istringstream in(csv.out);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      const int rank = std::stoi(line);
      const size_t reserved = line.rfind(',');  // the total is before the reserved column
      const int64_t total = std::stoll(line.substr(line.rfind(',', reserved - 1) + 1));
      max_total[rank] = std::max(max_total[rank], total);
    }
    for (const RankReport& k : r.ranks()) {
      EXPECT_EQ(max_total[static_cast<int>(k.pp_rank())], k.peak_bytes()) << timing;
    }
  }
}

TEST(GoldenTest, ChromeTracePassesTheChecker) {
  CliResult r = RunCli("run scenarios/pp4_1f1b_golden.textproto --chrome-trace -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const traces::TraceCheck check = traces::CheckChromeTrace(r.out);
  EXPECT_TRUE(check.problems.empty()) << check.problems.front();
  EXPECT_EQ(check.flows, 2 * 3 * 8);  // every hop of every micro-batch, both ways
  EXPECT_GT(check.counters, 100);
  EXPECT_NE(r.out.find("\"name\":\"process_name\""), std::string::npos);
  EXPECT_NE(r.out.find("\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,"
                       "\"args\":{\"name\":\"compute\"}"),
            std::string::npos);
  EXPECT_EQ(check.instants, 4);  // a peak marker per rank

}

// Runs `args` with the report, trace and CSV written to files (one output
// per file); returns their bytes one after the other.
CliResult RunWithEveryOutput(const std::string& args) {
  char dir_template[] = "/tmp/stepsim_golden_XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  CliResult r = RunCli(args + " --report " + dir + "/r.json --chrome-trace " + dir +
                       "/t.json --timeline " + dir + "/c.csv");
  r.out = Slurp(dir + "/r.json") + Slurp(dir + "/t.json") + Slurp(dir + "/c.csv");
  std::system(("rm -rf '" + dir + "'").c_str());
  return r;
}

TEST(GoldenTest, TwoRunsGiveIdenticalBytes) {
  const std::string args = "run scenarios/pp4_1f1b_golden.textproto";
  CliResult a = RunWithEveryOutput(args);
  CliResult b = RunWithEveryOutput(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_GT(a.out.size(), 1000u);
  EXPECT_EQ(a.out, b.out);
}

TEST(GoldenTest, EveryReadyScenarioIsDeterministicAndEndsStatic) {
  for (const char* scenario :
       {"pp4_tiny.textproto", "pp4_1f1b_golden.textproto", "deepseek_v2.textproto",
        "deepseek_v3.textproto", "deepseek_v3_paper.textproto"}) {
    // 32 micro-batches: the fewest DualPipe runs on 16 stages.
    const std::string args = std::string("run scenarios/") + scenario +
                             " --set batch.num_microbatches=32 --timeline-resolution-us 1000";
    CliResult a = RunWithEveryOutput(args);
    CliResult b = RunWithEveryOutput(args);
    ASSERT_EQ(a.exit_code, 0) << scenario << ": " << a.err;
    EXPECT_TRUE(a.out == b.out) << scenario << " differs between two runs";
    CliResult report = RunCli(std::string("run scenarios/") + scenario +
                              " --set batch.num_microbatches=32 --report -");
    RunReport r;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(report.out, &r).ok()) << scenario;
    for (const RankReport& k : r.ranks()) {
      EXPECT_EQ(k.end_bytes(), k.static_bytes()) << scenario << " rank " << k.pp_rank();
    }
  }
}

TEST(GoldenTest, RealScenarioTracePassesTheChecker) {
  CliResult r = RunCli("run scenarios/pp4_tiny.textproto --set recompute.policy=FULL "
                       "--chrome-trace -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const traces::TraceCheck check = traces::CheckChromeTrace(r.out);
  EXPECT_TRUE(check.problems.empty()) << check.problems.front();
}

TEST(GoldenTest, ScenariosThatCannotRun) {
  CliResult zero_bw = RunCli("run scenarios/pp4_tiny.textproto --set hardware.network_bandwidth=0");
  EXPECT_EQ(zero_bw.exit_code, 2);
  EXPECT_EQ(zero_bw.err, "stepsim: --set hardware.network_bandwidth=0: "
                         "hardware.network_bandwidth: must be a positive number\n");
  CliResult stages = RunCli("run scenarios/pp4_tiny.textproto --set parallel.pp=16");
  EXPECT_EQ(stages.exit_code, 2);
  EXPECT_NE(stages.err.find("parallel.pp: 16 pipeline stages"), std::string::npos) << stages.err;
}

}  // namespace
}  // namespace stepsim::testing
