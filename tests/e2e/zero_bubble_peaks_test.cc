// Total peaks under ZB-H1 against 1F1B on the golden tiny GPT
// (scenarios/pp4_1f1b_golden.textproto: one layer per stage, F = 100 us,
// B = 150 us, W = 50 us, hops free), derived by hand: what a deferred W
// holds, counted in bytes, not only in micro-batches in flight.
//
// tests/e2e/golden_test.cc derives what one micro-batch keeps on each
// stage (kKept), the static bytes and the 1F1B peaks. A deferred W keeps,
// per micro-batch, what its GEMMs' weight gradients read (graph/stage_dag.cc
// DefersWeightGrad: the frameworks that split B from W defer only GEMMs):
//   inputs (activations): QKV 2*32*64 = 4,096; output projection 4,096;
//     fc1 4,096; fc2 2*32*128 = 8,192                          -> 20,480
//   output gradients (output_grads): QKV 2*32*192 = 12,288; projection
//     4,096; fc1 2*32*128 = 8,192                              -> 24,576
// fc2's output gradient is the gradient received from the next stage
// (2*32*64 = 4,096, comm): the engine keeps that buffer until the W has run
// (graph/stage_dag.h weight_reads_received_gradient). The LayerNorms
// compute their weight gradients in B and keep nothing for W.
// Stage 3 adds fc2's output gradient (the final norm's input gradient,
// 4,096) and the head's input 4,096 and output gradient, the logits'
// gradient 2*32*256 = 16,384: 24,576 of inputs, 45,056 of gradients.
//
// The ZB-H1 schedule (`stepsim schedule`): rank r runs W0 right after B_r,
// so when B_r starts it holds the W state of micro-batches 0..r-1 and the
// activations of r..3 (F0-F3 have run, B0..B_{r-1} too): 4 - r in flight,
// as under 1F1B, plus r deferred W. Each rank peaks in B_r:
// - ranks 0-2 at its second op, GeLU's: fc2's B has made fc2's input
//   gradient (8,192, workspace) and, fc2's input staying for W, GeLU's B
//   adds its input gradient, which is fc1's output gradient (8,192,
//   output_grads), before it frees GeLU's input; the received gradient
//   (4,096, comm) lives through B, beside the r received gradients the
//   deferred W hold (4,096 each). No activation for F4 has arrived: the
//   previous rank runs F4 after its own W0 (rank 0 receives none at all).
//   Under 1F1B, fc2's W frees its input before GeLU's B, so the peak stays
//   at fc2's B.
// - rank 3 at its first op, the cross entropy's: its input gradient is the
//   head's output gradient (16,384); rank 2 has not yet sent F4's input.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "report.pb.h"
#include "tests/e2e/run_cli.h"

