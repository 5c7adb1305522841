#include "graph/scenario_text.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

TEST(ScenarioTextTest, ParsesEveryShippedScenario) {
  for (const char* name : {"deepseek_v3_paper.textproto", "deepseek_v3.textproto",
                           "deepseek_v2.textproto", "pp4_tiny.textproto"}) {
    const std::string path = std::string("scenarios/") + name;
    StatusOr<Scenario> s = ParseScenario(testing::ReadSource(path), path);
    EXPECT_TRUE(s.ok()) << s.status().message();
  }
}

TEST(ScenarioTextTest, UnknownFieldIsLocatedWithCaret) {
  const std::string text = "name: \"x\"\nparallel {\n  pipline: 2\n}\n";
  StatusOr<Scenario> s = ParseScenario(text, "deepseek_v3.textproto");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(s.status().message(),
            "deepseek_v3.textproto:3:3: unknown field \"pipline\" in message Parallel\n"
            "    pipline: 2\n"
            "    ^");
}

TEST(ScenarioTextTest, BadEnumValueListsTheChoices) {
  const std::string text = "recompute { policy: PARTIAL }\n";
  StatusOr<Scenario> s = ParseScenario(text, "a.textproto");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "a.textproto:1:21: unknown value \"PARTIAL\" for field \"policy\" (expected one of "
            "NONE, FULL, SELECTIVE)\n"
            "  recompute { policy: PARTIAL }\n"
            "                      ^");
}

TEST(ScenarioTextTest, SyntaxErrorAndWrongType) {
  StatusOr<Scenario> missing_brace = ParseScenario("parallel {\n  pp: 2\n", "b.textproto");
  ASSERT_FALSE(missing_brace.ok());
  EXPECT_EQ(missing_brace.status().message().substr(0, 14), "b.textproto:3:");
  StatusOr<Scenario> wrong_type = ParseScenario("parallel { pp: \"two\" }", "c.textproto");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.status().message().substr(0, 17), "c.textproto:1:16:");
}

TEST(ScenarioTextTest, UnclosedBraceAtTheEnd) {
  StatusOr<Scenario> s = ParseScenario("model { preset: \"deepseek-v3\"", "f.textproto");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().substr(0, s.status().message().find('\n')),
            "f.textproto:1:30: Expected identifier, reached the end of the file (is a '{' not "
            "closed?)");
}

TEST(ScenarioTextTest, BinaryAndDeeplyNestedInputAreRejected) {
  StatusOr<Scenario> binary = ParseScenario(std::string("pp\0\x01", 4), "d.bin");
  ASSERT_FALSE(binary.ok());
  EXPECT_EQ(binary.status().message(), "d.bin: not a text file (contains a NUL byte)");
  std::string nested;
  for (int i = 0; i < 100000; ++i) nested += "model {";
  StatusOr<Scenario> deep = ParseScenario(nested, "e.textproto");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message().substr(0, 12), "e.textproto:");
}

TEST(ScenarioTextTest, EmptyFileParsesToAnEmptyScenario) {
  // Empty is valid text format; Resolve then reports what is missing.
  StatusOr<Scenario> s = ParseScenario("", "empty.textproto");
  ASSERT_TRUE(s.ok());
  StatusOr<Config> c = Resolve(*s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "model.hidden_size: required (set it or name a model.preset)\n"
            "model.num_layers: required (set it or name a model.preset)\n"
            "model.num_attention_heads: required (set it or name a model.preset)\n"
            "model.vocab_size: required (set it or name a model.preset)\n"
            "model.ffn_hidden_size: required (set it or name a model.preset)\n"
            "model.kv_lora_rank: required (set it or name a model.preset)\n"
            "model.qk_nope_head_dim: required (set it or name a model.preset)\n"
            "model.qk_rope_head_dim: required (set it or name a model.preset)");
}

}  // namespace
}  // namespace stepsim::graph
