// Resolution of scenarios: presets, defaults, and validation messages.
#include "graph/config.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

using testing::LoadScenario;
using testing::ResolveText;

std::string ErrorOf(const std::string& text) {
  StatusOr<Config> c = ResolveText(text);
  EXPECT_FALSE(c.ok());
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidInput);
  return c.status().message();
}

constexpr char kTiny[] = "model { preset: 'deepseek-v3' }\nbatch { seq_len: 4096 }\n";

TEST(ConfigTest, PaperScenarioResolves) {
  const Config c = LoadScenario("deepseek_v3_paper.textproto");
  EXPECT_EQ(c.model.hidden, 7168);
  EXPECT_EQ(c.model.mtp_layers, 0);
  EXPECT_EQ(c.parallel.edp, 8);      // 32*2/(8*1)
  EXPECT_EQ(c.parallel.world, 1024);  // 32*2*16
  EXPECT_TRUE(c.parallel.sequence_parallel);
  EXPECT_EQ(c.conventions.attention, EAGER);
  EXPECT_EQ(c.conventions.moe_tokens, LOCAL);
  EXPECT_EQ(c.layout.stages.size(), 16u);
}

TEST(ConfigTest, DefaultsAreDocumentedValues) {
  StatusOr<Config> c = ResolveText(kTiny);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->parallel.pp, 1);
  EXPECT_EQ(c->parallel.tp, 1);
  EXPECT_FALSE(c->parallel.sequence_parallel);
  EXPECT_EQ(c->batch.micro_batch_size, 1);
  EXPECT_EQ(c->batch.microbatches, 1);
  EXPECT_EQ(c->precision.weight, 2);
  EXPECT_EQ(c->precision.gradient, 4);
  EXPECT_EQ(c->precision.optimizer, 8);
  EXPECT_EQ(c->zero_stage, 0);
  EXPECT_EQ(c->recompute.policy, NONE);
  EXPECT_EQ(c->conventions.attention, FLASH);
  EXPECT_EQ(c->conventions.moe_tokens, DISPATCHED);
  EXPECT_EQ(c->schedule, ONE_F_ONE_B);
  EXPECT_EQ(c->hardware.gpu, H800);
}

TEST(ConfigTest, PresetFieldsCanBeOverridden) {
  StatusOr<Config> c = ResolveText(
      "model { preset: 'deepseek-v3' num_routed_experts: 64 mtp_num_layers: 0 }\n"
      "batch { seq_len: 128 }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->model.experts, 64);
  EXPECT_EQ(c->model.hidden, 7168);
  EXPECT_EQ(c->model.mtp_layers, 0);
}

TEST(ConfigTest, PresetLayoutIsUsedForItsPipelineSize) {
  StatusOr<Config> c = ResolveText(std::string(kTiny) + "parallel { pp: 16 }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->layout.text, "Et*4|(t*4|)*14,tmL");
  StatusOr<Config> other = ResolveText(std::string(kTiny) + "parallel { pp: 8 }\n");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->layout.text, "");  // the default split
}

TEST(ConfigTest, EveryParallelProblemIsListed) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "parallel { tp: 3 ep: 7 dp: 4 }\n"),
            "parallel.tp: 3 does not divide model.num_attention_heads (128)\n"
            "parallel.ep: 7 does not divide model.num_routed_experts (256)\n"
            "parallel.ep: EP*ETP = 7 does not divide DP*CP*TP = 12, so the expert data-parallel "
            "size EDP is not whole\n"
            "parallel.tp: 3 does not divide the sequence per context-parallel rank (sequence "
            "parallelism) (4096)\n"
            "parallel.tp: 3 does not divide the shared experts' width "
            "(model.shared_expert_ffn_hidden_size) (2048)");
}

TEST(ConfigTest, ZeroAndNegativeSizes) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "parallel { pp: 0 dp: -2 }\n"),
            "parallel.pp: must be at least 1, got 0\n"
            "parallel.dp: must be at least 1, got -2");
  EXPECT_EQ(ErrorOf("model { preset: 'deepseek-v3' }\nbatch { seq_len: 4096 "
                    "num_microbatches: 0 micro_batch_size: -1 }\n"),
            "batch.micro_batch_size: must be at least 1, got -1\n"
            "batch.num_microbatches: must be at least 1, got 0");
  EXPECT_EQ(ErrorOf("model { preset: 'deepseek-v3' }\n"), "batch.seq_len: required");
}

TEST(ConfigTest, MorePipelineStagesThanLayers) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "parallel { pp: 64 }\n"),
            "parallel.pp: 64 pipeline stages (pp * vpp) but only 61 transformer layers; give a "
            "parallel.layout to allow stages without layers");
}

TEST(ConfigTest, LayoutMustMatchTheModel) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "parallel { pp: 2 layout: 'Et*30|t*30mL' }\n"),
            "parallel.layout: 60 transformer layers t, but the model has 61");
  EXPECT_EQ(
      ErrorOf(std::string(kTiny) + "parallel { pp: 2 vpp: 3 layout: 'Et*30|t*31mL' }\n"),
      "parallel.vpp: 3 does not match the layout's 1 chunks per rank");
}

