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

TEST(ScenarioTextTest, AByteOrderMarkIsSkipped) {
  StatusOr<Scenario> s = ParseScenario("\xEF\xBB\xBFname: \"bom\"\n", "bom.textproto");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->name(), "bom");
}

TEST(ScenarioTextTest, InvalidUtf8IsLocated) {
  StatusOr<Scenario> raw = ParseScenario("name: \"ok\"\nmodel { name: \"x\xFFy\" }\n", "u.textproto");
  ASSERT_FALSE(raw.ok());
  EXPECT_EQ(raw.status().message(),
            "u.textproto:2:17: invalid UTF-8 (byte 0xFF): stepsim reads text files as UTF-8\n"
            "  model { name: \"x?y\" }\n"
            "                  ^");
  // Escapes may spell invalid UTF-8 too: refused where the field is set.
  StatusOr<Scenario> escaped = ParseScenario("name: \"\\377\"\n", "e.textproto");
  ASSERT_FALSE(escaped.ok());
  EXPECT_EQ(escaped.status().message(),
            "e.textproto:1:1: name: its escapes make invalid UTF-8\n"
            "  name: \"\\377\"\n"
            "  ^");
  // Non-ASCII outside a string: protobuf's "non ascii codepoint", rephrased.
  StatusOr<Scenario> outside = ParseScenario("name\xC3\xA9: 1\n", "o.textproto");
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.status().message().substr(0, outside.status().message().find('\n')),
            "o.textproto:1:5: a non-ASCII character outside a string or comment");
  // In strings and comments it is text like any other.
  EXPECT_TRUE(ParseScenario("# caf\xC3\xA9\nname: \"\xE2\x82\xAC\"\n", "ok.textproto").ok());
}

TEST(ScenarioTextTest, EnumNamesInAnyCaseNumbersAndBooleans) {
  // The vocabulary of --set (graph/names.h): names in any case...
  StatusOr<Scenario> lower = ParseScenario(
      "recompute { policy: full }\nconventions { attention: eager }\nmodel { attention: mha }\n",
      "l.textproto");
  ASSERT_TRUE(lower.ok()) << lower.status().message();
  EXPECT_EQ(lower->recompute().policy(), FULL);
  EXPECT_EQ(lower->conventions().attention(), EAGER);  // attention of Conventions, not Model
  EXPECT_EQ(lower->model().attention(), MHA);
  // ...never a number, and booleans only as true or false.
  EXPECT_EQ(ParseScenario("schedule { kind: 2 }\n", "n.textproto").status().message(),
            "n.textproto:1:18: write an enum value by name, not number \"2\" (schedule.kind: one "
            "of GPIPE, ONE_F_ONE_B, INTERLEAVED_ONE_F_ONE_B, ZB_H1, ZB_H2, DUALPIPE, DUALPIPE_V)\n"
            "  schedule { kind: 2 }\n"
            "                   ^");
  EXPECT_EQ(ParseScenario("conventions {\n\tdropout: True\n}\n", "b.textproto").status().message(),
            "b.textproto:2:11: write conventions.dropout as true or false, not \"True\"\n"
            "  \tdropout: True\n"
            "  \t         ^");
  EXPECT_FALSE(ParseScenario("conventions { fused_loss: 1 }", "c.textproto").ok());
  // A misspelt value still lists the choices of the right field.
  const std::string flashy =
      ParseScenario("conventions { attention: flashy }", "f.textproto").status().message();
  EXPECT_EQ(flashy.substr(0, flashy.find('\n')),
            "f.textproto:1:26: unknown value \"flashy\" for field \"attention\" (expected one of "
            "EAGER, FLASH)");
}

TEST(ScenarioTextTest, FieldPlacesLocateProblems) {
  const std::string text =
      "model { preset: \"deepseek-v3\" }\n"
      "parallel {\n"
      "  pp: 16\n"
      "  ep: 7\n"
      "}\n";
  FieldPlaces places;
  ASSERT_TRUE(ParseScenario(text, "v3.textproto", &places).ok());
  EXPECT_EQ(places.Find("parallel.ep"), "v3.textproto:4:3");
  EXPECT_EQ(places.Find("parallel"), "v3.textproto:2:1");
  EXPECT_EQ(places.Find("model.num_layers"), "v3.textproto:1:9");  // from the preset
  EXPECT_EQ(places.Find("zero.stage"), "");
  places.Set("zero.stage", "--set zero.stage=9");
  EXPECT_EQ(places.Locate("parallel.ep: 7 does not divide 256\nzero.stage: 9 is outside 0..3\n"
                          "something else: unchanged\n... and 2 more"),
            "v3.textproto:4:3: parallel.ep: 7 does not divide 256\n"
            "--set zero.stage=9: zero.stage: 9 is outside 0..3\n"
            "something else: unchanged\n... and 2 more");
  EXPECT_EQ(places.Locate(Status::Failed("parallel.ep: a bug")).message(), "parallel.ep: a bug");
}

}  // namespace
}  // namespace stepsim::graph
