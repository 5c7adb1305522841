// FP8 storage of activations and weights (precision.fp8_recipe), derived by
// hand at DeepSeek-V3's dimensions: h = 7168, 128 heads of 128 + 64 (v 128),
// q_lora 1536, kv_lora 512, experts of 2048, top-8; TP 1, EP 64, b = 1,
// s = 4096, so T = 4096 tokens and, under balanced routing, 8 * 4096 =
// 32,768 expert rows a rank. Megatron-Core profile (fused RoPE), no dropout.
#include "graph/fp8.h"

#include <gtest/gtest.h>

#include <map>

#include "graph/activations.h"
#include "graph/framework_memory.h"
#include "graph/layer_ops.h"
#include "graph/stage_dag.h"
#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

constexpr int64_t T = 4096, h = 7168, rows = 8 * T;

StatusOr<Config> V3(const std::string& recipe, const std::string& extra = "") {
  return testing::ResolveText(
      "model { preset: 'deepseek-v3' num_layers: 4 mtp_num_layers: 0 }\n"
      "parallel { pp: 2 ep: 64 dp: 64 layout: 'Ettt|tL' }\n"
      "batch { seq_len: 4096 }\n"
      "precision { fp8_recipe: " + recipe + " }\n" + extra);
}

// Kept bytes of layer 3 (an MoE layer) by "module.op" and tensor.
std::map<std::string, std::map<std::string, int64_t>> Keeps(const Config& c) {
  Stage stage;
  stage.slots.push_back({SlotKind::kDecoder, 3});
  std::map<std::string, std::map<std::string, int64_t>> out;
  for (const OpSpec& op : SlotOps(c, stage, stage.slots[0])) {
    for (const Keep& k : op.keeps) out[op.name.substr(op.name.find('.') + 1)][k.name] += k.bytes;
  }
  return out;
}

TEST(Fp8Test, TensorLayouts) {
  // A [4096, 7168] GEMM input: 29,360,128 data bytes and
  EXPECT_EQ(Fp8TensorBytes(Precision::TENSORWISE, T, h), T * h + 4);        // one FP32 scale
  EXPECT_EQ(Fp8TensorBytes(Precision::MXFP8, T, h), T * h + 128 * 7168);    // R4(4096/32) x R128(h)
  EXPECT_EQ(Fp8TensorBytes(Precision::BLOCKWISE, T, h), T * h + 4 * 32 * h);  // 128x1 tiles
  EXPECT_EQ(Fp8TensorBytes(Precision::DEEPSEEK_V3, T, h), T * h + 4 * T * 56);  // 1x128 tiles
  EXPECT_EQ(E5M6TensorBytes(T, 16384), T * 16384 * 3 / 2 + 4 * T * 128);
}

TEST(Fp8Test, DeepSeekV3RoutedExpertsOfOneMoeLayer) {
  StatusOr<Config> c = V3("DEEPSEEK_V3");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto keeps = Keeps(*c);
  // fc1's input, the dispatched tokens [32768, 7168] in FP8 with an FP32
  // scale per 1x128 tile: 234,881,024 + 4 * 32768 * 56 = 242,221,056.
  EXPECT_EQ(keeps.at("moe.experts_fc1").at("input"), rows * h + 4 * rows * 56);
  // The SwiGLU input [32768, 4096] cached in FP8: 134,217,728 + 4 * 32768 *
  // 32 = 138,412,032; the routing weights stay BF16, 2 * 32768.
  EXPECT_EQ(keeps.at("moe.experts_act").at("input"), rows * 4096 + 4 * rows * 32);
  EXPECT_EQ(keeps.at("moe.experts_act").at("probs"), 2 * rows);
  // The SwiGLU output, fc2's input, is recomputed in backward: the op
  // offers it, the forward does not keep it.
  StatusOr<std::vector<StageActivations>> a = ComputeActivations(*c);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ((*a)[1].ops.count("L3.moe.experts_fc2"), 0u);
  EXPECT_GT((*a)[1].ops.at("L3.moe.experts_fc1"), 0);
  // In BF16 the same experts keep 2*rows*h + 4*rows*2048 + 2*rows*2048 + 2*rows.
  StatusOr<Config> bf16 = V3("NONE");
  const auto plain = Keeps(*bf16);
  EXPECT_EQ(plain.at("moe.experts_fc1").at("input") + plain.at("moe.experts_act").at("input") +
                plain.at("moe.experts_act").at("probs") + plain.at("moe.experts_fc2").at("input"),
            2 * rows * h + 4 * rows * 2048 + 2 * rows + 2 * rows * 2048);
}

