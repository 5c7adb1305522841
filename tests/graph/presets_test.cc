#include "graph/presets.h"

#include <gtest/gtest.h>

#include "graph/scenario_text.h"
#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

TEST(PresetsTest, EveryPresetFileIsCompiledInAndParses) {
  // In the order of their preset names.
  const std::vector<std::string> files = {
      "deepseek_v2.textproto",     "deepseek_v2_lite.textproto", "deepseek_v3.textproto",
      "gpt_22b.textproto",         "llama_3_8b.textproto",       "llama_3_1_405b.textproto",
      "llama_3_1_70b.textproto",   "mixtral_8x22b.textproto",    "mixtral_8x7b.textproto",
      "moonlight_16b_a3b.textproto", "qwen3_30b_a3b.textproto"};
  std::vector<std::string> names;
  for (const std::string& f : files) {
    ModelPreset preset;
    const std::string path = "scenarios/models/" + f;
    Status s = ParseTextMessage(testing::ReadSource(path), path, &preset);
    ASSERT_TRUE(s.ok()) << s.message();
    names.push_back(preset.name());
    StatusOr<ModelPreset> found = FindModelPreset(preset.name());
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->model().hidden_size(), preset.model().hidden_size());
  }
  EXPECT_EQ(ModelPresetNames(), names);
}

TEST(PresetsTest, UnknownPresetListsTheKnownOnes) {
  StatusOr<ModelPreset> p = FindModelPreset("llama");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "model.preset: unknown preset \"llama\" (known: deepseek-v2, deepseek-v2-lite, "
            "deepseek-v3, gpt-22b, llama-3-8b, llama-3.1-405b, llama-3.1-70b, mixtral-8x22b, "
            "mixtral-8x7b, moonlight-16b-a3b, qwen3-30b-a3b)");
}

}  // namespace
}  // namespace stepsim::graph