namespace stepsim::testing {
namespace {

constexpr int64_t kLayer = 33'472, kEmbedding = 16'384, kFinalNorm = 128;
constexpr int64_t kParams[4] = {kEmbedding + kLayer, kLayer, kLayer,
                                kLayer + kFinalNorm + kEmbedding};
constexpr int64_t kKept[4] = {49'920, 49'664, 49'664, 90'624};  // golden_test.cc
// Per deferred W: inputs and output gradients its GEMMs read.
constexpr int64_t kHeldInputs[4] = {20'480, 20'480, 20'480, 24'576};
constexpr int64_t kHeldGrads[4] = {24'576, 24'576, 24'576, 45'056};
// ... and fc2's output gradient, the received buffer (none on the last stage).
constexpr int64_t kHeldReceived[4] = {4'096, 4'096, 4'096, 0};
// At the peak op of B_r: the output gradient just made, the workspace
// gradient and the received gradient.
constexpr int64_t kPeakGrad[4] = {8'192, 8'192, 8'192, 16'384};
constexpr int64_t kPeakWorkspace[4] = {8'192, 8'192, 8'192, 0};
constexpr int64_t kPeakComm[4] = {4'096, 4'096, 4'096, 0};

RunReport Report(const std::string& kind, const std::string& extra = "") {
  CliResult r = RunCli(
      "run scenarios/pp4_1f1b_golden.textproto --report - --set schedule.kind=" + kind + extra);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  RunReport report;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.out;
  return report;
}

int64_t ZbH1Peak(int r) {
  return 14 * kParams[r] + (4 - r) * kKept[r] +
         r * (kHeldInputs[r] + kHeldGrads[r] + kHeldReceived[r]) + kPeakGrad[r] +
         kPeakWorkspace[r] + kPeakComm[r];
}

// golden_test.cc: static + (PP - r) kKept + received buffers + the first
// gradient of BW0 (fc2's input gradient; on rank 3 the head's output
// gradient).
int64_t OneFOneBPeak(int r) {
  const int64_t comm = (r > 0 ? 4096 : 0) + (r < 3 ? 4096 : 0);
  return 14 * kParams[r] + (4 - r) * kKept[r] + comm + (r == 3 ? 16'384 : 8'192);
}

TEST(ZeroBubblePeaksTest, ZbH1PeaksDerivedByHand) {
  // 918,144; 687,232; 686,720; 1,015,680 bytes.
  const RunReport report = Report("ZB_H1");
  ASSERT_EQ(report.ranks_size(), 4);
  for (int r = 0; r < 4; ++r) {
    const RankReport& k = report.ranks(r);
    EXPECT_EQ(k.peak_bytes(), ZbH1Peak(r)) << r;
    EXPECT_EQ(k.peak_step(), "B" + std::to_string(r)) << r;
    EXPECT_EQ(k.peak_op(), r == 3 ? "B loss.cross_entropy" : "B L" + std::to_string(r) + ".mlp.act")
        << r;
    EXPECT_EQ(k.peak_breakdown().at("activations"), (4 - r) * kKept[r] + r * kHeldInputs[r]) << r;
    EXPECT_EQ(k.peak_breakdown().at("output_grads"), r * kHeldGrads[r] + kPeakGrad[r]) << r;
    EXPECT_EQ(k.peak_breakdown().at("workspace"), kPeakWorkspace[r]) << r;
    EXPECT_EQ(k.peak_breakdown().at("comm"), kPeakComm[r] + r * kHeldReceived[r]) << r;
    EXPECT_EQ(k.end_bytes(), k.static_bytes()) << r;
  }
}

TEST(ZeroBubblePeaksTest, LaterRanksHoldMoreUnderZbH1ThanUnder1F1B) {
  // ZB-H1 minus 1F1B: 8,192; 53,248; 102,400; 204,800 bytes. Both hold
  // PP - r micro-batches in flight; ZB-H1 adds r deferred W on rank r.
  const RunReport zb = Report("ZB_H1");
  const RunReport one = Report("ONE_F_ONE_B");
  ASSERT_EQ(zb.ranks_size(), 4);
  ASSERT_EQ(one.ranks_size(), 4);
  int64_t previous = -1;
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(one.ranks(r).peak_bytes(), OneFOneBPeak(r)) << r;
    EXPECT_EQ(zb.ranks(r).inflight_at_peak(), one.ranks(r).inflight_at_peak()) << r;
    // Under 1F1B only rank 3's peak holds an output gradient: the head's.
    EXPECT_EQ(one.ranks(r).peak_breakdown().at("output_grads"), r == 3 ? 16'384 : 0) << r;
    const int64_t extra = zb.ranks(r).peak_bytes() - one.ranks(r).peak_bytes();
    EXPECT_EQ(extra, ZbH1Peak(r) - OneFOneBPeak(r)) << r;
    EXPECT_GT(extra, previous) << r;
    previous = extra;
  }
}

TEST(ZeroBubblePeaksTest, PytorchsSplitBackwardHoldsTheWholeGraphPerDeferredW) {
  // Under PYTORCH_EAGER, B retains the autograd graph until W
  // (torch.distributed.pipelining): a deferred W holds everything the
  // micro-batch kept but what hangs from the detached loss alone (the
  // cross entropy's 33,044 B on stage 3), and the output gradients of every
  // op with weights: 32,768 B per micro-batch on stages 0-2, 57,344 on
  // stage 3 (tests/graph/stage_dag_test.cc derives both). Under 1F1B rank r
  // peaks holding PP - r micro-batches (golden_test.cc), which gives K_r,
  // the bytes one micro-batch keeps under this profile. Under ZB-H1 rank r
  // peaks in B_r with PP - r in flight and r deferred W; ranks 0-2 at
  // QKV's B, when micro-batch r holds all its output gradients too; rank 3
  // at the cross entropy's backward workspace, before any of its own.
  const std::string eager = " --set conventions.profile=PYTORCH_EAGER";
  const RunReport zb = Report("ZB_H1", eager);
  const RunReport one = Report("ONE_F_ONE_B", eager);
  ASSERT_EQ(zb.ranks_size(), 4);
  ASSERT_EQ(one.ranks_size(), 4);
  constexpr int64_t kLoss[4] = {0, 0, 0, 33'044};
  constexpr int64_t kGrads[4] = {32'768, 32'768, 32'768, 57'344};
  int64_t previous = -1;
  for (int r = 0; r < 4; ++r) {
    const int64_t activations = one.ranks(r).peak_breakdown().at("activations");
    ASSERT_EQ(activations % (4 - r), 0) << r;
    const int64_t kept = activations / (4 - r);
    EXPECT_EQ(zb.ranks(r).peak_step(), "B" + std::to_string(r)) << r;
    EXPECT_EQ(zb.ranks(r).peak_breakdown().at("activations"),
              (4 - r) * kept + r * (kept - kLoss[r]))
        << r;
    EXPECT_EQ(zb.ranks(r).peak_breakdown().at("output_grads"), (r + (r < 3 ? 1 : 0)) * kGrads[r])
        << r;
    const int64_t extra = zb.ranks(r).peak_bytes() - one.ranks(r).peak_bytes();
    EXPECT_GT(extra, previous) << r;
    previous = extra;
  }
}

TEST(ZeroBubblePeaksTest, TheSummaryShowsTheHeldGradients) {
  CliResult r = RunCli("run scenarios/pp4_1f1b_golden.textproto --set schedule.kind=ZB_H1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" recomp    dy  comm "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace stepsim::testing
