// Per-micro-batch activation bytes of whole stages, emerging from the DAG's
// tensor events, against the paper's and Korthikanti et al.'s formulas.
#include "graph/activations.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

using testing::LoadScenario;

int64_t StageKept(const Config& c, int stage) {
  StatusOr<std::vector<StageActivations>> a = ComputeActivations(c);
  EXPECT_TRUE(a.ok()) << a.status().message();
  return a.ok() ? (*a)[stage].per_microbatch_bytes : -1;
}

// Paper setup, stage 1 (four MoE layers), s = 4096, h = 7168, N_r = 8.
// Full recomputation keeps each block's input, 2bsh / TP for the MLA block
// and the MoE block, and the MoE dispatch map 2bs N_r:
//   4 layers * (2 * 2bsh/2 + 2bs*8) = 8bsh + 8bs*8 = 235,143,168 B at b = 1.
class FullRecomputeTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(FullRecomputeTest, PaperStageOfFourMoeLayers) {
  const int64_t b = GetParam();
  const Config c = LoadScenario("deepseek_v3_paper.textproto",
                                {"recompute.policy=FULL",
                                 "batch.micro_batch_size=" + std::to_string(b)});
  const int64_t expected = 8 * b * 4096 * 7168 + 8 * b * 4096 * 8;
  EXPECT_EQ(StageKept(c, 1), expected);
  if (b == 1) {
    EXPECT_EQ(expected, 235'143'168);
  }
}

INSTANTIATE_TEST_SUITE_P(MicroBatch, FullRecomputeTest, ::testing::Values(1, 2, 4));

// Without recomputation, one MoE layer of the paper's stage keeps
//   MLA: 2bsh/t (norm) + 2bsh/t (down-proj input) + 2bs(d_cq + d_c)
//        + 4bs(d_h + d_hr)n_h/t + 2bn_h s^2/t + (bn_h s^2 + 2bn_h s^2)/t
//        + 2bs d_h n_h/t (V) + 2bs d_h n_h/t (W^O input) + bsh/t (mask)
//   MoE: 4bsh/t + 4bsN + 2bsN_r + (bsN_r/EP)(3h + 8h_E) + bs(3h + 8h_E)
// with t = 2, EP = 8. Everything scales with b except the s^2 terms' b,
// which is linear too.
int64_t PaperLayer(int64_t b) {
  const int64_t s = 4096, h = 7168, nh = 128, t = 2, N = 256, Nr = 8, hE = 2048;
  const int64_t mla = 2 * b * s * h / t + 2 * b * s * h / t + 2 * b * s * (1536 + 512) +
                      4 * b * s * (128 + 64) * nh / t + 2 * b * nh * s * s / t +
                      (b * nh * s * s + 2 * b * nh * s * s) / t + 2 * b * s * 128 * nh / t +
                      2 * b * s * 128 * nh / t + b * s * h / t;
  const int64_t moe = 4 * b * s * h / t + 4 * b * s * N + 2 * b * s * Nr +
                      (b * s * Nr / 8) * (3 * h + 8 * hE) + b * s * (3 * h + 8 * hE);
  return mla + moe;
}

class NoRecomputeTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(NoRecomputeTest, PaperStageOfFourMoeLayers) {
  const int64_t b = GetParam();
  const Config c = LoadScenario("deepseek_v3_paper.textproto",
                                {"batch.micro_batch_size=" + std::to_string(b)});
  EXPECT_EQ(StageKept(c, 1), 4 * PaperLayer(b));
  if (b == 1) {
    EXPECT_EQ(4 * PaperLayer(1), 24'671'158'272);
  }
}

INSTANTIATE_TEST_SUITE_P(MicroBatch, NoRecomputeTest, ::testing::Values(1, 2, 4));

// GPT (Korthikanti et al.): stage 0 of "Et|tL" holds the embedding and
// layer 0; the layer is the attention and mlp modules. `conventions` picks
// the profile and attention.
int64_t GptLayerKept(int64_t tp, const std::string& recompute,
                     const std::string& conventions = "profile: PAPER attention: EAGER") {
  StatusOr<Config> c = testing::ResolveText(
      "model { preset: 'gpt-22b' num_layers: 2 }\n"
      "parallel { pp: 2 tp: " + std::to_string(tp) + " layout: 'Et|tL' }\n"
      "batch { seq_len: 2048 micro_batch_size: 1 }\n"
      "conventions { " + conventions + " dropout: true }\n" + recompute);
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (!c.ok()) return -1;
  StatusOr<std::vector<StageActivations>> a = ComputeActivations(*c);
  EXPECT_TRUE(a.ok());
  return (*a)[0].modules.at("attention") + (*a)[0].modules.at("mlp");
}

TEST(ActivationsTest, KorthikantiNoParallelism) {
  // s b h (34 + 5 a s / h) with s = 2048, b = 1, h = 6144, a = 64.
  const int64_t s = 2048, h = 6144, a = 64;
  EXPECT_EQ(GptLayerKept(1, ""), s * h * 34 + 5 * a * s * s);
}

TEST(ActivationsTest, KorthikantiSequenceParallelSelectiveCoreAttention) {
  // 34 s b h / t with t = 8.
  EXPECT_EQ(GptLayerKept(8, "recompute { policy: SELECTIVE modules: 'core_attn' }\n"),
            34 * int64_t{2048} * 6144 / 8);
}

// Megatron-Core with Transformer Engine (graph/profiles/megatron_core.textproto)
// on the same layer, t = 8 with SP, s = 2048, b = 1, h = 6144, a = 64 heads,
// cuDNN fused attention, selective recomputation of core_attn, dropout on.
// Per layer, in units of sbh/t bytes:
//   fused LayerNorm + QKV: the norm input 2 and its output (ln_out) 2;
//   attention: Q 2, K 2, V 2 (MHA: 64 key/value heads), O 2 (linear_proj's
//     input, the same storage); the stats 4*b*a/t*s and rng are recomputed;
//   residual dropout mask 1 (bool);
//   fused LayerNorm + fc1: input 2 and ln_out 2; bias-GeLU input 2*4h = 8;
//   fc2 input 8; residual dropout mask 1                         -> 34.
// TE also keeps each LayerNorm's FP32 mean and rstd, 4 + 4 bytes a token:
// two norms, 16*sb/t.
TEST(ActivationsTest, MegatronCoreKorthikantiLayerWithSelectiveCoreAttention) {
  const int64_t s = 2048, h = 6144, t = 8;
  EXPECT_EQ(GptLayerKept(t, "recompute { policy: SELECTIVE modules: 'core_attn' }\n",
                         "profile: MEGATRON_CORE attention: FLASH"),
            34 * s * h / t + 16 * s / t);
  // Without the recomputation the stats 4*b*(a/t)*s = 65,536 and the rng
  // state (two int64) stay as well.
  EXPECT_EQ(GptLayerKept(t, "", "profile: MEGATRON_CORE attention: FLASH"),
            34 * s * h / t + 16 * s / t + 4 * (64 / t) * s + 16);
}

TEST(ActivationsTest, MegatronCoreFullRecomputeKeepsOneInputPerLayer) {
  // recompute_granularity full: each layer keeps its input [s/t, b, h]
  // BF16, 2*s*b*h/t, and nothing else (recompute.py checkpointed_forward);
  // the embedding stage still keeps the int64 token ids 8*s*b, its TP mask
  // s*b and, with dropout, the embedding dropout mask s*b*h/t.
  const int64_t s = 2048, h = 6144, t = 8;
  StatusOr<Config> c = testing::ResolveText(
      "model { preset: 'gpt-22b' num_layers: 3 }\n"
      "parallel { pp: 2 tp: 8 layout: 'Ett|tL' }\n"
      "batch { seq_len: 2048 micro_batch_size: 1 }\n"
      "conventions { profile: MEGATRON_CORE dropout: true }\n"
      "recompute { policy: FULL }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  StatusOr<std::vector<StageActivations>> a = ComputeActivations(*c);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ((*a)[0].per_microbatch_bytes, 2 * (2 * s * h / t) + 8 * s + s + s * h / t);
}

TEST(ActivationsTest, MegatronCoreFusedSwiGluKeepsItsInputOnly) {
  // Llama 3 8B, TP 1: fused bias-SwiGLU keeps [t, 2f] BF16, 4f bytes a token
  // (fused_bias_swiglu.py SwiGLUFunction); fc2 keeps the [t, f] output, 2f.
  const int64_t tokens = 4096, f = 14336;
  StatusOr<Config> c = testing::ResolveText(
      "model { preset: 'llama-3-8b' num_layers: 2 }\n"
      "parallel { pp: 2 layout: 'Et|tL' }\n"
      "batch { seq_len: 4096 micro_batch_size: 1 }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  StatusOr<std::vector<StageActivations>> a = ComputeActivations(*c);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ((*a)[0].ops.at("L0.mlp.act"), 4 * f * tokens);
  EXPECT_EQ((*a)[0].ops.at("L0.mlp.fc2"), 2 * f * tokens);
}

TEST(ActivationsTest, RecomputeBuffersAppearOnlyInBackward) {
  // Under full recomputation the backward materialises a block's tensors as
  // recompute buffers; the largest group is one MLA block of the paper's
  // layer without its input: 5,794,430,976 - 29,360,128 = 5,765,070,848.
  const Config c = LoadScenario("deepseek_v3_paper.textproto", {"recompute.policy=FULL"});
  StatusOr<std::vector<StageActivations>> a = ComputeActivations(c);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)[1].recompute_peak_bytes, 5'794'430'976 - 29'360'128);
}

TEST(ActivationsTest, BlockMethodRecomputesOnlyTheFirstLayers) {
  // BLOCK with 1 layer: layer 4 keeps its checkpoints only, layers 5-7 all.
  const Config c = LoadScenario("deepseek_v3_paper.textproto",
                                {"recompute.policy=FULL", "recompute.method=BLOCK",
                                 "recompute.num_layers=1"});
  const int64_t checkpoint = 2 * 4096 * 7168 + 2 * 4096 * 8;  // 2 * 2bsh/t + 2bsN_r
  EXPECT_EQ(StageKept(c, 1), checkpoint + 3 * PaperLayer(1));
}

TEST(ActivationsTest, SelectiveUpProjectionAndNorms) {
  // mla_up_proj discards Q, K and V; layernorm discards the norm outputs
  // (the down-projection input and the MoE norm's output), 2bsh/t each.
  const Config c = LoadScenario(
      "deepseek_v3_paper.textproto",
      {"recompute.policy=SELECTIVE", "recompute.modules=mla_up_proj,layernorm"});
  const int64_t qkv = 4 * 4096 * 192 * 128 / 2 + 2 * 4096 * 128 * 128 / 2;
  const int64_t norms = 2 * (2 * 4096 * 7168 / 2);
  EXPECT_EQ(StageKept(c, 1), 4 * (PaperLayer(1) - qkv - norms));
}

}  // namespace
}  // namespace stepsim::graph
