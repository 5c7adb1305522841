// Simulate and LoadEngine (engine.h) for the `stepsim` command: the engine
// and SimGrid live in stepsim_engine.so, next to the executable, loaded on
// first use. The module leaves stepsim's own symbols undefined; they come
// from the executable, which exports them (ENABLE_EXPORTS).
#include <dlfcn.h>

#include <filesystem>
#include <system_error>

#include "sim/engine.h"

namespace stepsim::sim {
namespace {

using Entry = void (*)(const graph::Config*, const Schedule*, const SimOptions*,
                       std::vector<StageProfile>*, StatusOr<SimResult>*);

struct Module {
  Entry entry = nullptr;
  std::string error;
};

Module Load() {
  Module m;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    m.error = "cannot find the stepsim executable's folder: " + ec.message();
    return m;
  }
  const std::string path = (self.parent_path() / "stepsim_engine.so").string();
  // RTLD_DEEPBIND: the module's libraries (SimGrid and the ns-3 libraries it
  // pulls in) look their symbols up among themselves before the executable's,
  // as they would if they had been loaded at start-up: 18 M fewer
  // instructions of relocation. The sanitizers' runtimes cannot work with it.
#if defined(__SANITIZE_ADDRESS__) || STEPSIM_SANITIZE
  constexpr int kMode = RTLD_LAZY | RTLD_LOCAL;
#else
  constexpr int kMode = RTLD_LAZY | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
  void* handle = dlopen(path.c_str(), kMode);
  if (handle == nullptr) {
    const char* why = dlerror();
    m.error = "cannot load the simulation engine " + path + ": " + (why ? why : "unknown error");
    return m;
  }
  m.entry = reinterpret_cast<Entry>(dlsym(handle, "stepsim_engine_simulate"));
  if (m.entry == nullptr) m.error = path + " has no entry point stepsim_engine_simulate";
  return m;
}

const Module& Loaded() {
  static const Module module = Load();  // loaded once, never unloaded
  return module;
}

}  // namespace

Status LoadEngine() {
  const Module& m = Loaded();
  return m.entry != nullptr ? Status::Ok() : Status::Failed(m.error);
}

namespace {

StatusOr<SimResult> Run(const graph::Config& config, const Schedule& schedule,
                        const SimOptions& options, std::vector<StageProfile>* stages) {
  const Module& m = Loaded();
  if (m.entry == nullptr) return Status::Failed(m.error);
  StatusOr<SimResult> result(Status::Failed("the simulation engine returned nothing"));
  m.entry(&config, &schedule, &options, stages, &result);
  return result;
}

}  // namespace

StatusOr<SimResult> Simulate(const graph::Config& config, const Schedule& schedule,
                             const SimOptions& options) {
  return Run(config, schedule, options, nullptr);
}

StatusOr<SimResult> Simulate(const graph::Config& config, const Schedule& schedule,
                             const SimOptions& options, std::vector<StageProfile> stages) {
  return Run(config, schedule, options, &stages);
}

}  // namespace stepsim::sim
