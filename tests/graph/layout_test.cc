#include "graph/layout.h"

#include <gtest/gtest.h>

namespace stepsim::graph {
namespace {

std::vector<std::string> Expand(const std::string& text) {
  StatusOr<std::vector<std::string>> out = ExpandLayoutString(text);
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? *out : std::vector<std::string>{};
}

std::string ErrorOf(const std::string& text, int64_t pp, int64_t layers, int64_t mtp) {
  StatusOr<Layout> layout = ParseLayout(text, pp, layers, mtp);
  EXPECT_FALSE(layout.ok());
  return layout.ok() ? "" : layout.status().message();
}

TEST(LayoutTest, ExpandsRepeatsAndGroups) {
  EXPECT_EQ(Expand("Et*3|(tt|)*2,m|L"),
            (std::vector<std::string>{"Ettt", "tt", "tt", "m", "L"}));
  EXPECT_EQ(Expand("E(t|)*2L"), (std::vector<std::string>{"Et", "t", "L"}));
  // Nested groups (a superset of Megatron's syntax).
  EXPECT_EQ(Expand("E((t)*2|)*2L"), (std::vector<std::string>{"Ett", "tt", "L"}));
  // Empty stages are allowed.
  EXPECT_EQ(Expand("E||L"), (std::vector<std::string>{"E", "", "L"}));
}

TEST(LayoutTest, PaperLayoutForDeepSeekV3) {
  StatusOr<Layout> layout = ParseLayout("Et*4|(t*4|)*14,tL", 16, 61, 0);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  ASSERT_EQ(layout->stages.size(), 16u);
  EXPECT_EQ(layout->vpp, 1);
  EXPECT_EQ(layout->stages[0].Describe(), "E t0-t3");
  EXPECT_EQ(layout->stages[1].Describe(), "t4-t7");
  EXPECT_EQ(layout->stages[14].Describe(), "t56-t59");
  EXPECT_EQ(layout->stages[15].Describe(), "t60 L");
}

TEST(LayoutTest, VirtualStagesMapToRanksRoundRobin) {
  // Megatron's example: PP16 VPP2 for DeepSeek-V3 with MTP.
  StatusOr<Layout> layout = ParseLayout("Et*3|(tt|)*29,m|L", 16, 61, 1);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  EXPECT_EQ(layout->vpp, 2);
  ASSERT_EQ(layout->stages.size(), 32u);
  // Stage 30 (the MTP) is rank 14, chunk 1; stage 31 (loss) rank 15, chunk 1.
  EXPECT_EQ(layout->stages[30].pp_rank, 14);
  EXPECT_EQ(layout->stages[30].chunk, 1);
  EXPECT_EQ(layout->stages[30].Describe(), "m0");
  EXPECT_EQ(layout->stages[31].Describe(), "L");
  // Chunk 0 holds layers 0-32 (3 + 15*2); stage 16 is rank 0, chunk 1.
  EXPECT_EQ(layout->stages[16].Describe(), "t33-t34");
}

TEST(LayoutTest, SyntaxErrorsNameThePosition) {
  EXPECT_EQ(ExpandLayoutString("Etx|L").status().message(),
            "parallel.layout: position 3: unexpected character 'x' (expected E, t, m, L, |, (, "
            "), * or a comma)");
  EXPECT_EQ(ExpandLayoutString("E(tt|L").status().message(),
            "parallel.layout: position 2: '(' is never closed");
  EXPECT_EQ(ExpandLayoutString("Et)|L").status().message(),
            "parallel.layout: position 3: unmatched ')'");
  EXPECT_EQ(ExpandLayoutString("Et*|L").status().message(),
            "parallel.layout: position 4: '*' must be followed by a number");
  EXPECT_FALSE(ExpandLayoutString("(t*1000)*1000000").ok());
}

TEST(LayoutTest, MegatronValidationRules) {
  EXPECT_EQ(ErrorOf("Et|t|tL", 2, 3, 0),
            "parallel.layout: 3 stages are not divisible by parallel.pp = 2");
  EXPECT_EQ(ErrorOf("tE|tL", 2, 2, 0),
            "parallel.layout: the first layer must be the embedding E");
  EXPECT_EQ(ErrorOf("Et|Lt", 2, 2, 0), "parallel.layout: the last layer must be the loss L");
  EXPECT_EQ(ErrorOf("Et|tt", 2, 3, 0),
            "parallel.layout: the last layer must be the loss L\n"
            "parallel.layout: the loss L must appear exactly once, not 0 times");
  EXPECT_EQ(ErrorOf("Et|tL", 2, 3, 0),
            "parallel.layout: 2 transformer layers t, but the model has 3");
  EXPECT_EQ(ErrorOf("Et|tL", 2, 2, 1), "parallel.layout: 0 MTP layers m, but the model has 1");
  EXPECT_EQ(ErrorOf("Etm|tL", 2, 2, 1),
            "parallel.layout: transformer layers t must come before MTP layers m\n"
            "parallel.layout: stage 0: MTP layers must not be on pipeline rank 0");
  EXPECT_EQ(ErrorOf("Et|tm|t|L", 2, 3, 1),
            "parallel.layout: transformer layers t must come before MTP layers m\n"
            "parallel.layout: stage 1: MTP layers must be in the last virtual chunk of their "
            "rank");
  EXPECT_EQ(ErrorOf("Et|tm|m|L", 2, 2, 2),
            "parallel.layout: stage 1: MTP layers must be in the last virtual chunk of their "
            "rank\n"
            "parallel.layout: stage 1: all MTP layers must be in one stage\n"
            "parallel.layout: stage 2: all MTP layers must be in one stage\n"
            "parallel.layout: stage 2: MTP layers must not be on pipeline rank 0");
}

TEST(LayoutTest, NoEmptyStageBeforeTheEmbeddingOrAfterTheLoss) {
  EXPECT_EQ(ErrorOf("|Et*2||L", 4, 2, 0),
            "parallel.layout: the first stage must start with the embedding E (no empty stage "
            "before it)");
  EXPECT_EQ(ErrorOf("Et|t|L|", 4, 2, 0),
            "parallel.layout: the last stage must end with the loss L (no empty stage after it)");
}

TEST(LayoutTest, DefaultSplitIsEvenWithRemainderAfterTheFirstStage) {
  // 61 layers over 16 stages: 3 each, 13 left over for stages 1-13.
  StatusOr<Layout> layout = DefaultLayout(16, 1, 61, 1);
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->stages[0].Describe(), "E t0-t2");
  EXPECT_EQ(layout->stages[1].Describe(), "t3-t6");
  EXPECT_EQ(layout->stages[13].DecoderLayers(), 4);
  EXPECT_EQ(layout->stages[14].DecoderLayers(), 3);
  EXPECT_EQ(layout->stages[15].Describe(), "t58-t60 m0 L");
  int64_t total = 0;
  for (const Stage& s : layout->stages) total += s.DecoderLayers();
  EXPECT_EQ(total, 61);
}

TEST(LayoutTest, DefaultSplitNeedsALayerPerStage) {
  StatusOr<Layout> layout = DefaultLayout(8, 2, 15, 0);
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.status().message(),
            "parallel.pp: 16 pipeline stages (pp * vpp) but only 15 transformer layers; give a "
            "parallel.layout to allow stages without layers");
}

}  // namespace
}  // namespace stepsim::graph