TEST(Fp8Test, DeepSeekV3MlaBlock) {
  StatusOr<Config> c = V3("DEEPSEEK_V3");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto keeps = Keeps(*c);
  // The attention norm keeps its BF16 input and FP32 rstd: 2Th + 4T.
  EXPECT_EQ(keeps.at("mla.attn_norm").at("input") + keeps.at("mla.attn_norm").at("rstd"),
            2 * T * h + 4 * T);
  // q_down and kv_down each keep an FP8 copy of the normed input.
  EXPECT_EQ(keeps.at("mla.down_proj").at("input"), 2 * (T * h + 4 * T * 56));
  // The up-projections' inputs (the normed latents) in FP8; the latent
  // norms' own inputs stay BF16 with their rstd.
  EXPECT_EQ(keeps.at("mla.up_proj").at("q_latent"), T * 1536 + 4 * T * 12);
  EXPECT_EQ(keeps.at("mla.up_proj").at("kv_latent"), T * 512 + 4 * T * 4);
  EXPECT_EQ(keeps.at("mla.q_norm").at("input"), 2 * T * 1536);
  EXPECT_EQ(keeps.at("mla.kv_norm").at("input"), 2 * T * 512);
  // Attention keeps Q and K [T, 128, 192] and V [T, 128, 128] in BF16 and
  // its output, the input of W^O, once in E5M6 with 1x128 scales:
  // 4096 * 16384 * 1.5 + 4 * 4096 * 128.
  EXPECT_EQ(keeps.at("mla.core_attn").at("q"), 2 * T * 128 * 192);
  EXPECT_EQ(keeps.at("mla.core_attn").at("k"), 2 * T * 128 * 192);
  EXPECT_EQ(keeps.at("mla.core_attn").at("v"), 2 * T * 128 * 128);
  EXPECT_EQ(keeps.at("mla.core_attn").at("out"), T * 16384 * 3 / 2 + 4 * T * 128);
  EXPECT_EQ(keeps.count("mla.o_proj"), 0u);  // W^O's input is that same E5M6 copy
}

TEST(Fp8Test, DelayedScalingKeepsAnExtraCopyOfTheAttentionOutput) {
  StatusOr<Config> c = V3("DELAYED");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto keeps = Keeps(*c);
  EXPECT_EQ(keeps.at("mla.core_attn").at("out"), 2 * T * 16384);  // BF16 O
  EXPECT_EQ(keeps.at("mla.o_proj").at("input"), T * 16384 + 4);   // and an FP8 copy
}

TEST(Fp8Test, TransformerEngineCachesFp8Weights) {
  // Per-tensor FP8 on Hopper: rowwise data and its transpose, 2 bytes a
  // GEMM weight parameter; DeepSeek's recipe quantizes weights per GEMM.
  EXPECT_EQ(Fp8WeightCacheBytes(Precision::TENSORWISE, 1000, 90), 2000);
  EXPECT_EQ(Fp8WeightCacheBytes(Precision::TENSORWISE, 1000, 100), 1000);
  EXPECT_EQ(Fp8WeightCacheBytes(Precision::DEEPSEEK_V3, 1000, 90), 0);
  StatusOr<Config> c = V3("TENSORWISE");
  ASSERT_TRUE(c.ok());
  bool found = false;
  for (const NamedBytes& b : FrameworkBuffers(*c, {1})) found |= b.name == "fp8_weight_cache";
  EXPECT_TRUE(found);
}

TEST(Fp8Test, OutputGradientLayouts) {
  // The output gradient [4096, 7168] of an FP8 GEMM as its W holds it.
  // Transformer Engine keeps both usages: per-tensor, the data and (before
  // Blackwell) its transpose with one FP32 scale;
  EXPECT_EQ(Fp8OutputGradBytes(Precision::TENSORWISE, T, h, 90), 2 * T * h + 4);
  EXPECT_EQ(Fp8OutputGradBytes(Precision::TENSORWISE, T, h, 100), T * h + 4);
  // MXFP8 rowwise E8M0 scales [R128(4096), R4(7168/32 = 224)] and columnwise
  // [R4(4096/32 = 128), R128(7168)];
  EXPECT_EQ(Fp8OutputGradBytes(Precision::MXFP8, T, h, 90), 2 * T * h + 4096 * 224 + 128 * 7168);
  // BLOCKWISE FP32 1x128 rowwise [7168/128 = 56, R4(4096)] and 128x1
  // columnwise [4096/128 = 32, R4(7168)];
  EXPECT_EQ(Fp8OutputGradBytes(Precision::BLOCKWISE, T, h, 90),
            2 * T * h + 4 * (56 * 4096 + 32 * 7168));
  // DeepSeek-V3: only the wgrad operand, one FP32 scale per 128 tokens of
  // each channel.
  EXPECT_EQ(Fp8OutputGradBytes(Precision::DEEPSEEK_V3, T, h, 90), T * h + 4 * h * 32);
}

