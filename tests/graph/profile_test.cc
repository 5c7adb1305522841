// The compiled-in framework profiles (graph/profiles/*.textproto): they
// parse, and every op and tensor they name is one the layer builders make
// and offer, so a typo cannot silently keep nothing.
#include "graph/profile.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "graph/activations.h"
#include "graph/layer_ops.h"
#include "graph/stage_dag.h"
#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

TEST(ProfileTest, TablesParseAndCoverEveryProfile) {
  EXPECT_EQ(ProfileTableProblems(), std::vector<std::string>{});
  for (FrameworkProfile p : {PAPER, MEGATRON_CORE, PYTORCH_EAGER}) {
    EXPECT_EQ(GetProfile(p).table().profile(), p);
    EXPECT_GT(GetProfile(p).table().ops_size(), 20) << FrameworkProfile_Name(p);
  }
  EXPECT_EQ(&GetProfile(FRAMEWORK_PROFILE_UNSPECIFIED), &GetProfile(MEGATRON_CORE));
}

// Model variants (model and parallel text, conventions) that between them
// make every op kind a builder has.
const std::vector<std::pair<std::string, std::string>>& Variants() {
  static const std::vector<std::pair<std::string, std::string>> v = {
      {"model { preset: 'deepseek-v3' num_layers: 4 first_dense_layers: 1 }\n"
       "parallel { tp: 2 ep: 8 dp: 8 }\n",
       "moe_aux_loss: true attention: FLASH"},
      {"model { preset: 'deepseek-v2-lite' num_layers: 3 }\nparallel { tp: 2 ep: 4 dp: 4 }\n",
       "moe_permute_fusion: true moe_shared_expert_overlap: true rope_fusion: false"},
      {"model { preset: 'qwen3-30b-a3b' num_layers: 2 }\n", "attention: EAGER"},
      {"model { preset: 'mixtral-8x7b' num_layers: 2 }\n", "attention: FLASH"},
      {"model { preset: 'gpt-22b' num_layers: 2 }\nparallel { tp: 2 }\n",
       "attention: EAGER dropout: true"},
      {"model { preset: 'gpt-22b' num_layers: 2 mlp_activation: SQUARED_RELU "
       "position_embedding: LEARNED_ABSOLUTE max_position_embeddings: 4096 }\n",
       ""},
      {"model { preset: 'deepseek-v3' num_layers: 2 first_dense_layers: 1 mlp_activation: GELU "
       "num_routed_experts: 8 moe_top_k: 2 }\n",
       "dropout: true attention: EAGER"},
      {"model { preset: 'deepseek-v3' num_layers: 2 first_dense_layers: 1 mlp_activation: "
       "SQUARED_RELU num_routed_experts: 8 moe_top_k: 2 }\n",
       ""},
  };
  return v;
}

TEST(ProfileTest, EveryOpAndTensorATableNamesExists) {
  for (FrameworkProfile p : {PAPER, MEGATRON_CORE, PYTORCH_EAGER}) {
    std::set<std::string> kinds;
    for (const auto& [v, conventions] : Variants()) {
      StatusOr<Config> c = testing::ResolveText(v + "batch { seq_len: 256 }\nconventions { profile: " +
                                                FrameworkProfile_Name(p) + " " + conventions +
                                                " }\n");
      ASSERT_TRUE(c.ok()) << v << c.status().message();
      for (const Stage& stage : c->layout.stages) {
        // Resolving keeps throws ProfileError for a tensor no op offers.
        for (const OpSpec& op : StageOps(*c, stage)) kinds.insert(op.kind);
        StatusOr<StageDag> dag = BuildStageDag(*c, stage);
        ASSERT_TRUE(dag.ok()) << dag.status().message();
      }
    }
    for (const OpKeeps& op : GetProfile(p).table().ops()) {
      EXPECT_TRUE(kinds.count(op.op())) << FrameworkProfile_Name(p) << ": op \"" << op.op()
                                        << "\" is never built";
    }
  }
}

