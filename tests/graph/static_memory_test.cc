// Static memory under ZeRO 0-3 against memory-model.md section 3.
#include "graph/static_memory.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

using testing::LoadScenario;

constexpr double kGiB = 1 << 30;

// The stage-1 device of the paper's setup holds P = 6,250,364,928
// parameters: P_n = MLA + norms = 429,654,016 + 65,536 = 429,719,552 over
// DP 32, and P_m = the MoE block = 5,820,645,376 over EDP = 32*2/(8*1) = 8.
//   P_n/DP = 13,428,736;  P_m/EDP = 727,580,672;  sharded = 741,009,408.
constexpr int64_t kP = 6'250'364'928;
constexpr int64_t kSharded = 429'719'552 / 32 + 5'820'645'376 / 8;

struct ZeroCase {
  int stage;
  int64_t weights, gradients, optimizer;
  double gib_w, gib_g, gib_o, gib_total;  // the paper's rounded figures
};

void PrintTo(const ZeroCase& z, std::ostream* os) { *os << "ZeRO stage " << z.stage; }

class ZeroTest : public ::testing::TestWithParam<ZeroCase> {};

TEST_P(ZeroTest, PaperStageOneDevice) {
  const ZeroCase& z = GetParam();
  const Config c =
      LoadScenario("deepseek_v3_paper.textproto", {"zero.stage=" + std::to_string(z.stage)});
  StatusOr<ModelParams> params = CountParams(c);
  ASSERT_TRUE(params.ok());
  const StageParams& s = params->stages[1];
  const StaticMemory m = ComputeStaticMemory(c, s.device_dense, s.device_expert);
  EXPECT_EQ(m.weights_bytes, z.weights);
  EXPECT_EQ(m.gradients_bytes, z.gradients);
  EXPECT_EQ(m.optimizer_bytes, z.optimizer);
  EXPECT_NEAR(m.weights_bytes / kGiB, z.gib_w, 0.005);
  EXPECT_NEAR(m.gradients_bytes / kGiB, z.gib_g, 0.005);
  EXPECT_NEAR(m.optimizer_bytes / kGiB, z.gib_o, 0.005);
  EXPECT_NEAR(m.total_bytes() / kGiB, z.gib_total, 0.005);
}

INSTANTIATE_TEST_SUITE_P(
    Paper, ZeroTest,
    ::testing::Values(
        // none: 2P, 4P, 8P -> 11.64 / 23.28 / 46.57, total 81.50
        ZeroCase{0, 2 * kP, 4 * kP, 8 * kP, 11.64, 23.28, 46.57, 81.50},
        // os: optimizer 8 * 741,009,408 = 5,928,075,264 -> 5.52, total 40.45
        ZeroCase{1, 2 * kP, 4 * kP, 8 * kSharded, 11.64, 23.28, 5.52, 40.45},
        // os+g: gradients 4 * 741,009,408 -> 2.76, total 19.92
        ZeroCase{2, 2 * kP, 4 * kSharded, 8 * kSharded, 11.64, 2.76, 5.52, 19.92},
        // os+g+p: weights 2 * 741,009,408 -> 1.38, total 9.66
        ZeroCase{3, 2 * kSharded, 4 * kSharded, 8 * kSharded, 1.38, 2.76, 5.52, 9.66}),
    [](const ::testing::TestParamInfo<ZeroCase>& param) {
      return "Stage" + std::to_string(param.param.stage);
    });

TEST(StaticMemoryTest, ShardsRoundUpToWholeParameters) {
  const Config c = LoadScenario("pp4_tiny.textproto", {"zero.stage=3", "parallel.dp=4"});
  // dp 4, tp 2, ep 2, etp 1: EDP = 4. 10 dense params -> 3 per rank (ceil),
  // 5 expert params -> 2.
  const StaticMemory m = ComputeStaticMemory(c, 10, 5);
  EXPECT_EQ(m.weights_bytes, 2 * (3 + 2));
  EXPECT_EQ(m.gradients_bytes, 4 * (3 + 2));
  EXPECT_EQ(m.optimizer_bytes, 8 * (3 + 2));
}

TEST(StaticMemoryTest, MixedPrecisionAdamUsesTwelveBytes) {
  const Config c =
      LoadScenario("deepseek_v3_paper.textproto", {"precision.preset=MIXED_ADAM_2_4_12"});
  const StaticMemory m = ComputeStaticMemory(c, 100, 0);
  EXPECT_EQ(m.optimizer_bytes, 1200);
}

TEST(StaticMemoryTest, PerRankSumsVirtualChunks) {
  // PP2 with 2 chunks per rank: rank 0 holds stages 0 and 2.
  const Config c = LoadScenario("pp4_tiny.textproto",
                                {"parallel.pp=2", "parallel.layout=Et*2|t*2|t*2|t*2L"});
  StatusOr<ModelParams> params = CountParams(c);
  ASSERT_TRUE(params.ok());
  StatusOr<std::vector<RankStatic>> ranks = StaticMemoryPerRank(c, *params);
  ASSERT_TRUE(ranks.ok());
  ASSERT_EQ(ranks->size(), 2u);
  EXPECT_EQ((*ranks)[0].params, params->stages[0].device + params->stages[2].device);
  EXPECT_EQ((*ranks)[1].params, params->stages[1].device + params->stages[3].device);
  EXPECT_EQ((*ranks)[0].memory.weights_bytes, 2 * (*ranks)[0].params);
}

}  // namespace
}  // namespace stepsim::graph
