#include "tools/sweep_names.h"

#include "graph/names.h"

#include "graph/config.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace stepsim::tools {
namespace {

std::string Key(const std::string& name) {
  std::string key;
  for (char c : name) {
    if (c == '-' || c == '_') continue;
    key += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return key;
}

}  // namespace

StatusOr<ScheduleKind> ScheduleByName(const std::string& name, const std::string& flag) {
  // One vocabulary (graph/names.h): the enum's own names, in any case.
  StatusOr<ScheduleKind> kind = graph::ParseEnumName<ScheduleKind>(name);
  if (!kind.ok()) return Status::Invalid(flag + ": " + kind.status().message());
  return kind;
}

const std::vector<ScheduleKind>& AllSchedules() {
  static const std::vector<ScheduleKind> all = {
      GPIPE, ONE_F_ONE_B, INTERLEAVED_ONE_F_ONE_B, ZB_H1, ZB_H2, DUALPIPE, DUALPIPE_V};
  return all;
}

StatusOr<sim::RecomputeChoice> RecomputeByName(const std::string& name) {
  const std::string key = Key(name);
  if (key == "NONE") return sim::RecomputeChoice{NONE, {}};
  if (key == "FULL") return sim::RecomputeChoice{FULL, {}};
  sim::RecomputeChoice choice{SELECTIVE, {}};
  size_t start = 0;
  while (start <= name.size()) {
    const size_t plus = name.find('+', start);
    const std::string module = name.substr(start, plus == std::string::npos ? plus : plus - start);
    if (module.empty()) {
      return Status::Invalid("--recompute: \"" + name + "\" is not none, full or modules "
                             "joined by '+' (e.g. layernorm+mla_up_proj)");
    }
    const auto& known = graph::SelectiveRecomputeModules();
    if (std::find(known.begin(), known.end(), module) == known.end()) {
      std::string names;
      for (const std::string& k : known) names += (names.empty() ? "" : ", ") + k;
      return Status::Invalid("--recompute: unknown module \"" + module + "\" (known: none, full, "
                             "or modules joined by '+': " + names + ")");
    }
    choice.modules.push_back(module);
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return choice;
}

}  // namespace stepsim::tools