TEST(ConfigTest, UnknownPresetAndRecomputeModules) {
  EXPECT_EQ(ErrorOf("model { preset: 'deepseek-v4' }\nbatch { seq_len: 1 }\n"),
            "model.preset: unknown preset \"deepseek-v4\" (known: deepseek-v2, deepseek-v2-lite, "
            "deepseek-v3, gpt-22b, llama-3-8b, llama-3.1-405b, llama-3.1-70b, mixtral-8x22b, "
            "mixtral-8x7b, moonlight-16b-a3b, qwen3-30b-a3b)");
  EXPECT_EQ(ErrorOf(std::string(kTiny) +
                    "recompute { policy: SELECTIVE modules: 'attention' modules: 'moe' }\n"),
            "recompute.modules: unknown module \"attention\" (expected one of core_attn, "
            "mla_up_proj, moe_act, layernorm, mlp, moe, shared_experts)");
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "recompute { policy: SELECTIVE }\n"),
            "recompute.modules: policy SELECTIVE needs at least one module");
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "recompute { policy: FULL method: BLOCK }\n"),
            "recompute.num_layers: required with method BLOCK");
}

TEST(ConfigTest, ContextParallelMustDivideTheSequence) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "parallel { cp: 3 }\n"),
            "parallel.cp: 3 does not divide batch.seq_len (4096)");
}

TEST(ConfigTest, ZeroStageRangeAndPrecision) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "zero { stage: 4 }\nprecision { weight_bytes: 0 }\n"),
            "precision.weight_bytes: 0 is outside 1..64 bytes\n"
            "zero.stage: 4 is outside 0..3");
}

TEST(ConfigTest, HardwareMustBePositive) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) +
                    "hardware { network_bandwidth: 0 efficiency: 1.5 hbm_bytes: 0 }\n"),
            "hardware.network_bandwidth: must be a positive number\n"
            "hardware.efficiency: must be in (0, 1]\n"
            "hardware.hbm_bytes: must be between 1 and 2^50 (1 PiB)");
}

TEST(ConfigTest, NumericEnumValuesMustExist) {
  // Scenario files name enum values (scenario_text_test.cc); a Scenario
  // built in code may still hold any number.
  StatusOr<Scenario> s =
      ParseScenario("model { preset: 'deepseek-v3' }\nbatch { seq_len: 1 }\n", "test.textproto");
  ASSERT_TRUE(s.ok()) << s.status().message();
  s->mutable_model()->set_attention(static_cast<AttentionKind>(5));
  s->mutable_schedule()->set_kind(static_cast<ScheduleKind>(99));
  EXPECT_EQ(Resolve(*s).status().message(),
            "model.attention: unknown value 5 (expected one of MLA, MHA)\n"
            "schedule.kind: unknown value 99 (expected one of GPIPE, ONE_F_ONE_B, "
            "INTERLEAVED_ONE_F_ONE_B, ZB_H1, ZB_H2, DUALPIPE, DUALPIPE_V)");
}

TEST(ConfigTest, SizesThatWouldExhaustMemoryAreRefused) {
  EXPECT_EQ(ErrorOf("model { preset: 'deepseek-v3' num_layers: 100000 }\nbatch { seq_len: 1 }\n"),
            "model.num_layers: 100000 is more than the supported 4096");
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "parallel { pp: 5000 }\n"),
            "parallel.pp: 5000 is more than the supported 1024");
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "hardware { comm_workspace_bytes: 9223372036854775807 "
                                         "flops: 1e-300 latency_us: 1e300 }\n"),
            "hardware.flops: must be between 1e3 and 1e21 per second\n"
            "hardware.latency_us: must be between 0 and 1e6 (one second)\n"
            "hardware.comm_workspace_bytes: must be between 0 and 2^50 (1 PiB)");
}

TEST(ConfigTest, OnlyDualPipeOverlapsForwardAndBackwardPairs) {
  StatusOr<Config> dualpipe = ResolveText(std::string(kTiny) + "parallel { pp: 2 }\nschedule { kind: DUALPIPE }\n");
  ASSERT_TRUE(dualpipe.ok()) << dualpipe.status().message();
  EXPECT_TRUE(dualpipe->overlap_forward_backward);  // as DeepSeek runs it
  EXPECT_EQ(dualpipe->communication_sms, 20);       // report section 3.2.2
  EXPECT_EQ(dualpipe->hardware.sm_count, 132);      // H800
  StatusOr<Config> plain = ResolveText(kTiny);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->overlap_forward_backward);
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "schedule { overlap_forward_backward: true }\n"),
            "schedule.overlap_forward_backward: only DUALPIPE, DUALPIPE_V or a schedule file "
            "pair forward and backward chunks of different chunks");
  EXPECT_EQ(ErrorOf(std::string(kTiny) +
                    "parallel { pp: 2 }\nschedule { kind: DUALPIPE communication_sms: 132 }\n"),
            "schedule.communication_sms: 132 must be at least 0 and below the 132 SMs of "
            "hardware.sm_count");
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "hardware { gpu: A100 sm_count: 0 }\n"),
            "hardware.sm_count: must be between 1 and 100,000");
}

