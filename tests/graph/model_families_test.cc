// Parameter counts of the model families stepsim speaks, each derived here
// by hand from the published config.json of the model, and the fields that
// describe them (GQA, head dims, QK norms, learned positions, vocabulary
// padding, MoE layer patterns, shared-expert widths, MLA without query
// compression).
#include <gtest/gtest.h>

#include "graph/params.h"
#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

using testing::ResolveText;

int64_t TotalParams(const std::string& model_text, const std::string& extra = "") {
  StatusOr<Config> c = ResolveText("model { " + model_text + " }\nbatch { seq_len: 4096 }\n" + extra);
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (!c.ok()) return -1;
  StatusOr<ModelParams> p = CountParams(*c);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? p->total : -1;
}

int64_t Preset(const std::string& name) { return TotalParams("preset: \"" + name + "\""); }

TEST(ModelFamiliesTest, Llama3_8B) {
  // h 4096, 32 layers, 32 heads of 128 in 8 query groups, SwiGLU 14336,
  // vocab 128256, untied. Per layer: Q 4096*4096 = 16,777,216; K and V
  // 4096*1024 each = 8,388,608; O 16,777,216; MLP 3*4096*14336 =
  // 176,160,768; two norms 8,192 -> 218,112,000. 32 layers 6,979,584,000;
  // embedding and head 2*128256*4096 = 1,050,673,152; final norm 4,096.
  EXPECT_EQ(Preset("llama-3-8b"), 6'979'584'000 + 1'050'673'152 + 4'096);
  EXPECT_EQ(Preset("llama-3-8b"), 8'030'261'248);
}

TEST(ModelFamiliesTest, Llama31_70B) {
  // h 8192, 80 layers, 64 heads in 8 groups (K, V 8192*1024), SwiGLU 28672.
  // Per layer: Q and O 2*67,108,864; K and V 16,777,216; MLP 3*8192*28672 =
  // 704,643,072; norms 16,384 -> 855,654,400; 80 layers 68,452,352,000.
  // Embedding and head 2*128256*8192 = 2,101,346,304; final norm 8,192.
  EXPECT_EQ(Preset("llama-3.1-70b"), 68'452'352'000 + 2'101'346'304 + 8'192);
}

TEST(ModelFamiliesTest, Llama31_405B) {
  // h 16384, 126 layers, 128 heads in 8 groups (K, V 16384*1024), SwiGLU
  // 53248. Per layer: Q and O 2*268,435,456; K and V 33,554,432; MLP
  // 3*16384*53248 = 2,617,245,696; norms 32,768 -> 3,187,703,808; 126 layers
  // 401,650,679,808. Embedding and head 2*128256*16384 = 4,202,692,608.
  EXPECT_EQ(Preset("llama-3.1-405b"), 401'650'679'808 + 4'202'692'608 + 16'384);
}

TEST(ModelFamiliesTest, Mixtral8x7B) {
  // Attention per layer 2*16,777,216 + 8,388,608 = 41,943,040; 8 experts of
  // 3*4096*14336 = 1,409,286,144; router 8*4096 = 32,768; norms 8,192 ->
  // 1,451,270,144; 32 layers 46,440,644,608. Embedding and head
  // 2*32000*4096 = 262,144,000; final norm 4,096.
  EXPECT_EQ(Preset("mixtral-8x7b"), 46'440'644'608 + 262'144'000 + 4'096);
  EXPECT_EQ(Preset("mixtral-8x7b"), 46'702'792'704);
}

TEST(ModelFamiliesTest, Mixtral8x22B) {
  // h 6144, 48 heads of 128 in 8 groups: Q and O 2*37,748,736, K and V
  // 12,582,912; 8 experts of 3*6144*16384 = 2,415,919,104; router 49,152;
  // norms 12,288 -> 2,504,060,928; 56 layers 140,227,411,968. Embedding and
  // head 2*32000*6144 = 393,216,000; final norm 6,144.
  EXPECT_EQ(Preset("mixtral-8x22b"), 140'227'411'968 + 393'216'000 + 6'144);
}

TEST(ModelFamiliesTest, Qwen3_30B_A3B) {
  // h 2048, 32 heads of 128 (not 2048/32) in 4 groups: Q 2048*4096 =
  // 8,388,608, K and V 2*2048*512 = 2,097,152, O 8,388,608; Q and K norms
  // 2*128; 128 experts of 3*2048*768 = 603,979,776; router 128*2048 =
  // 262,144; norms 4,096 -> 623,120,640; 48 layers 29,909,790,720.
  // Embedding and head 2*151936*2048 = 622,329,856; final norm 2,048.
  EXPECT_EQ(Preset("qwen3-30b-a3b"), 29'909'790'720 + 622'329'856 + 2'048);
  EXPECT_EQ(Preset("qwen3-30b-a3b"), 30'532'122'624);
}

TEST(ModelFamiliesTest, DeepSeekV2Lite) {
  // MLA without query compression, 16 heads: W^Q 16*(128+64)*2048 =
  // 6,291,456; W^DKV 512*2048 = 1,048,576 and W^KR 64*2048 = 131,072; kv
  // latent norm 512; W^UK and W^UV 2*16*128*512 = 2,097,152; W^O
  // 2048*16*128 = 4,194,304 -> 13,763,072. Layer norms 4,096. Dense MLP
  // 3*2048*10944 = 67,239,936 -> dense layer 81,007,104. MoE: 64 routed and
  // 2 shared experts of 3*2048*1408 = 8,650,752 -> 570,949,632; router
  // 64*2048 = 131,072 -> MoE layer 584,847,872; 26 of them 15,206,044,672.
  // Embedding and head 2*102400*2048 = 419,430,400; final norm 2,048.
  EXPECT_EQ(Preset("deepseek-v2-lite"), 81'007'104 + 15'206'044'672 + 419'430'400 + 2'048);
  EXPECT_EQ(Preset("deepseek-v2-lite"), 15'706'484'224);
}

TEST(ModelFamiliesTest, Moonlight16B_A3B) {
  // As DeepSeek-V2-Lite but a dense MLP of 3*2048*11264 = 69,206,016 (dense
  // layer 82,973,184) and a vocabulary of 163840: 2*163840*2048 =
  // 671,088,640.
  EXPECT_EQ(Preset("moonlight-16b-a3b"), 82'973'184 + 15'206'044'672 + 671'088'640 + 2'048);
}

TEST(ModelFamiliesTest, DeepSeekCountsStayTheSame) {
  // memory-model.md section 2.
  EXPECT_EQ(Preset("deepseek-v3"), 671'026'404'352);
  EXPECT_EQ(Preset("deepseek-v2"), 235'741'434'880);
}

// A tiny GPT; `heads` query heads and the activation can vary.
std::string TinyGpt(const std::string& extra = "", int heads = 4,
                    const std::string& activation = "GELU") {
  return "attention: MHA mlp_activation: " + activation +
         " norm: LAYERNORM hidden_size: 64 num_layers: 2 num_attention_heads: " +
         std::to_string(heads) + " ffn_hidden_size: 256 vocab_size: 1000 " + extra;
}

TEST(ModelFamiliesTest, BiasesLearnedPositionsAndSquaredRelu) {
  // A tiny GPT: h 64, 4 heads, FFN 256, vocab 1000, LayerNorm (2h each).
  // Per layer without biases: QKV 3*64*64 = 12,288; O 4,096; MLP 2*64*256 =
  // 32,768; two LayerNorms 256 -> 49,408. Two layers 98,816; embedding and
  // head 2*64,000 = 128,000; final LayerNorm 128.
  const int64_t plain = 98'816 + 128'000 + 128;
  EXPECT_EQ(TotalParams(TinyGpt()), plain);
  // Biases on every linear: QKV 192, O 64, fc1 256, fc2 64 -> 576 a layer.
  EXPECT_EQ(TotalParams(TinyGpt("linear_bias: true")), plain + 2 * 576);
  // Q, K, V biases only (Qwen2): 192 a layer.
  EXPECT_EQ(TotalParams(TinyGpt("qkv_bias: true")), plain + 2 * 192);
  // A learned position table of 4096 x 64 = 262,144 on the embedding stage.
  EXPECT_EQ(TotalParams(TinyGpt("position_embedding: LEARNED_ABSOLUTE "
                                "max_position_embeddings: 4096")),
            plain + 262'144);
  // Squared ReLU has GeLU's two matrices.
  EXPECT_EQ(TotalParams(TinyGpt("", 4, "SQUARED_RELU")), plain);
}

TEST(ModelFamiliesTest, LearnedPositionsMustCoverTheSequence) {
  StatusOr<Config> c = ResolveText(
      "model { " + TinyGpt("position_embedding: LEARNED_ABSOLUTE max_position_embeddings: 2048") +
      " }\nbatch { seq_len: 4096 }\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "batch.seq_len: 4096 is longer than the 2048 learned positions "
            "(model.max_position_embeddings)");
}

TEST(ModelFamiliesTest, GqaGroupsAndHeadDim) {
  // 8 heads of 32 in 2 groups: QKV (8 + 2*2)*32*64 = 24,576 instead of
  // 12,288: 12,288 more a layer.
  const int64_t plain = 98'816 + 128'000 + 128;
  auto gqa = [](const std::string& extra) { return TinyGpt("num_query_groups: 2 " + extra, 8); };
  // 8 heads of 8 (h / heads) in 2 groups: QKV (8 + 4)*8*64 = 6,144, O 4,096.
  EXPECT_EQ(TotalParams(gqa("")), plain - 2 * (12'288 - 6'144));
  // kv_channels 32: QKV (8 + 4)*32*64 = 24,576; O 8*32*64 = 16,384.
  EXPECT_EQ(TotalParams(gqa("kv_channels: 32")), plain + 2 * (24'576 - 12'288 + 16'384 - 4'096));
  // QK norms: two LayerNorms of the head dim (2*32 each).
  EXPECT_EQ(TotalParams(gqa("kv_channels: 32 qk_layernorm: true")),
            plain + 2 * (24'576 - 12'288 + 16'384 - 4'096 + 128));
  StatusOr<Config> bad =
      ResolveText("model { " + TinyGpt("num_query_groups: 3") + " }\nbatch { seq_len: 128 }\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "model.num_query_groups: 3 does not divide model.num_attention_heads (4)");
}

TEST(ModelFamiliesTest, MoeLayerPatternsAndSharedWidth) {
  // A tiny MoE model: 4 layers, 4 experts of SwiGLU 32 (3*64*32 = 6,144
  // each, router 256), dense FFN 256 (SwiGLU: 49,152), RMSNorm, MHA 4 heads
  // (QKV 12,288, O 4,096), norms 128.
  const std::string moe =
      "attention: MHA hidden_size: 64 num_layers: 4 num_attention_heads: 4 "
      "ffn_hidden_size: 256 moe_ffn_hidden_size: 32 num_routed_experts: 4 moe_top_k: 2 "
      "vocab_size: 1000 ";
  const int64_t attn = 12'288 + 4'096 + 128, dense = attn + 49'152,
                moe_layer = attn + 4 * 6'144 + 256, outer = 128'000 + 64;
  EXPECT_EQ(TotalParams(moe), 4 * moe_layer + outer);
  EXPECT_EQ(TotalParams(moe + "first_dense_layers: 1"), dense + 3 * moe_layer + outer);
  // Every second layer from 0 (DeepSeek's moe_layer_freq): layers 0, 2.
  EXPECT_EQ(TotalParams(moe + "moe_layer_freq: 2"), 2 * dense + 2 * moe_layer + outer);
  // Megatron's list form: dense, MoE, MoE, dense.
  EXPECT_EQ(TotalParams(moe + "moe_layer_pattern: [0, 1, 1, 0]"),
            2 * dense + 2 * moe_layer + outer);
  // One shared expert of its own width 96: 3*64*96 = 18,432 a MoE layer.
  EXPECT_EQ(TotalParams(moe + "num_shared_experts: 1 shared_expert_ffn_hidden_size: 96"),
            4 * (moe_layer + 18'432) + outer);
  // Without its own width a shared expert is as wide as a routed one.
  EXPECT_EQ(TotalParams(moe + "num_shared_experts: 2"), 4 * (moe_layer + 2 * 6'144) + outer);
  StatusOr<Config> bad = ResolveText("model { " + moe +
                                     "moe_layer_pattern: [0, 1] }\nbatch { seq_len: 128 }\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "model.moe_layer_pattern: has 2 entries; give one per layer (model.num_layers = 4)");
}

TEST(ModelFamiliesTest, VocabularyPaddingFollowsMegatron) {
  // Megatron pads the vocabulary to a multiple of 128 * TP (the default of
  // make_vocab_size_divisible_by under MEGATRON_CORE): 1000 -> 1024 at TP 1,
  // 1024 at TP 2 (a multiple of 256) and at TP 4 (of 512). The per-device
  // embedding holds padded / TP rows of h = 64: 1024, 512, 256.
  const std::string gpt = "model { " + TinyGpt() + "}\nbatch { seq_len: 128 }\n";
  for (const auto& [tp, rows] : std::vector<std::pair<int, int64_t>>{{1, 1024}, {2, 512}, {4, 256}}) {
    StatusOr<Config> c =
        ResolveText(gpt + "parallel { tp: " + std::to_string(tp) + " }\n");
    ASSERT_TRUE(c.ok()) << c.status().message();
    StatusOr<ModelParams> p = CountParams(*c);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->stages.front().matrices.at("embedding.word"), rows * 64) << tp;
    // The model's own count is of the real vocabulary.
    EXPECT_EQ(p->total, 98'816 + 128'000 + 128) << tp;
  }
  // The paper's profile only rounds up to a multiple of TP.
  StatusOr<Config> paper = ResolveText(gpt + "parallel { tp: 4 }\nconventions { profile: PAPER }\n");
  ASSERT_TRUE(paper.ok());
  EXPECT_EQ(CountParams(*paper)->stages.front().matrices.at("embedding.word"), 250 * 64);
}

}  // namespace
}  // namespace stepsim::graph
