// The configurations of a sweep: the cartesian product of `--vary` lists of
// scenario field values, and deterministic shards of it.
//
//   --vary parallel.pp=8,16 --vary recompute.modules=layernorm+mla_up_proj,core_attn
//
// A value is what `--set path=value` takes; the items of a repeated field
// are joined by '+' inside one value, since ',' separates the values.
#ifndef STEPSIM_SIM_SWEEP_SPACE_H_
#define STEPSIM_SIM_SWEEP_SPACE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/status.h"
#include "scenario.pb.h"

namespace stepsim::sim {

// One --vary: a field path and the values it takes, in order, each written
// as --set takes it (a repeated field's items comma-separated).
struct Vary {
  std::string path;
  std::vector<std::string> values;
};

// Parses "PATH=V1,V2,...". kInvalidInput naming the --vary for a missing
// '=', an empty path, no values, an empty value or a value given twice.
StatusOr<Vary> ParseVary(std::string_view text);

// Checks every path and value against `base` by applying each one alone:
// an unknown field, enum value or unparsable number is named, as is a path
// varied twice. kInvalidInput listing every problem. Rewrites the values of
// repeated fields from '+'-joined to the comma-separated --set form.
Status CheckVaries(const Scenario& base, std::vector<Vary>* varies);

// "parallel.pp=8,16": one line of SweepReport.space.
std::string DescribeVary(const Vary& vary);

// One point of the space: (path, value) in --vary order.
using Point = std::vector<std::pair<std::string, std::string>>;

// At most this many points in one sweep.
constexpr int64_t kMaxPoints = 10'000'000;

// The number of points; kInvalidInput past kMaxPoints.
StatusOr<int64_t> CountPoints(const std::vector<Vary>& varies);

// The point at `index` (0 <= index < CountPoints): the last --vary varies
// fastest, as nested loops in --vary order would.
Point PointAt(const std::vector<Vary>& varies, int64_t index);

// `base` with the point's values set, in order. kInvalidInput naming the
// path if a value does not apply (CheckVaries catches these up front).
StatusOr<Scenario> ApplyPoint(const Scenario& base, const Point& point);

// Shard K of N, 1 <= K <= N.
struct Shard {
  int64_t k = 1, n = 1;
  bool whole() const { return n == 1; }
};

// Parses "K/N"; kInvalidInput for anything else or K outside 1..N, or N
// above `max_shards`.
StatusOr<Shard> ParseShard(std::string_view text, int64_t max_shards = 100'000);
std::string ShardName(const Shard& shard);  // "K/N"

// The contiguous index range [begin, end) of shard `shard` over `total`
// items: shards differ in size by at most one, earlier ones larger.
std::pair<int64_t, int64_t> ShardRange(const Shard& shard, int64_t total);

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_SWEEP_SPACE_H_
