// libFuzzer target: a scenario file and --set overrides (fuzz_util.h:
// scenario text, a line "%%", one override per line) through parsing,
// overrides, validation, located messages, parameter and static-memory
// accounting, the op DAGs and activations, the budget, schedule generation
// and, for small inputs, a simulation in a child process.
#include <cstdint>
#include <string_view>

#include "graph/activations.h"
#include "graph/params_report.h"
#include "sim/budget.h"
#include "sim/engine.h"
#include "sim/schedule.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace f = stepsim::fuzz;
  std::optional<stepsim::graph::Config> config =
      f::LoadScenario(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!config) return 0;
  (void)stepsim::sim::CheckBudget(*config, stepsim::sim::EstimateRunCost(*config, false),
                                  stepsim::sim::Budget{});
  stepsim::StatusOr<stepsim::ParamsReport> params = stepsim::graph::BuildParamsReport(*config);
  f::CheckNotFailed(params.status(), "BuildParamsReport");
  if (!params.ok() || config->model.layers > 64) return 0;  // keep each input fast
  stepsim::StatusOr<stepsim::ActivationsReport> activations =
      stepsim::graph::BuildActivationsReport(*config);
  f::CheckNotFailed(activations.status(), "BuildActivationsReport");
  if (!activations.ok() || !f::Small(*config)) return 0;
  f::InChild([&] {
    stepsim::StatusOr<stepsim::sim::Schedule> schedule = stepsim::sim::BuildSchedule(*config);
    f::CheckNotFailed(schedule.status(), "BuildSchedule");
    if (!schedule.ok()) return 0;
    stepsim::StatusOr<stepsim::sim::SimResult> result =
        stepsim::sim::Simulate(*config, *schedule, stepsim::sim::SimOptions{});
    f::CheckNotFailed(result.status(), "Simulate");
    return 0;
  });
  return 0;
}
