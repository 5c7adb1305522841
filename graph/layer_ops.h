// Layer builders: the forward ops of each layout slot (embedding, MLA or
// MHA/GQA block, dense MLP, MoE block, loss, MTP module) for one micro-batch
// on one device, and what each op keeps for backward.
//
// The builders know the model's structure and every tensor's shape; they do
// not decide what a framework keeps. Each op *offers* the tensors it could
// keep (a norm its input, its FP32 upcast, its rstd, its output, ...), by
// name and element count, and the scenario's framework profile
// (graph/profile.h, graph/profiles/*.textproto) picks which of them are
// kept, in which element type. memory-model.md sections 4-5.
//
// stage_dag turns these specs into F/B/W/R ops with tensor events.
#ifndef STEPSIM_GRAPH_LAYER_OPS_H_
#define STEPSIM_GRAPH_LAYER_OPS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "graph/config.h"
#include "graph/layout.h"
#include "profile.pb.h"

namespace stepsim::graph {

// A tensor a forward op keeps for its backward.
struct Keep {
  std::string name;    // "q", "softmax", "input", ...
  int64_t bytes = 0;
  int64_t elements = 0;
  ElementType type = ACTIVATION;
  bool linear_input = false;  // a GEMM input: FP8 storage applies
  bool weight_grad = false;   // needed by the weight gradient: W frees it, else B
  bool checkpoint = false;    // kept even under full recomputation (block input, dispatch map)
  // Selective-recompute modules (Megatron names) that discard and recompute it.
  std::vector<std::string> selective;
  bool until_forward_end = false;  // a forward workspace the whole stage forward reads
};

// One forward op and the shape of its backward.
struct OpSpec {
  std::string name;    // "L4.mla.qk"
  std::string kind;    // the profile table's key: "mla.qk", "loss.head", ...
  std::string module;  // "embedding", "mla", "attention", "mlp", "moe", "loss", "mtp"
  int64_t layer = -1;  // decoder layer (MTP: num_layers + index); -1 embedding/loss
  std::string unit;    // full-recompute unit ("L4.attn"); "" if never fully recomputed
  bool has_weights = false;  // a W op exists
  bool collective = false;   // an EP all-to-all (dispatch, combine)
  double flops = 0;          // forward FLOPs on one device
  double backward_flops = 0; // B (input gradient)
  double weight_flops = 0;   // W (weight gradient)
  double comm_bytes = 0;     // bytes a collective moves off the device
  // What the op could keep: (tensor name, elements). The profile picks.
  std::vector<std::pair<std::string, int64_t>> offers;
  std::vector<Keep> keeps;       // what the profile keeps of the offers
  std::vector<Keep> forward_workspace, backward_workspace;  // the profile's transients
  int64_t output_bytes = 0;      // the forward output, transient
  int64_t input_grad_bytes = 0;  // the input gradient B produces
  int64_t comm_buffer_bytes = 0; // TP/SP gather or EP send/receive buffer, transient
  bool ep_buffer = false;        // the comm buffer is an EP dispatch/combine buffer
};

// The forward ops of one slot of `stage`, in execution order, their keeps
// resolved by the config's profile. Throws Overflow for sizes beyond int64
// and ProfileError when a profile table names a tensor its op does not offer.
std::vector<OpSpec> SlotOps(const Config& config, const Stage& stage, const Slot& slot);

// The forward ops of a whole stage, in order.
std::vector<OpSpec> StageOps(const Config& config, const Stage& stage);

// A profile table that does not match the builders (a stepsim defect).
struct ProfileError : std::logic_error {
  using std::logic_error::logic_error;
};

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_LAYER_OPS_H_
