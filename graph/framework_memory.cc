#include "graph/framework_memory.h"

#include "graph/checked.h"
#include "graph/profile.h"

namespace stepsim::graph {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

bool HoldsMoe(const Config& c, const std::vector<int64_t>& stages) {
  for (int64_t s : stages) {
    for (const Slot& slot : c.layout.stages[s].slots) {
      if (slot.kind == SlotKind::kDecoder && c.model.IsMoeLayer(slot.index)) return true;
      if (slot.kind == SlotKind::kMtp && c.model.experts > 0) return true;
    }
  }
  return false;
}

bool HoldsLoss(const Config& c, const std::vector<int64_t>& stages) {
  for (int64_t s : stages) {
    if (c.layout.stages[s].Has(SlotKind::kLoss) || c.layout.stages[s].Has(SlotKind::kMtp)) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<NamedBytes> FrameworkBuffers(const Config& c, const std::vector<int64_t>& stages) {
  std::vector<NamedBytes> out;
  if (c.hardware.gpu == CPU) return out;  // no CUDA libraries
  const ProfileTable& profile = GetProfile(c.conventions.profile).table();
  const bool hopper = c.hardware.compute_capability >= 90;
  if (profile.te_cublas_workspace()) {
    // TransformerEngine transformer_engine/pytorch/cpp_extensions/gemm.py
    // get_cublas_workspace_size_bytes: 32 MiB + 1 KiB from compute
    // capability 9.0 (TE >= 2.8), else 4 MiB; get_cublas_workspace is
    // cached per device. Grouped GEMMs (TEGroupedMLP) add one per compute
    // stream: tex.get_num_cublas_streams() = 4 (common/util/multi_stream.cpp).
    const int64_t one = hopper ? 32 * kMiB + 1024 : 4 * kMiB;
    const int64_t count = 1 + (c.conventions.moe_grouped_gemm && HoldsMoe(c, stages) ? 4 : 0);
    out.push_back({"te_cublas_workspace", one * count});
  }
  const bool torch_matmul =
      profile.torch_matmul() == ProfileTable::TORCH_MATMUL_EVERYWHERE ||
      (profile.torch_matmul() == ProfileTable::TORCH_MATMUL_OUTPUT_LAYER && HoldsLoss(c, stages));
  if (torch_matmul) {
    // PyTorch aten/src/ATen/cuda/CublasHandlePool.cpp: a cuBLAS workspace
    // per (handle, stream), 32 MiB by default from compute capability 9
    // (:4096:8), else :4096:2:16:8 = 8,519,680 B; and a cuBLASLt workspace
    // of 1 MiB (CUBLASLT_WORKSPACE_SIZE). Handles are per thread: the
    // forward's and the autograd engine's backward thread hold one each.
    const int64_t per_handle = (hopper ? 32 * kMiB : 8'519'680) + kMiB;
    out.push_back({"torch_cublas_workspace", 2 * per_handle});
  }
  return out;
}

int64_t RetainedBatchBytes(const Config& c) {
  if (!c.conventions.retain_batches) return 0;
  const int64_t tokens = Mul(c.batch.micro_batch_size, c.batch.seq_len / c.parallel.cp);
  int64_t bytes = Mul(tokens, GetProfile(c.conventions.profile).table().batch_bytes_per_token());
  if (c.conventions.dataloader_attention_mask) {
    // GPTDataset's causal mask: torch.tril(ones(s, s)) < 0.5, bool [b, 1, s, s]
    // (megatron/core/datasets/gpt_dataset.py); a context-parallel rank keeps
    // its share of the query rows.
    bytes = Add(bytes, Mul(c.batch.micro_batch_size, c.batch.seq_len / c.parallel.cp,
                           c.batch.seq_len));
  }
  return bytes;
}

bool LoadsBatches(const Config& c, const std::vector<int64_t>& stages) {
  const int64_t last = static_cast<int64_t>(c.layout.stages.size()) - 1;
  for (int64_t s : stages) {
    if (s == 0 || s == last) return true;
  }
  return false;
}

}  // namespace stepsim::graph
