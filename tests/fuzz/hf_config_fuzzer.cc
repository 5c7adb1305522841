// libFuzzer target: Hugging Face config.json files (`model { hf_config:
// "config.json" }`). An input is the JSON, then optionally a line "%%" and
// the rest of a scenario in protobuf text (its explicit model fields go on
// top of the config's; default: a batch and nothing else). The JSON is read
// as a model, which must be refused with config.json:LINE:COL or accepted;
// merged into the scenario, resolved, counted (parameters, static memory),
// its activations built and, for small models, a step simulated in a child.
#include <cstdint>
#include <string>
#include <string_view>

#include "graph/hf_config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stepsim::fuzz::SetInput(data, size);
  namespace f = stepsim::fuzz;
  namespace graph = stepsim::graph;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n%%\n");
  const std::string_view json = input.substr(0, split);
  const std::string rest = split == std::string_view::npos ? std::string("batch { seq_len: 64 }\n")
                                                           : std::string(input.substr(split + 4));

  stepsim::StatusOr<stepsim::Model> model = graph::ModelFromHfConfig(json, "config.json");
  f::CheckNotFailed(model.status(), "ModelFromHfConfig");
  f::CheckLocated(model.status(), "config.json", "ModelFromHfConfig");

  stepsim::StatusOr<stepsim::Scenario> scenario = graph::ParseScenario(rest, "fuzz.textproto");
  if (!scenario.ok()) return 0;
  scenario->mutable_model()->set_hf_config("config.json");
  const bool preset = scenario->model().has_preset();
  const stepsim::Status applied = graph::ApplyHfConfig(json, "config.json", &*scenario);
  f::CheckNotFailed(applied, "ApplyHfConfig");
  if (applied.ok() != (model.ok() && !preset) ||
      (applied.ok() && scenario->model().has_hf_config())) {
    std::fprintf(stderr, "ApplyHfConfig (%s) disagrees with ModelFromHfConfig (%s)\n",
                 applied.message().c_str(), model.status().message().c_str());
    std::abort();
  }
  if (!applied.ok()) return 0;

  stepsim::StatusOr<graph::Config> config = graph::Resolve(*scenario);
  f::CheckNotFailed(config.status(), "Resolve");
  if (config.ok() && f::Exercise(*config)) f::SimulateInChild(*config);
  return 0;
}
