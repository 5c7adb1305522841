// libFuzzer target: a scenario file and --set overrides (fuzz_util.h:
// scenario text, a line "%%", one override per line) through parsing,
// overrides, a model.hf_config inside the repository, validation, located
// messages, parameter and static-memory accounting, the op DAGs and
// activations, the budget, schedule generation and, for small inputs, a
// simulation in a child process.
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stepsim::fuzz::SetInput(data, size);
  namespace f = stepsim::fuzz;
  std::optional<stepsim::graph::Config> config =
      f::LoadScenario(std::string_view(reinterpret_cast<const char*>(data), size));
  if (config && f::Exercise(*config)) f::SimulateInChild(*config);
  return 0;
}
