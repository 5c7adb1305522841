// Framework profiles (proto/profile.proto): per op, which offered tensors a
// framework keeps for backward, in which element type. The tables live in
// graph/profiles/*.textproto and are compiled in.
#ifndef STEPSIM_GRAPH_PROFILE_H_
#define STEPSIM_GRAPH_PROFILE_H_

#include <map>
#include <string>
#include <vector>

#include "graph/status.h"
#include "profile.pb.h"

namespace stepsim::graph {

// One profile's table, indexed by op.
class Profile {
 public:
  explicit Profile(ProfileTable table);

  const ProfileTable& table() const { return table_; }
  // What `op` ("mla.down_proj") keeps; nullptr when it keeps nothing.
  const OpKeeps* Find(const std::string& op) const;

 private:
  ProfileTable table_;
  std::map<std::string, int> index_;
};

// The compiled-in profile. Every FrameworkProfile value but UNSPECIFIED has
// one; a table that does not parse is a build defect (profile_test).
const Profile& GetProfile(FrameworkProfile profile);

// Problems with the compiled-in tables (parse errors, duplicate ops, a
// profile missing): empty when they are sound.
std::vector<std::string> ProfileTableProblems();

// Bytes of one element of `type` given the activation precision and the
// router's element size.
int64_t ElementBytes(ElementType type, int64_t activation_bytes, int64_t router_bytes);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_PROFILE_H_
