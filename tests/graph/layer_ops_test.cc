// What each forward op keeps, op by op, against memory-model.md section 4.
// Paper setup: b = 1, s = 4096, h = 7168, n_h = 128, d_cq = 1536, d_c = 512,
// d_h = 128, d_hr = 64, N = 256, N_r = 8, h_E = 2048, TP 2 with SP, EP 8.
#include "graph/layer_ops.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

using testing::LoadScenario;

// Kept bytes of every op of one decoder layer, by op name without the
// "L<n>." prefix, and keep name: {"mla.qk": {"q": bytes, "k": bytes}}.
std::map<std::string, std::map<std::string, int64_t>> LayerKeeps(const Config& c, int64_t layer) {
  Stage stage;
  stage.slots.push_back({SlotKind::kDecoder, layer});
  std::map<std::string, std::map<std::string, int64_t>> out;
  for (const OpSpec& op : SlotOps(c, stage, stage.slots[0])) {
    const std::string name = op.name.substr(op.name.find('.') + 1);
    for (const Keep& k : op.keeps) out[name][k.name] += k.bytes;
  }
  return out;
}

int64_t Sum(const std::map<std::string, std::map<std::string, int64_t>>& keeps) {
  int64_t total = 0;
  for (const auto& [op, ks] : keeps) {
    for (const auto& [k, bytes] : ks) total += bytes;
  }
  return total;
}

constexpr int64_t b = 1, s = 4096, h = 7168, nh = 128, t = 2;

TEST(LayerOpsTest, MlaTermsOfThePaper) {
  const auto keeps = LayerKeeps(LoadScenario("deepseek_v3_paper.textproto"), 4);
  // attention RMSNorm: its input, 2bsh / t = 29,360,128
  EXPECT_EQ(keeps.at("mla.attn_norm").at("input"), 2 * b * s * h / t);
  // down-projections: their shared input, 2bsh / t
  EXPECT_EQ(keeps.at("mla.down_proj").at("input"), 2 * b * s * h / t);
  // up-projections: the latents, 2bs(d_cq + d_c) = 16,777,216, not divided by TP
  EXPECT_EQ(keeps.at("mla.up_proj").at("q_latent") + keeps.at("mla.up_proj").at("kv_latent"),
            2 * b * s * (1536 + 512));
  // QK^T: Q and K, 2*2bs(d_h + d_hr)n_h / t = 201,326,592
  EXPECT_EQ(keeps.at("mla.qk").at("q") + keeps.at("mla.qk").at("k"),
            2 * 2 * b * s * (128 + 64) * nh / t);
  // softmax: its output, 2b n_h s^2 / t = 2,147,483,648
  EXPECT_EQ(keeps.at("mla.softmax").at("output"), 2 * b * nh * s * s / t);
  // attention dropout: mask b n_h s^2 / t and output 2b n_h s^2 / t
  EXPECT_EQ(keeps.at("mla.attn_dropout").at("mask"), b * nh * s * s / t);
  EXPECT_EQ(keeps.at("mla.attn_dropout").at("output"), 2 * b * nh * s * s / t);
  // attention x V: V, 2bs d_h n_h / t = 67,108,864
  EXPECT_EQ(keeps.at("mla.attn_v").at("v"), 2 * b * s * 128 * nh / t);
  // W^O: its input, 2bs d_h n_h / t
  EXPECT_EQ(keeps.at("mla.o_proj").at("input"), 2 * b * s * 128 * nh / t);
  // output dropout: mask bsh / t = 14,680,064
  EXPECT_EQ(keeps.at("mla.dropout").at("mask"), b * s * h / t);
}

