#include "graph/op.h"

namespace stepsim::graph {

const char* CategoryName(Category c) {
  switch (c) {
    case Category::kWeights: return "weights";
    case Category::kGradients: return "gradients";
    case Category::kOptimizer: return "optimizer";
    case Category::kActivations: return "activations";
    case Category::kRecompute: return "recompute";
    case Category::kOutputGrads: return "output_grads";
    case Category::kComm: return "comm";
    case Category::kWorkspace: return "workspace";
    case Category::kFramework: return "framework";
  }
  return "?";
}

const char* OpKindName(OpKind k) {
  switch (k) {
    case OpKind::kForward: return "F";
    case OpKind::kBackwardInput: return "B";
    case OpKind::kBackwardWeight: return "W";
    case OpKind::kRecompute: return "R";
    case OpKind::kComm: return "C";
  }
  return "?";
}

}  // namespace stepsim::graph
