// Parameter counts against memory-model.md section 2. Every expected number
// is derived below from the model dimensions, not taken from the code.
#include "graph/params.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

using testing::LoadScenario;

// DeepSeek-V3: h 7168, n_h 128, d_cq 1536, d_c 512, d_h 128, d_hr 64,
// h_F 18432, h_E 2048, N 256, N_s 1, v 129280.
//   W^DQ  = 1536*7168            =  11,010,048
//   W^UQ  = 128*128*1536         =  25,165,824
//   W^QR  = 128*64*1536          =  12,582,912
//   W^DKV = 512*7168             =   3,670,016
//   W^KR  = 64*7168              =     458,752
//   W^UK  = W^UV = 128*128*512   =   8,388,608 each
//   W^O   = 7168*128*128         = 117,440,512
//   MLA                          = 187,105,280
//   norms = 7168 + 7168 + 1536 + 512 = 16,384
//   one expert = 3*7168*2048     =  44,040,192
//   MoE = 257 experts + router 256*7168 = 11,318,329,344 + 1,835,008
//       = 11,320,164,352; MoE layer = + MLA + norms = 11,507,286,016
//   dense MLP = 3*7168*18432 = 396,361,728; dense layer = 583,483,392
//   embedding = head = 129280*7168 = 926,679,040; final norm 7168
constexpr int64_t kMla = 187'105'280;
constexpr int64_t kNorms = 16'384;
constexpr int64_t kExpert = 44'040'192;
constexpr int64_t kMoeLayer = 11'507'286'016;
constexpr int64_t kDenseLayer = 583'483'392;
constexpr int64_t kVocabMatrix = 926'679'040;

TEST(ParamsTest, DeepSeekV3LayerTermsAddUp) {
  EXPECT_EQ(kMla, 11'010'048 + 25'165'824 + 12'582'912 + 3'670'016 + 458'752 +
                      2 * 8'388'608 + 117'440'512);
  EXPECT_EQ(kMoeLayer, 257 * kExpert + 256 * 7168 + kMla + kNorms);
  EXPECT_EQ(kDenseLayer, 3 * 7168 * 18432 + kMla + kNorms);
}

