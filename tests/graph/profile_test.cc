// The compiled-in framework profiles (graph/profiles/*.textproto): they
// parse, and every op and tensor they name is one the layer builders make
// and offer, so a typo cannot silently keep nothing.
#include "graph/profile.h"

#include <gtest/gtest.h>

#include <set>

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

}  // namespace
}  // namespace stepsim::graph