// Kept bytes of the first op of `kind` among the stage's ops, by keep name.
std::map<std::string, int64_t> KeepsOf(const Config& c, const std::string& kind) {
  std::map<std::string, int64_t> out;
  for (const OpSpec& op : StageOps(c, c.layout.stages.at(0))) {
    if (op.kind != kind) continue;
    for (const Keep& k : op.keeps) out[k.name] += k.bytes;
    return out;
  }
  ADD_FAILURE() << "no op " << kind;
  return out;
}

Config Eager(const std::string& model, const std::string& extra,
             const std::string& conventions = "") {
  StatusOr<Config> c = testing::ResolveText(
      model + extra + "conventions { profile: PYTORCH_EAGER " + conventions + " }\n");
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? *c : Config{};
}

// HF's sdpa path with the flash kernel, Llama 3 8B (h 4096, 32 heads of 128,
// 8 key/value heads), b = 1, s = 4096, one device. torch >= 2.5 passes K and
// V at their 8 heads (enable_gqa); the kernel keeps
//   Q after RoPE  2 * 4096 * 32 * 128 = 33,554,432
//   K after RoPE  2 * 4096 *  8 * 128 =  8,388,608
//   V (v_proj's output, viewed)       =  8,388,608
//   logsumexp FP32  4 * 32 * 4096     =    524,288
// = 50,855,936 B a layer; the output is o_proj's input (counted there), the
// Philox seed and offset are CPU scalars. No [b, s, s] mask is made.
TEST(ProfileTest, EagerSdpaFlashKeepsQkvAtTheirHeadsAndTheLogsumexp) {
  const Config c = Eager("model { preset: 'llama-3-8b' num_layers: 1 }\n",
                         "batch { seq_len: 4096 }\n", "attention: FLASH");
  EXPECT_EQ(KeepsOf(c, "attention.core_attn"),
            (std::map<std::string, int64_t>{
                {"q", 33'554'432}, {"k", 8'388'608}, {"v_source", 8'388'608}, {"sdpa_lse", 524'288}}));
  EXPECT_EQ(KeepsOf(c, "attention.o_proj").at("input"), 33'554'432);  // the kernel's output
  EXPECT_EQ(KeepsOf(c, "embedding.lookup").count("causal_mask"), 0u);
}

// MLA under sdpa (DeepSeek-V3: 128 heads, d_nope 128, d_rope 64, d_v 128),
// b = 1, s = 1000: V's head dim differs from Q's, so the memory-efficient
// kernel runs and pads its logsumexp rows to a multiple of 32:
//   Q = K   2 * 1000 * 128 * 192 = 49,152,000 each
//   V       a split view of kv_b_proj's output [s, 128 * (128 + 128)]:
//           2 * 1000 * 128 * 256 = 65,536,000
//   log_sumexp FP32 4 * 128 * 1024 = 524,288 (1000 rows padded to 1024)
TEST(ProfileTest, EagerSdpaMlaRunsTheEfficientKernelWithAlignedLogsumexp) {
  const Config c = Eager(
      "model { preset: 'deepseek-v3' num_layers: 1 first_dense_layers: 1 mtp_num_layers: 0 }\n",
      "batch { seq_len: 1000 }\n", "attention: FLASH");
  EXPECT_EQ(KeepsOf(c, "mla.core_attn"),
            (std::map<std::string, int64_t>{{"q", 49'152'000},
                                            {"k", 49'152'000},
                                            {"v_source", 65'536'000},
                                            {"sdpa_lse", 524'288}}));
}

// Kept bytes of the stage's forward ops by op name (stepsim activations).
std::map<std::string, int64_t> StageOpKeeps(const Config& c) {
  StatusOr<std::vector<StageActivations>> a = ComputeActivations(c);
  EXPECT_TRUE(a.ok()) << a.status().message();
  return a.ok() ? a->at(0).ops : std::map<std::string, int64_t>{};
}

// HF's gradient checkpointing (recompute FULL): Llama 3 8B, 2 layers,
// b = 1, s = 1024. Each layer's checkpoint saves its BF16 input,
// 2 * 1024 * 4096 = 8,388,608 B, and nothing else of the layer stays; the
// layers' partials hold the embedding's arguments: the BF16 mask
// [1, 1, 1024, 1024] = 2,097,152, the int64 cache position 8 * 1024 = 8,192,
// besides the int64 ids 8,192 and RoPE's BF16 cos and sin 2 * 2 * 1024 * 128
// = 524,288 kept anyway: 2,637,824 B. BLOCK over 1 layer: the second layer
// keeps what it keeps without recomputation, its norm 10h + 4 bytes a token
// (FP32 upcast and square, rstd, BF16 normalised) and not its input.
TEST(ProfileTest, EagerGradientCheckpointingKeepsLayerInputsAndTheirArguments) {
  const std::string model = "model { preset: 'llama-3-8b' num_layers: 2 }\n";
  const std::string batch = "batch { seq_len: 1024 }\n";
  const auto full = StageOpKeeps(Eager(model, batch + "recompute { policy: FULL }\n"));
  EXPECT_EQ(full.at("embedding.lookup"), 2'637'824);
  int64_t layers = 0;
  for (const auto& [op, bytes] : full) {
    if (op[0] == 'L') layers += bytes;
  }
  EXPECT_EQ(full.at("L0.attention.attn_norm"), 8'388'608);
  EXPECT_EQ(full.at("L1.attention.attn_norm"), 8'388'608);
  EXPECT_EQ(layers, 2 * 8'388'608);

  const auto block = StageOpKeeps(
      Eager(model, batch + "recompute { policy: FULL method: BLOCK num_layers: 1 }\n"));
  EXPECT_EQ(block.at("embedding.lookup"), 2'637'824);
  EXPECT_EQ(block.at("L0.attention.attn_norm"), 8'388'608);
  EXPECT_EQ(block.at("L1.attention.attn_norm"), 1024 * (10 * 4096 + 4));

  // Without recomputation the mask is a forward workspace and the position
  // is not kept: the ids and RoPE's tables only.
  const auto none = StageOpKeeps(Eager(model, batch));
  EXPECT_EQ(none.at("embedding.lookup"), 8'192 + 524'288);
  EXPECT_EQ(none.at("L0.attention.attn_norm"), 1024 * (10 * 4096 + 4));
}

// A GPT-style eager model with dropout (GPT-22B: h 6144, 64 heads, GeLU
// MLP of 24576), b = 1, s = 1024: native_dropout keeps only its bool mask,
// 1 byte an element; GeLU keeps its BF16 input.
//   attention dropout mask  64 * 1024 * 1024 = 67,108,864
//   residual dropout mask   1024 * 6144      =  6,291,456 (after o_proj and the MLP)
//   GeLU input              2 * 1024 * 24576 = 50,331,648
TEST(ProfileTest, EagerDropoutKeepsItsMaskAndGeluItsInput) {
  const Config c = Eager("model { preset: 'gpt-22b' num_layers: 1 }\n",
                         "batch { seq_len: 1024 }\n", "attention: EAGER dropout: true");
  EXPECT_EQ(KeepsOf(c, "attention.attn_dropout"),
            (std::map<std::string, int64_t>{{"mask", 67'108'864}}));
  EXPECT_EQ(KeepsOf(c, "attention.dropout"),
            (std::map<std::string, int64_t>{{"mask", 6'291'456}}));
  EXPECT_EQ(KeepsOf(c, "mlp.dropout"), (std::map<std::string, int64_t>{{"mask", 6'291'456}}));
  EXPECT_EQ(KeepsOf(c, "mlp.gelu"), (std::map<std::string, int64_t>{{"input", 50'331'648}}));
}

}  // namespace
}  // namespace stepsim::graph