TEST(Fp8Test, WeightGradientHoldsTheQuantizedOutputGradient) {
  StatusOr<Config> c = V3("DEEPSEEK_V3");
  ASSERT_TRUE(c.ok()) << c.status().message();
  StatusOr<StageDag> dag = BuildStageDag(*c, c->layout.stages[1]);  // layer 3 and the loss
  ASSERT_TRUE(dag.ok()) << dag.status().message();
  // The routed experts' down projection: its output gradient [32768, 7168]
  // arrives in BF16; B quantizes it for the wgrad GEMM, 234,881,024 B of
  // FP8 + 4 * 7168 * (32768 / 128) = 7,340,032 B of scales, frees the BF16
  // gradient, and W frees the FP8 one.
  int quantized = -1;
  for (size_t t = 0; t < dag->tensors.size(); ++t) {
    if (dag->tensors[t].name == "L3.moe.experts_fc2.grad_output_fp8") quantized = t;
  }
  ASSERT_GE(quantized, 0);
  EXPECT_EQ(dag->tensors[quantized].bytes, rows * h + 4 * h * (rows / 128));
  bool b_allocates = false, b_frees_bf16 = false, w_frees = false;
  for (const Op& op : dag->ops) {
    if (op.name != "L3.moe.experts_fc2") continue;
    for (const TensorEvent& e : op.events) {
      const Tensor& t = dag->tensors[e.tensor];
      if (op.kind == OpKind::kBackwardInput) {
        b_allocates |= e.allocate && e.tensor == quantized;
        b_frees_bf16 |= !e.allocate && t.name.ends_with(".grad_input");
      }
      if (op.kind == OpKind::kBackwardWeight) w_frees |= !e.allocate && e.tensor == quantized;
    }
  }
  EXPECT_TRUE(b_allocates);
  EXPECT_TRUE(b_frees_bf16);
  EXPECT_TRUE(w_frees);
  // Without FP8, W holds the BF16 gradient itself.
  StatusOr<Config> bf16 = V3("NONE");
  ASSERT_TRUE(bf16.ok());
  StatusOr<StageDag> plain = BuildStageDag(*bf16, bf16->layout.stages[1]);
  ASSERT_TRUE(plain.ok());
  for (const Tensor& t : plain->tensors) EXPECT_FALSE(t.name.ends_with(".grad_output_fp8"));
}

TEST(Fp8Test, TheOutputLayerStaysInBf16) {
  // Megatron's output layer is not a Transformer Engine module, and
  // DeepSeek keeps its output head in BF16: its input [4096, 7168] is kept
  // as 2 * 4096 * 7168 = 58,720,256 B under every recipe.
  for (const char* recipe : {"DEEPSEEK_V3", "TENSORWISE", "MXFP8"}) {
    StatusOr<Config> c = V3(recipe);
    ASSERT_TRUE(c.ok()) << c.status().message();
    Stage stage;
    stage.slots.push_back({SlotKind::kLoss, 0});
    for (const OpSpec& op : SlotOps(*c, stage, stage.slots[0])) {
      if (op.kind != "loss.head") continue;
      ASSERT_EQ(op.keeps.size(), 1u);
      EXPECT_EQ(op.keeps[0].bytes, 2 * T * h) << recipe;
      EXPECT_EQ(op.fp8_gemm_rows, 0) << recipe;
    }
  }
}

TEST(Fp8Test, ARecipeTheModelCannotTileIsRefusedNamingTheField) {
  StatusOr<Config> c = testing::ResolveText(
      "model { preset: 'llama-3-8b' hidden_size: 4000 num_attention_heads: 32 kv_channels: 128 }\n"
      "batch { seq_len: 128 }\nprecision { fp8_recipe: BLOCKWISE }\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "precision.fp8_recipe: BLOCKWISE stores GEMM inputs in tiles of 128: "
            "model.hidden_size (4000) is not a multiple of 128");
}

}  // namespace
}  // namespace stepsim::graph
