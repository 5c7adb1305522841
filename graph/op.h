// Ops and tensors: the data a stage's DAG is made of. An op is data — kind,
// FLOPs, bytes moved and ordered tensor events — so the engine needs no
// knowledge of MLA or MoE to place it in time.
#ifndef STEPSIM_GRAPH_OP_H_
#define STEPSIM_GRAPH_OP_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace stepsim::graph {

// Memory categories, stacked in every curve. The order is the output order.
enum class Category {
  kWeights,
  kGradients,
  kOptimizer,
  kActivations,  // kept by a forward op for its backward
  kRecompute,    // materialised by a recompute op, freed by the backward
  // The output gradient an op's weight gradient (W) reads: B hands it over,
  // W frees it. Deferred W steps (zero-bubble, DualPipe) hold one per op
  // with deferred weight gradients (graph/stage_dag.cc says which).
  kOutputGrads,
  kComm,         // pipeline, EP dispatch/combine, TP/SP gathers, DP buckets, workspace
  kWorkspace,    // transient op outputs and activation gradients
  kFramework,    // persistent framework buffers: GEMM-library workspaces, retained input batches
};
inline constexpr int kNumCategories = 9;
const char* CategoryName(Category c);  // "weights", "activations", "output_grads", ...

enum class OpKind {
  kForward,         // F
  kBackwardInput,   // B: gradient of the input
  kBackwardWeight,  // W: gradient of the weights
  kRecompute,       // R: re-runs forward ops before their backward
  kComm,            // a collective inside the stage (EP dispatch/combine)
};
const char* OpKindName(OpKind k);  // "F", "B", "W", "R", "C"

// A tensor of one micro-batch on one device.
struct Tensor {
  std::string name;  // "L4.mla.qk.q_k"
  int64_t bytes = 0;
  Category category = Category::kWorkspace;
};

struct TensorEvent {
  bool allocate = true;  // false: free
  int32_t tensor = 0;    // index into the DAG's tensors
};

struct Op {
  std::string name;    // "L4.mla.core_attn"
  std::string module;  // "mla", "moe", "mlp", "attention", "embedding", "loss", "mtp"
  OpKind kind = OpKind::kForward;
  int64_t layer = -1;  // decoder layer; -1 outside layers (embedding, loss)
  double flops = 0;    // on one device
  double bytes_moved = 0;  // HBM traffic estimate for the roofline
  double comm_bytes = 0;   // bytes an EP all-to-all moves off the device
  double tp_comm_bytes = 0;  // full-sequence bytes of a TP/SP gather or reduce-scatter
  std::vector<TensorEvent> events;  // in order
};

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_OP_H_