TEST(LayerOpsTest, MoeTermsOfThePaper) {
  const auto keeps = LayerKeeps(LoadScenario("deepseek_v3_paper.textproto"), 4);
  // MoE RMSNorm: input and output, 4bsh / t = 58,720,256
  EXPECT_EQ(keeps.at("moe.moe_norm").at("input") + keeps.at("moe.moe_norm").at("output"),
            4 * b * s * h / t);
  // router: logits and probabilities, 4bsN = 4,194,304 (whole)
  EXPECT_EQ(keeps.at("moe.router").at("logits") + keeps.at("moe.router").at("probs"),
            4 * b * s * 256);
  // top-k dispatch map: 2bs N_r = 65,536 (whole)
  EXPECT_EQ(keeps.at("moe.dispatch").at("dispatch_map"), 2 * b * s * 8);
  // routed experts, LOCAL: N/EP = 32 experts on the device, each with
  // E_token = bs N_r / N = 128 tokens: 4,096 token-copies, each keeping
  // input 2h, output mask h and SwiGLU intermediates 8h_E.
  const int64_t copies = (256 / 8) * (b * s * 8 / 256);
  EXPECT_EQ(copies, 4096);
  EXPECT_EQ(keeps.at("moe.experts_fc1").at("input"), copies * 2 * h);
  EXPECT_EQ(keeps.at("moe.experts_dropout").at("mask"), copies * h);
  EXPECT_EQ(keeps.at("moe.experts_act").at("gate") + keeps.at("moe.experts_act").at("up") +
                keeps.at("moe.experts_act").at("silu") + keeps.at("moe.experts_fc2").at("input"),
            copies * 8 * 2048);
  // one shared expert over all bs tokens: 3h + 8h_E each
  EXPECT_EQ(keeps.at("moe.shared_fc1").at("input") + keeps.at("moe.shared_dropout").at("mask") +
                keeps.at("moe.shared_act").at("gate") + keeps.at("moe.shared_act").at("up") +
                keeps.at("moe.shared_act").at("silu") + keeps.at("moe.shared_fc2").at("input"),
            b * s * (3 * h + 8 * 2048));
}

