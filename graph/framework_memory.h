// Memory a training framework holds besides the model state and the
// activations: named persistent buffers (GEMM-library workspaces) and the
// input batches a training loop keeps on the device. Which ones exist is
// the framework profile's data (graph/profiles/*.textproto); their sizes
// come from the libraries' code, cited in framework_memory.cc.
#ifndef STEPSIM_GRAPH_FRAMEWORK_MEMORY_H_
#define STEPSIM_GRAPH_FRAMEWORK_MEMORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "graph/config.h"

namespace stepsim::graph {

struct NamedBytes {
  std::string name;  // "te_cublas_workspace", ...
  int64_t bytes = 0;
};

// The persistent buffers of a device that holds `stages` (indices into
// config.layout.stages), allocated once and alive for the whole run.
std::vector<NamedBytes> FrameworkBuffers(const Config& config, const std::vector<int64_t>& stages);

// Bytes of one micro-batch's input batch as the training loop keeps it,
// 0 unless conventions.retain_batches. Throws Overflow.
int64_t RetainedBatchBytes(const Config& config);

// The gradient copies the optimizer step makes and keeps until the next
// iteration's zero_grad, for a device whose optimizer state is
// `optimizer_bytes`: profiles that copy gradients kept below the master
// weights' precision (Megatron's distributed optimizer with BF16
// gradients). Throws Overflow.
int64_t OptimizerGradientCopyBytes(const Config& config, int64_t optimizer_bytes);

// Whether a device holding `stages` loads input batches: it holds the first
// or the last stage (Megatron's get_batch; the eager loop has one stage).
bool LoadsBatches(const Config& config, const std::vector<int64_t>& stages);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_FRAMEWORK_MEMORY_H_