TEST(ParamsTest, DeepSeekV3TotalMatchesThePaper) {
  const Config c = LoadScenario("deepseek_v3_paper.textproto");
  StatusOr<ModelParams> p = CountParams(c);
  ASSERT_TRUE(p.ok()) << p.status().message();
  // 3 dense + 58 MoE layers + embedding + head + final norm.
  const int64_t expected = 3 * kDenseLayer + 58 * kMoeLayer + 2 * kVocabMatrix + 7168;
  EXPECT_EQ(expected, 671'026'404'352);
  EXPECT_EQ(p->total, expected);
  EXPECT_EQ(p->mtp, 0);
}

TEST(ParamsTest, DeepSeekV3PaperStages) {
  const Config c = LoadScenario("deepseek_v3_paper.textproto");
  StatusOr<ModelParams> p = CountParams(c);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->stages.size(), 16u);
  // Stage 0: embedding + 3 dense layers + 1 MoE layer.
  EXPECT_EQ(p->stages[0].whole, kVocabMatrix + 3 * kDenseLayer + kMoeLayer);
  EXPECT_EQ(p->stages[0].whole, 14'184'415'232);
  // Stages 1-14: four MoE layers, 85.74 GiB at 2 bytes.
  for (int s = 1; s <= 14; ++s) EXPECT_EQ(p->stages[s].whole, 4 * kMoeLayer) << s;
  EXPECT_EQ(4 * kMoeLayer, 46'029'144'064);
  EXPECT_NEAR(2.0 * 46'029'144'064 / (1 << 30) / 1.0, 85.74, 0.005);
  // Stage 15: one MoE layer, final norm, head.
  EXPECT_EQ(p->stages[15].whole, kMoeLayer + 7168 + kVocabMatrix);
  EXPECT_EQ(p->stages[15].whole, 12'433'972'224);
}

TEST(ParamsTest, DeepSeekV3PaperStageOneDevice) {
  // TP2, EP8, ETP1, paper conventions (W^QR and shared expert replicated).
  // MLA per device: replicated W^DQ + W^QR + W^DKV + W^KR
  //   = 11,010,048 + 12,582,912 + 3,670,016 + 458,752 = 27,721,728
  // plus (W^UQ + W^UK + W^UV + W^O)/2 = 159,383,552/2 = 79,691,776
  // = 107,413,504 per layer, 429,654,016 for four layers.
  // MoE per device: 256/8 = 32 routed + 1 shared experts + router
  //   = 33*44,040,192 + 1,835,008 = 1,455,161,344 per layer; 5,820,645,376.
  // Norms: 4 * 16,384 = 65,536.
  const Config c = LoadScenario("deepseek_v3_paper.textproto");
  StatusOr<ModelParams> p = CountParams(c);
  ASSERT_TRUE(p.ok());
  const StageParams& s = p->stages[1];
  EXPECT_EQ(s.modules.at("mla"), 4 * (27'721'728 + 79'691'776));
  EXPECT_EQ(s.modules.at("mla"), 429'654'016);
  EXPECT_EQ(s.modules.at("moe"), 4 * (33 * kExpert + 1'835'008));
  EXPECT_EQ(s.modules.at("moe"), 5'820'645'376);
  EXPECT_EQ(s.modules.at("norms"), 65'536);
  EXPECT_EQ(s.device, 6'250'364'928);
  EXPECT_EQ(s.matrices.at("mla.w_qr"), 4 * 12'582'912);
  EXPECT_EQ(s.matrices.at("moe.routed_experts"), 4 * 32 * kExpert);
  // Paper ZeRO scope: the whole MoE block is expert-sharded.
  EXPECT_EQ(s.device_expert, 5'820'645'376);
  EXPECT_EQ(s.device_dense, 429'654'016 + 65'536);
}

TEST(ParamsTest, MegatronConventionsSplitRopeAndSharedExperts) {
  const Config c = LoadScenario("deepseek_v3_paper.textproto",
                                {"conventions.q_rope=SPLIT", "conventions.shared_experts=TP_SPLIT",
                                 "conventions.zero_expert_scope=ROUTED_EXPERTS"});
  StatusOr<ModelParams> p = CountParams(c);
  ASSERT_TRUE(p.ok());
  const StageParams& s = p->stages[1];
  // W^QR halves: 12,582,912 -> 6,291,456 per layer; shared expert halves.
  EXPECT_EQ(s.modules.at("mla"), 429'654'016 - 4 * 6'291'456);
  EXPECT_EQ(s.modules.at("moe"), 5'820'645'376 - 4 * (kExpert / 2));
  // Only routed experts are expert-sharded.
  EXPECT_EQ(s.device_expert, 4 * 32 * kExpert);
}

TEST(ParamsTest, DeepSeekV3MtpModule) {
  // Projection 2h^2 = 102,760,448; norms 3h = 21,504; one MoE layer.
  const Config c = LoadScenario("deepseek_v3.textproto", {"schedule.kind=ONE_F_ONE_B"});
  StatusOr<ModelParams> p = CountParams(c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->mtp, 2 * 7168 * 7168 + 3 * 7168 + kMoeLayer);
  EXPECT_EQ(p->total, 671'026'404'352);
  // Under 1F1B the last stage has a rank of its own and keeps its own copy
  // of the embedding for MTP (TP1).
  EXPECT_EQ(p->stages[15].matrices.at("embedding.mtp_copy"), kVocabMatrix);
}

TEST(ParamsTest, DualPipeSharesTheEmbeddingWithMtp) {
  // DualPipe puts stages 0 and 15 on one rank, so MTP reads the embedding
  // stage 0 holds (DeepSeek-V3 report section 3.2.3): no copy, the same
  // model total.
  const Config c = LoadScenario("deepseek_v3.textproto");
  ASSERT_EQ(c.schedule, DUALPIPE);
  StatusOr<ModelParams> p = CountParams(c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->total, 671'026'404'352);
  EXPECT_EQ(p->stages[15].matrices.count("embedding.mtp_copy"), 0u);
}

TEST(ParamsTest, DeepSeekV2Total) {
  // h 5120, d_cq 1536, d_c 512, n_h 128, d_h 128, d_hr 64, h_F 12288,
  // h_E 1536, N 160, N_s 2, v 102400; 1 dense + 59 MoE layers.
  //   MLA = 1536*5120 + 128*128*1536 + 128*64*1536 + 512*5120 + 64*5120
  //       + 2*128*128*512 + 5120*128*128
  //       = 7,864,320 + 25,165,824 + 12,582,912 + 2,621,440 + 327,680
  //       + 16,777,216 + 83,886,080 = 149,225,472
  //   norms = 2*5120 + 1536 + 512 = 12,288
  //   dense layer = 3*5120*12288 + MLA + norms = 337,981,440
  //   MoE layer = 162*3*5120*1536 + 160*5120 + MLA + norms = 3,972,116,480
  const int64_t mla = 149'225'472, norms = 12'288;
  const int64_t dense = 3 * 5120 * 12288 + mla + norms;
  const int64_t moe = int64_t{162} * 3 * 5120 * 1536 + 160 * 5120 + mla + norms;
  EXPECT_EQ(dense, 337'981'440);
  EXPECT_EQ(moe, 3'972'116'480);
  const Config c = LoadScenario("deepseek_v2.textproto");
  StatusOr<ModelParams> p = CountParams(c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->total, dense + 59 * moe + int64_t{2} * 102400 * 5120 + 5120);
  EXPECT_EQ(p->total, 235'741'434'880);
}

TEST(ParamsTest, GptLayerIsTwelveHSquaredPlusBiases) {
  // A GPT layer: QKV 3h^2 + 3h, out h^2 + h, MLP 8h^2 + 4h + h, two
  // LayerNorms 4h: 12h^2 + 13h. h = 6144.
  StatusOr<Config> c = testing::ResolveText(
      "model { preset: 'gpt-22b' num_layers: 4 }\n"
      "parallel { pp: 4 tp: 2 layout: 'Et|t|t|tL' }\n"
      "batch { seq_len: 2048 }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  StatusOr<ModelParams> p = CountParams(*c);
  ASSERT_TRUE(p.ok()) << p.status().message();
  const int64_t h = 6144;
  EXPECT_EQ(p->stages[1].whole, 12 * h * h + 13 * h);
  // Tied embeddings: the last stage keeps a copy of the embedding as head.
  EXPECT_EQ(p->stages[3].matrices.at("head.tied_copy"), 51200 / 2 * h);
  // Total counts the tied matrix once: 4 layers + embedding + final LN (2h).
  EXPECT_EQ(p->total, 4 * (12 * h * h + 13 * h) + 51200 * h + 2 * h);
}

TEST(ParamsTest, TiedEmbeddingsAndMtpShareOneCopy) {
  // The last stage holds the loss (the tied head's copy of the embedding)
  // and the MTP module, which shares that copy: counted once.
  StatusOr<Config> c = testing::ResolveText(
      "model { preset: 'deepseek-v3' tie_embeddings: true }\n"
      "parallel { pp: 16 }\nbatch { seq_len: 4096 }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  StatusOr<ModelParams> p = CountParams(*c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->stages[15].matrices.count("embedding.mtp_copy"), 0u);
  EXPECT_EQ(p->stages[15].matrices.at("head.tied_copy"), kVocabMatrix);
}

TEST(ParamsTest, NoEmbeddingCopyOnARankThatHoldsTheEmbedding) {
  // DualPipeV puts the last stage (MTP, loss) on rank 0 next to the
  // embedding: the MTP module shares it there.
  StatusOr<Config> c = testing::ResolveText(
      "model { preset: 'deepseek-v3' }\n"
      "parallel { pp: 16 layout: 'Et|(tt|)*29,t|tmL' }\nbatch { seq_len: 4096 }\n"
      "schedule { kind: DUALPIPE_V }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  StatusOr<ModelParams> p = CountParams(*c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->stages[31].matrices.count("embedding.mtp_copy"), 0u);
  // Under round-robin placement stage 31 is on rank 15, which needs a copy.
  StatusOr<Config> rr = testing::ResolveText(
      "model { preset: 'deepseek-v3' }\n"
      "parallel { pp: 16 layout: 'Et|(tt|)*29,t|tmL' }\nbatch { seq_len: 4096 }\n");
  ASSERT_TRUE(rr.ok()) << rr.status().message();
  StatusOr<ModelParams> q = CountParams(*rr);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->stages[31].matrices.at("embedding.mtp_copy"), kVocabMatrix);
}

TEST(ParamsTest, AbsurdSizesAreAnErrorNotAWrap) {
  const Config c = LoadScenario("pp4_tiny.textproto",
                                {"model.hidden_size=2000000000", "model.ffn_hidden_size=2000000000",
                                 "model.moe_ffn_hidden_size=2000000000"});
  StatusOr<ModelParams> p = CountParams(c);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(p.status().message().find("overflow"), std::string::npos);
}

}  // namespace
}  // namespace stepsim::graph
