// Parameter counting: per matrix, module, layer, pipeline stage (whole) and
// device (after TP, EP and ETP sharding). See memory-model.md section 2.
#ifndef STEPSIM_GRAPH_PARAMS_H_
#define STEPSIM_GRAPH_PARAMS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/status.h"

namespace stepsim::graph {

// Which data-parallel group shards a parameter under ZeRO.
enum class ShardGroup {
  kDense,   // over DP
  kExpert,  // over EDP = DP*TP/(EP*ETP)
};

// One weight matrix (or a set of identical ones, such as all routed experts).
struct ParamEntry {
  std::string module;  // "embedding", "mla", "attention", "norms", "mlp", "moe", "head", "mtp"
  std::string matrix;  // "mla.w_dq", "moe.routed_experts", "norms.final", ...
  int64_t whole = 0;   // parameters before any sharding
  int64_t device = 0;  // parameters on one device of the stage
  ShardGroup group = ShardGroup::kDense;
};

// The parameters of one layout slot (embedding, a decoder layer, an MTP
// module, the loss). Throws Overflow for sizes beyond int64.
std::vector<ParamEntry> SlotParams(const Config& config, const Stage& stage,
                                   const Slot& slot);

struct StageParams {
  int64_t stage = 0, pp_rank = 0, chunk = 0;
  std::string describe;           // "E t0-t3"
  int64_t whole = 0;              // the whole stage, unsharded
  int64_t device = 0;             // on one device of the stage
  int64_t device_dense = 0;       // of which sharded over DP under ZeRO
  int64_t device_expert = 0;      // of which sharded over EDP under ZeRO
  std::map<std::string, int64_t> modules;   // device parameters by module
  std::map<std::string, int64_t> matrices;  // device parameters by matrix
};

struct ModelParams {
  int64_t total = 0;  // the main model's unique parameters, MTP excluded
  int64_t mtp = 0;    // the MTP modules' own parameters (shared ones excluded)
  std::vector<StageParams> stages;  // in layout order
  // One slot of each kind, unsharded: "embedding", "dense_layer",
  // "moe_layer", "mtp_module", "loss".
  std::map<std::string, int64_t> per_slot_kind;
};

// The vocabulary padded to a multiple of make_vocab_size_divisible_by * TP
// (Megatron's rule; a multiple of TP when the multiple is 1). Throws Overflow.
int64_t PaddedVocab(const Config& config);

// Counts everything. kInvalidInput if a count would overflow int64.
StatusOr<ModelParams> CountParams(const Config& config);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_PARAMS_H_