TEST(ConfigTest, ContextParallelJoinsTheDataParallelGroups) {
  // EDP = DP * CP * TP / (EP * ETP) = 4 * 2 * 1 / 8 = 1.
  StatusOr<Config> c = ResolveText(std::string(kTiny) + "parallel { dp: 4 cp: 2 ep: 8 }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->parallel.edp, 1);
  EXPECT_EQ(c->parallel.dense_dp(), 8);
  EXPECT_EQ(c->parallel.world, 8);
}

TEST(ConfigTest, StepsMustTakeTime) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "timing { forward_us: 0 backward_input_us: 1 }\n"),
            "timing.forward_us: must be more than 0");
}

TEST(ConfigTest, DualPipeVLayoutsFollowTheV) {
  // Under DualPipeV stage 2 of 4 runs on rank 1, so MTP there is fine.
  StatusOr<Config> c = ResolveText(
      "model { preset: 'deepseek-v3' num_layers: 8 }\n"
      "parallel { pp: 2 layout: 'Ettt|ttt|ttm|L' }\nbatch { seq_len: 16 }\n"
      "schedule { kind: DUALPIPE_V }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->layout.rank_stages[1], (std::vector<int64_t>{1, 2}));
}

TEST(ConfigTest, ExpertParallelismNeedsExperts) {
  EXPECT_EQ(ErrorOf("model { preset: 'gpt-22b' }\nparallel { ep: 2 dp: 2 }\n"
                    "batch { seq_len: 2048 }\n"),
            "parallel.ep: expert parallelism needs a model with routed experts");
}

TEST(ConfigTest, RoutingImbalanceBounds) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) +
                    "parallel { ep: 8 dp: 8 }\nconventions { routing_imbalance: 9 }\n"),
            "conventions.routing_imbalance: must be between 1.0 (balanced) and parallel.ep = 8 "
            "(every token on one rank)");
}

}  // namespace
}  // namespace stepsim::graph

namespace stepsim::graph {
namespace {

// The allocator defaults to CACHING with PyTorch's defaults, and the CUDA
// context to 1,341 MiB (hardware.runtime_overhead_bytes).
TEST(ConfigTest, AllocatorDefaults) {
  StatusOr<Config> c = ResolveText(kTiny);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->allocator.kind, Allocator::CACHING);
  EXPECT_EQ(c->allocator.max_split_size_mb, 0);
  EXPECT_EQ(c->allocator.max_non_split_rounding_mb, 20);
  EXPECT_EQ(c->allocator.roundup_power2_divisions, 0);
  EXPECT_FALSE(c->allocator.expandable_segments);
  EXPECT_EQ(c->hardware.runtime_overhead_bytes, int64_t{1341} * 1024 * 1024);
  c = ResolveText(std::string(kTiny) +
                  "allocator { kind: CACHING max_split_size_mb: 512 expandable_segments: true "
                  "roundup_power2_divisions: 4 }\nhardware { runtime_overhead_bytes: 0 }\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->allocator.max_split_size_mb, 512);
  EXPECT_TRUE(c->allocator.expandable_segments);
  EXPECT_EQ(c->allocator.roundup_power2_divisions, 4);
  EXPECT_EQ(c->hardware.runtime_overhead_bytes, 0);
}

TEST(ConfigTest, AllocatorProblemsNameTheField) {
  EXPECT_EQ(ErrorOf(std::string(kTiny) +
                    "allocator { max_split_size_mb: 19 roundup_power2_divisions: 3 "
                    "max_non_split_rounding_mb: 0 }\n"
                    "hardware { runtime_overhead_bytes: -1 }\n"),
            "hardware.runtime_overhead_bytes: must be between 0 and 2^50 (1 PiB)\n"
            "allocator.max_split_size_mb: 19 is outside 20..2^30 MiB\n"
            "allocator.max_non_split_rounding_mb: 0 is outside 20..2^30 MiB\n"
            "allocator.roundup_power2_divisions: 3 is not 0 or a power of two up to 1024");
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "allocator { kind: NONE expandable_segments: false }\n"),
            "allocator.expandable_segments: only meaningful with kind CACHING");
  // Enum numbers are refused by the parser (one vocabulary, graph/names.h).
  EXPECT_EQ(ErrorOf(std::string(kTiny) + "allocator { kind: 7 }\n"),
            "test.textproto:3:19: write an enum value by name, not number \"7\" (allocator.kind: "
            "one of CACHING, NONE)\n  allocator { kind: 7 }\n                    ^");
}

}  // namespace
}  // namespace stepsim::graph
