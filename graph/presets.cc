#include "graph/presets.h"

#include <algorithm>

#include "graph/embedded_text.h"
#include "graph/scenario_text.h"

namespace stepsim::graph {

// Defined in the generated presets_data.cc: the text of every preset file.
extern const EmbeddedText kPresetSources[];
extern const int kPresetSourcesCount;

namespace {

// Parses every compiled-in preset once. A preset that does not parse is a
// build defect, caught by presets_test; here it is simply skipped.
const std::vector<ModelPreset>& AllPresets() {
  static const std::vector<ModelPreset> presets = [] {
    std::vector<ModelPreset> out;
    for (int i = 0; i < kPresetSourcesCount; ++i) {
      ModelPreset preset;
      if (ParseTextMessage(kPresetSources[i].text, kPresetSources[i].filename, &preset)
              .ok()) {
        out.push_back(std::move(preset));
      }
    }
    std::sort(out.begin(), out.end(),
              [](const ModelPreset& a, const ModelPreset& b) { return a.name() < b.name(); });
    return out;
  }();
  return presets;
}

}  // namespace

std::vector<std::string> ModelPresetNames() {
  std::vector<std::string> names;
  for (const ModelPreset& p : AllPresets()) names.push_back(p.name());
  return names;
}

StatusOr<ModelPreset> FindModelPreset(std::string_view name) {
  for (const ModelPreset& p : AllPresets()) {
    if (p.name() == name) return p;
  }
  std::string known;
  for (const std::string& n : ModelPresetNames()) known += (known.empty() ? "" : ", ") + n;
  return Status::Invalid("model.preset: unknown preset \"" + std::string(name) +
                         "\" (known: " + known + ")");
}

}  // namespace stepsim::graph