TEST(LayerOpsTest, PaperMoeLayerTotal) {
  // MLA: 2*29,360,128 + 16,777,216 + 201,326,592 + 2*2,147,483,648
  //      + 1,073,741,824 + 2*67,108,864 + 14,680,064 = 5,794,430,976
  // MoE: 58,720,256 + 4,194,304 + 65,536 + 2*155,189,248 = 373,358,592
  const int64_t mla = 2 * 29'360'128 + 16'777'216 + 201'326'592 + 2 * 2'147'483'648 +
                      1'073'741'824 + 2 * 67'108'864 + 14'680'064;
  const int64_t moe = 58'720'256 + 4'194'304 + 65'536 + 2 * int64_t{4096} * (3 * h + 8 * 2048);
  EXPECT_EQ(mla, 5'794'430'976);
  EXPECT_EQ(moe, 373'358'592);
  EXPECT_EQ(Sum(LayerKeeps(LoadScenario("deepseek_v3_paper.textproto"), 4)), mla + moe);
}

TEST(LayerOpsTest, FlashAttentionDropsTheSquareTerms) {
  // FLASH keeps Q, K, V and an FP32 log-sum-exp 4 b n_h s / t; the output is
  // W^O's input, kept there. It removes softmax (2), dropout mask (1) and
  // output (2): 5 b n_h s^2 / t.
  const auto eager = LayerKeeps(LoadScenario("deepseek_v3_paper.textproto"), 4);
  const auto flash =
      LayerKeeps(LoadScenario("deepseek_v3_paper.textproto", {"conventions.attention=FLASH"}), 4);
  EXPECT_EQ(flash.at("mla.core_attn").at("lse"), 4 * b * nh * s / t);
  EXPECT_EQ(Sum(eager) - Sum(flash), 5 * b * nh * s * s / t - 4 * b * nh * s / t);
  EXPECT_EQ(flash.count("mla.softmax"), 0u);
}

TEST(LayerOpsTest, DispatchedTokensAreEpTimesLocal) {
  // DISPATCHED: each EP rank receives its share of the whole EP group's
  // tokens, bs N_r = 32,768 copies with the paper's whole-sequence MoE
  // terms: EP = 8 times LOCAL's 4,096. With the physical TOKENS_HELD the
  // rank holds s / t = 2,048 tokens under SP: 16,384 copies, 4 times LOCAL.
  const auto local = LayerKeeps(LoadScenario("deepseek_v3_paper.textproto"), 4);
  const auto dispatched = LayerKeeps(
      LoadScenario("deepseek_v3_paper.textproto", {"conventions.moe_tokens=DISPATCHED"}), 4);
  EXPECT_EQ(dispatched.at("moe.experts_fc1").at("input"),
            8 * local.at("moe.experts_fc1").at("input"));
  EXPECT_EQ(dispatched.at("moe.experts_fc1").at("input"), 32768 * 2 * h);
  const auto held = LayerKeeps(
      LoadScenario("deepseek_v3_paper.textproto",
                   {"conventions.moe_tokens=DISPATCHED", "conventions.moe_activations=TOKENS_HELD"}),
      4);
  EXPECT_EQ(held.at("moe.experts_fc1").at("input"), 16384 * 2 * h);
  // Routing imbalance multiplies the hot rank's copies: 1.5 * 16,384.
  const auto hot = LayerKeeps(
      LoadScenario("deepseek_v3_paper.textproto",
                   {"conventions.moe_tokens=DISPATCHED", "conventions.moe_activations=TOKENS_HELD",
                    "conventions.routing_imbalance=1.5"}),
      4);
  EXPECT_EQ(hot.at("moe.experts_fc1").at("input"), 24576 * 2 * h);
}

// A GPT layer of Korthikanti et al. (arXiv 2205.05198): s b h (34 + 5 a s / h)
// without parallelism or recomputation; 34 s b h / t with sequence
// parallelism and selective recomputation of core attention.
StatusOr<Config> Gpt(int64_t tp, const std::string& recompute) {
  return testing::ResolveText(
      "model { preset: 'gpt-22b' }\n"
      "parallel { tp: " + std::to_string(tp) + " }\n"
      "batch { seq_len: 2048 micro_batch_size: 1 }\n"
      "conventions { profile: PAPER attention: EAGER dropout: true }\n" + recompute);
}

TEST(LayerOpsTest, KorthikantiDenseLayer) {
  StatusOr<Config> c = Gpt(1, "");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const int64_t gs = 2048, gh = 6144, ga = 64;
  EXPECT_EQ(Sum(LayerKeeps(*c, 0)), gs * 1 * gh * 34 + 5 * ga * gs * gs * 1);
}

TEST(LayerOpsTest, GptLayerFlops) {
  // Korthikanti et al.: the matmuls of a GPT layer take 24 b s h^2 FLOPs
  // forward (QKV 6, projection 2, MLP 16), attention 4 b s^2 h, which causal
  // masking halves: 2 b s^2 h. Backward input and weight gradients each
  // repeat the matmuls.
  StatusOr<Config> c = Gpt(1, "");
  ASSERT_TRUE(c.ok()) << c.status().message();
  Stage stage;
  stage.slots.push_back({SlotKind::kDecoder, 0});
  std::map<std::string, const OpSpec*> ops;
  const std::vector<OpSpec> specs = SlotOps(*c, stage, stage.slots[0]);
  for (const OpSpec& op : specs) ops[op.name.substr(op.name.find('.') + 1)] = &op;
  const double gb = 1, gs = 2048, gh = 6144;
  const double matmul = ops.at("attention.qkv_proj")->flops + ops.at("attention.o_proj")->flops +
                        ops.at("mlp.fc1")->flops + ops.at("mlp.fc2")->flops;
  EXPECT_DOUBLE_EQ(matmul, 24 * gb * gs * gh * gh);
  EXPECT_DOUBLE_EQ(ops.at("attention.qk")->flops + ops.at("attention.attn_v")->flops,
                   2 * gb * gs * gs * gh);
  EXPECT_DOUBLE_EQ(ops.at("mlp.fc1")->weight_flops, ops.at("mlp.fc1")->flops);
  EXPECT_DOUBLE_EQ(ops.at("mlp.fc1")->backward_flops, ops.at("mlp.fc1")->flops);
}

}  // namespace
}  // namespace stepsim::graph
