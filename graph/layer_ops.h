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
#include "graph/fp8.h"
#include "graph/layout.h"
#include "profile.pb.h"

namespace stepsim::graph {

// A tensor a forward op keeps for its backward.
struct Keep {
  std::string name;    // "q", "softmax", "input", ...
  int64_t bytes = 0;
  int64_t elements = 0;
  int64_t width = 0;          // the inner dimension of a GEMM input (its rows: elements / width)
  ElementType type = ACTIVATION;
  bool linear_input = false;  // a GEMM input: FP8 storage applies
  bool weight_grad = false;   // needed by the weight gradient: W frees it, else B
  bool checkpoint = false;    // kept even under full recomputation (block input, dispatch map)
  // Kept only while a checkpoint holds it: its unit (an op outside every
  // unit: any unit of the stage) is fully recomputed (profile.proto).
  bool checkpoint_only = false;
  bool unless_checkpointed = false;   // a forward workspace a checkpoint keeps instead
  bool consumes_output_grad = false;  // a backward workspace that replaces the output gradient
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
  // What the op could keep. The profile picks.
  struct Offer {
    std::string name;
    int64_t elements = 0;
    int64_t width = 0;  // a GEMM input's inner dimension (FP8 tiles), else 0
  };
  std::vector<Offer> offers;
  std::vector<Keep> keeps;       // what the profile keeps of the offers
  std::vector<Keep> forward_workspace, backward_workspace;  // the profile's transients
  int64_t output_bytes = 0;      // the forward output, transient
  int64_t input_grad_bytes = 0;  // the input gradient B produces
  int64_t comm_buffer_bytes = 0; // TP/SP gather or EP send + receive buffers, transient
  bool ep_buffer = false;        // the comm buffer is an EP dispatch/combine buffer
  // An EP all-to-all's buffers one after the other: the send buffer (the
  // permuted or sorted copy of the op's input) and the receive buffer, in
  // forward and in backward (comm_buffer_bytes = forward send + receive).
  int64_t send_bytes = 0, receive_bytes = 0;
  int64_t grad_send_bytes = 0, grad_receive_bytes = 0;
  // An FP8 GEMM (precision.fp8_recipe): the rows of its input. Its B
  // quantizes the output gradient for the weight gradient, and W holds that
  // quantized copy instead of the BF16 gradient. 0 for any other op.
  int64_t fp8_gemm_rows = 0;
};

// The forward ops of one slot of `stage`, in execution order, their keeps
// resolved by the config's profile. Throws Overflow for sizes beyond int64
// and ProfileError when a profile table names a tensor its op does not offer.
std::vector<OpSpec> SlotOps(const Config& config, const Stage& stage, const Slot& slot);

// The forward ops of a whole stage, in order.
std::vector<OpSpec> StageOps(const Config& config, const Stage& stage);

// The recompute tag DeepSeek-V3's FP8 recipe adds to the MoE SwiGLU output:
// always discarded and recomputed from the cached FP8 input.
extern const char kFp8SwigluRecompute[];

// A profile table that does not match the builders (a stepsim defect).
struct ProfileError : std::logic_error {
  using std::logic_error::logic_error;
};

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_LAYER_OPS_H_
