// Hugging Face config.json: the architecture of a model as its published
// checkpoint describes it, read into stepsim's Model fields.
//
// Architectures read (the first of "architectures", else "model_type"):
// LlamaForCausalLM, MistralForCausalLM, MixtralForCausalLM,
// Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM,
// DeepseekV2ForCausalLM, DeepseekV3ForCausalLM. Every key of such a config
// is either mapped to a Model field, known to leave training memory alone
// (tokenizer ids, norm epsilons, RoPE frequencies and scaling, dtypes,
// versions, ...), or refused with the key named: stepsim never guesses at a
// key that could change memory. JSON syntax errors and refused keys give
// file:line:col.
#ifndef STEPSIM_GRAPH_HF_CONFIG_H_
#define STEPSIM_GRAPH_HF_CONFIG_H_

#include <string_view>

#include "graph/status.h"
#include "scenario.pb.h"

namespace stepsim::graph {

// The Model a config.json describes (`json` is the file's text, `filename`
// its name for messages). kInvalidInput on a syntax error, an architecture
// stepsim does not read, a refused key or a value of the wrong type.
StatusOr<Model> ModelFromHfConfig(std::string_view json, std::string_view filename);

// Replaces scenario->model with the config's model, with every model field
// the scenario sets explicitly on top, and clears model.hf_config. Refuses
// a scenario that also names a model.preset.
Status ApplyHfConfig(std::string_view json, std::string_view filename, Scenario* scenario);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_HF_CONFIG_H_
