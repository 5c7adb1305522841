// The op DAG of one pipeline stage for one micro-batch: forward ops in
// order, recompute ops before the backward that needs them, input-gradient
// (B) ops in reverse, weight-gradient (W) ops after their B. Each op carries
// its tensor events; the graph (Boost.Graph) carries the data dependencies.
#ifndef STEPSIM_GRAPH_STAGE_DAG_H_
#define STEPSIM_GRAPH_STAGE_DAG_H_

#include <boost/graph/adjacency_list.hpp>

#include <string>
#include <vector>

#include "graph/config.h"
#include "graph/layout.h"
#include "graph/op.h"
#include "graph/status.h"

namespace stepsim::graph {

using OpGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS>;

struct StageDag {
  int64_t stage = 0;
  std::vector<Tensor> tensors;
  std::vector<Op> ops;        // vertex i of `graph` is ops[i]
  OpGraph graph;
  // Execution orders, as op indices:
  std::vector<int> forward;         // every F op
  std::vector<int> backward;        // R and B ops; W left for later (zero-bubble)
  std::vector<int> weight;          // every W op, in the order they become ready
  std::vector<int> backward_fused;  // R, B and each W right after its B (1F1B)
  // Under a profile whose split backward retains the autograd graph
  // (split_backward_retains_graph), `backward` and `weight` also hold ops
  // of no cost that `backward_fused` lacks: after each B that frees kept
  // tensors, one that keeps as much (".retained"), and at the end of
  // `weight` one that frees them all (kRetainedGraphOp). Otherwise the
  // split orders hold exactly the fused order's ops.
  // Bytes the stage's input gradient has (sent to the previous stage) and
  // its output has (sent to the next stage): the engine's pipeline buffers.
  int64_t input_grad_bytes = 0;
  int64_t output_bytes = 0;
  // The last op's weight gradient reads the gradient received from the
  // next stage (a GEMM ends the stage, in BF16): when W runs apart from B,
  // the engine keeps the received buffer until W ends.
  bool weight_reads_received_gradient = false;
};

// The name of the W op that frees a retained autograd graph: it computes
// no weight gradient.
inline constexpr const char* kRetainedGraphOp = "retained graph";

// Builds and validates the DAG of `stage`. kInvalidInput on overflow;
// kFailed if validation finds a defect (a bug, never the user's input).
StatusOr<StageDag> BuildStageDag(const Config& config, const Stage& stage);

// Checks that the graph is acyclic (naming a cycle if not), that every
// tensor is allocated exactly once and freed exactly once by an op that
// depends on its allocating op, and that tensors kept for backward
// (activations, recompute) are freed by a B or W op and output gradients
// held for W (output_grads) by a W op. Every problem found is listed, one
// per line.
Status ValidateDag(const StageDag& dag);

// Graphviz text of the DAG, vertices labelled with the op names and kinds.
std::string DagToDot(const StageDag& dag);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_STAGE_DAG_H_
