// Reading Hugging Face config.json files: each preset's published config
// (tests/data/hf/, written from the models' config.json on the Hugging Face
// hub) gives the preset's exact parameter count; bad files are refused with
// the place and the key.
#include "graph/hf_config.h"

#include <gtest/gtest.h>

#include "graph/params.h"
#include "graph/presets.h"
#include "tests/test_util.h"

namespace stepsim::graph {
namespace {

int64_t Total(const Scenario& scenario) {
  StatusOr<Config> c = Resolve(scenario);
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (!c.ok()) return -1;
  StatusOr<ModelParams> p = CountParams(*c);
  EXPECT_TRUE(p.ok());
  return p.ok() ? p->total : -1;
}

Scenario WithBatch() {
  Scenario s;
  s.mutable_batch()->set_seq_len(4096);
  return s;
}

class PresetConfigTest
    : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(PresetConfigTest, GivesThePresetsParameterCount) {
  const auto& [file, preset] = GetParam();
  const std::string path = "tests/data/hf/" + file;
  Scenario from_hf = WithBatch();
  from_hf.mutable_model()->set_hf_config(path);
  Status applied = ApplyHfConfig(testing::ReadSource(path), path, &from_hf);
  ASSERT_TRUE(applied.ok()) << applied.message();
  EXPECT_FALSE(from_hf.model().has_hf_config());
  Scenario from_preset = WithBatch();
  from_preset.mutable_model()->set_preset(preset);
  // The preset tests (model_families_test) derive each count by hand.
  EXPECT_EQ(Total(from_hf), Total(from_preset)) << file;
  // And every architecture field the preset sets agrees.
  StatusOr<ModelPreset> found = FindModelPreset(preset);
  ASSERT_TRUE(found.ok()) << found.status().message();
  const Model& want = found->model();
  const Model& got = from_hf.model();
  EXPECT_EQ(got.hidden_size(), want.hidden_size());
  EXPECT_EQ(got.num_layers(), want.num_layers());
  EXPECT_EQ(got.num_attention_heads(), want.num_attention_heads());
  EXPECT_EQ(got.num_routed_experts(), want.num_routed_experts());
  EXPECT_EQ(got.moe_top_k(), want.moe_top_k());
  EXPECT_EQ(got.router_score_function(), want.router_score_function());
  EXPECT_EQ(got.router_normalize_topk(), want.router_normalize_topk());
  EXPECT_EQ(got.vocab_size(), want.vocab_size());
  EXPECT_EQ(got.mtp_num_layers(), want.mtp_num_layers());
}

INSTANTIATE_TEST_SUITE_P(
    Hub, PresetConfigTest,
    ::testing::Values(std::pair{"llama_3_8b.json", "llama-3-8b"},
                      std::pair{"llama_3_1_70b.json", "llama-3.1-70b"},
                      std::pair{"llama_3_1_405b.json", "llama-3.1-405b"},
                      std::pair{"mixtral_8x7b.json", "mixtral-8x7b"},
                      std::pair{"mixtral_8x22b.json", "mixtral-8x22b"},
                      std::pair{"qwen3_30b_a3b.json", "qwen3-30b-a3b"},
                      std::pair{"deepseek_v2_lite.json", "deepseek-v2-lite"},
                      std::pair{"deepseek_v2.json", "deepseek-v2"},
                      std::pair{"deepseek_v3.json", "deepseek-v3"},
                      std::pair{"moonlight_16b_a3b.json", "moonlight-16b-a3b"}));

std::string Error(const std::string& json) {
  StatusOr<Model> m = ModelFromHfConfig(json, "config.json");
  return m.ok() ? "" : m.status().message();
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

constexpr const char* kLlama =
    "{\n"
    "  \"architectures\": [\"LlamaForCausalLM\"],\n"
    "  \"hidden_size\": 64,\n"
    "  \"num_hidden_layers\": 2,\n"
    "  \"num_attention_heads\": 4,\n"
    "  \"num_key_value_heads\": 2,\n"
    "  \"intermediate_size\": 128,\n"
    "  \"vocab_size\": 1000%s\n"
    "}\n";

std::string Llama(const std::string& extra) {
  char buffer[1024];
  std::snprintf(buffer, sizeof buffer, kLlama, extra.c_str());
  return buffer;
}

TEST(HfConfigTest, ReadsAGqaModel) {
  StatusOr<Model> m = ModelFromHfConfig(Llama(""), "config.json");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->attention(), MHA);
  EXPECT_EQ(m->num_query_groups(), 2);
  EXPECT_EQ(m->ffn_hidden_size(), 128);
  EXPECT_EQ(m->num_routed_experts(), 0);
  EXPECT_FALSE(m->tie_embeddings());
}

TEST(HfConfigTest, SyntaxErrorsGiveTheirPlace) {
  EXPECT_EQ(Error("{\n  \"hidden_size\": 64,\n  \"vocab_size\": ,\n}\n"),
            "config.json:3:17: invalid JSON: syntax error while parsing value - unexpected ','; "
            "expected '[', '{', or a literal\n"
            "    \"vocab_size\": ,\n"
            "                  ^");
}

// A number too large for a double is an error at its place, not a crash
// (found by the fuzzer: nlohmann throws out_of_range, not parse_error). As
// for syntax errors, the place is where the parser stopped: the number's
// last character, column 25 of `  "bos_token_id": 12e8000,`.
TEST(HfConfigTest, ANumberOutOfRangeGivesItsPlace) {
  EXPECT_EQ(Error("{\n  \"hidden_size\": 64,\n  \"bos_token_id\": 12e8000,\n}\n"),
            "config.json:3:25: invalid JSON: number overflow parsing '12e8000'\n"
            "    \"bos_token_id\": 12e8000,\n"
            "                          ^");
}

TEST(HfConfigTest, AKeyThatMayChangeMemoryIsRefusedByName) {
  EXPECT_EQ(Error(Llama(",\n  \"num_experts_shared\": 3")),
            "config.json:9:3: \"num_experts_shared\": not a key stepsim reads for "
            "LlamaForCausalLM, and it may change memory; remove it or describe the model with "
            "model fields\n"
            "    \"num_experts_shared\": 3\n"
            "    ^");
  EXPECT_EQ(FirstLine(Error(Llama(",\n  \"attention_dropout\": 0.1"))),
            "config.json:9:3: \"attention_dropout\": is not 0; set conventions.dropout instead");
  EXPECT_EQ(FirstLine(Error(Llama(",\n  \"hidden_act\": \"gelu\""))),
            "config.json:9:3: \"hidden_act\": \"gelu\": stepsim models the gated MLP with SiLU "
            "(SwiGLU) for LlamaForCausalLM");
}

TEST(HfConfigTest, UnknownArchitecturesAndTypesAreRefused) {
  const std::string gemma = "{\"architectures\": [\"GemmaForCausalLM\"], \"hidden_size\": 8}";
  EXPECT_EQ(FirstLine(Error(gemma)),
            "config.json:1:2: \"architectures\": architecture \"GemmaForCausalLM\" is not one "
            "stepsim reads (LlamaForCausalLM, MistralForCausalLM, MixtralForCausalLM, "
            "Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, DeepseekV2ForCausalLM, "
            "DeepseekV3ForCausalLM)");
  EXPECT_EQ(FirstLine(Error(Llama(",\n  \"head_dim\": \"8\""))),
            "config.json:9:3: \"head_dim\": expected an integer");
  EXPECT_EQ(Error("[1, 2]"), "config.json:1:1: a config.json holds a JSON object");
  EXPECT_EQ(FirstLine(Error("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8}")),
            "config.json:1:1: \"num_hidden_layers\" is missing");
}

TEST(HfConfigTest, ExplicitFieldsOverrideTheConfigAndPresetsConflict) {
  Scenario s = WithBatch();
  s.mutable_model()->set_hf_config("config.json");
  s.mutable_model()->set_num_layers(1);
  ASSERT_TRUE(ApplyHfConfig(Llama(""), "config.json", &s).ok());
  EXPECT_EQ(s.model().num_layers(), 1);
  EXPECT_EQ(s.model().hidden_size(), 64);
  Scenario both = WithBatch();
  both.mutable_model()->set_hf_config("config.json");
  both.mutable_model()->set_preset("llama-3-8b");
  EXPECT_EQ(ApplyHfConfig(Llama(""), "config.json", &both).message(),
            "model.hf_config: a model comes from a preset or a config.json, not both "
            "(model.preset is set too)");
}

}  // namespace
}  // namespace stepsim::graph
