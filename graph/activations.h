// What one micro-batch keeps on one device of each stage, and the transient
// peaks inside one forward and one backward: the `stepsim activations` view.
#ifndef STEPSIM_GRAPH_ACTIVATIONS_H_
#define STEPSIM_GRAPH_ACTIVATIONS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/stage_dag.h"
#include "graph/status.h"
#include "report.pb.h"

namespace stepsim::graph {

struct StageActivations {
  int64_t stage = 0, pp_rank = 0, chunk = 0;
  std::string layers;                       // "t4-t7"
  int64_t per_microbatch_bytes = 0;         // kept for backward after one forward
  std::map<std::string, int64_t> modules;   // kept bytes by module
  std::map<std::string, int64_t> ops;       // kept bytes by forward op
  // Highest live bytes of this micro-batch during its forward (from nothing)
  // and during its backward with W right after B (from the kept bytes).
  int64_t forward_peak_bytes = 0;
  std::string forward_peak_op;
  int64_t backward_peak_bytes = 0;
  std::string backward_peak_op;
  int64_t recompute_peak_bytes = 0;  // highest live recompute buffers in backward
  double forward_flops = 0, backward_flops = 0, weight_flops = 0;
};

// Live bytes while running `order` (op indices) from `start` live bytes;
// returns the peak and sets `peak_op` to the op during which it happened.
int64_t PeakOver(const StageDag& dag, const std::vector<int>& order, int64_t start,
                 std::string* peak_op);

StatusOr<std::vector<StageActivations>> ComputeActivations(const Config& config);

// The same as the report printed by `stepsim activations --json`.
StatusOr<ActivationsReport> BuildActivationsReport(const Config& config);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_ACTIVATIONS_H_
