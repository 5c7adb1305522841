#include "graph/profile.h"

#include "graph/embedded_text.h"
#include "graph/scenario_text.h"

namespace stepsim::graph {

// Defined in the generated profiles_data.cc: the text of every profile table.
extern const EmbeddedText kProfileSources[];
extern const int kProfileSourcesCount;

namespace {

struct Loaded {
  std::map<int, Profile> profiles;
  std::vector<std::string> problems;
};

const Loaded& All() {
  static const Loaded loaded = [] {
    Loaded out;
    for (int i = 0; i < kProfileSourcesCount; ++i) {
      ProfileTable table;
      const Status parsed =
          ParseTextMessage(kProfileSources[i].text, kProfileSources[i].filename, &table);
      if (!parsed.ok()) {
        out.problems.push_back(parsed.message());
        continue;
      }
      std::map<std::string, int> seen;
      for (const OpKeeps& op : table.ops()) {
        if (seen[op.op()]++ == 1) {
          out.problems.push_back(std::string(kProfileSources[i].filename) + ": op \"" + op.op() +
                                 "\" appears twice");
        }
      }
      const int key = table.profile();
      if (out.profiles.count(key) != 0) {
        out.problems.push_back(std::string(kProfileSources[i].filename) + ": a second table for " +
                               FrameworkProfile_Name(table.profile()));
        continue;
      }
      out.profiles.emplace(key, Profile(std::move(table)));
    }
    for (int p = FrameworkProfile_MIN + 1; p <= FrameworkProfile_MAX; ++p) {
      if (out.profiles.count(p) == 0) {
        out.problems.push_back("no table for profile " +
                               FrameworkProfile_Name(static_cast<FrameworkProfile>(p)));
        out.profiles.emplace(p, Profile(ProfileTable{}));
      }
    }
    return out;
  }();
  return loaded;
}

}  // namespace

Profile::Profile(ProfileTable table) : table_(std::move(table)) {
  for (int i = 0; i < table_.ops_size(); ++i) index_.emplace(table_.ops(i).op(), i);
}

const OpKeeps* Profile::Find(const std::string& op) const {
  const auto it = index_.find(op);
  return it == index_.end() ? nullptr : &table_.ops(it->second);
}

const Profile& GetProfile(FrameworkProfile profile) {
  const auto& profiles = All().profiles;
  const auto it = profiles.find(profile == FRAMEWORK_PROFILE_UNSPECIFIED ? MEGATRON_CORE : profile);
  return it != profiles.end() ? it->second : profiles.begin()->second;
}

std::vector<std::string> ProfileTableProblems() { return All().problems; }

int64_t ElementBytes(ElementType type, int64_t activation_bytes, int64_t router_bytes) {
  switch (type) {
    case ROUTER: return router_bytes;
    case FP32: return 4;
    case INT64: return 8;
    case FP64: return 8;
    case INT32: return 4;
    case BYTE: return 1;
    default: return activation_bytes;
  }
}

}  // namespace stepsim::graph
