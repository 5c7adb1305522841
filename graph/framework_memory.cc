#include "graph/framework_memory.h"

#include <set>
#include <utility>

#include "graph/checked.h"
#include "graph/fp8.h"
#include "graph/params.h"
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

using Shape = std::pair<int64_t, int64_t>;  // a weight's [out, in] on the device

// The distinct weight shapes of the GEMMs a device of `stages` runs through
// Transformer Engine (and Megatron's own output layer), for its cache of
// dummy weight gradients.
std::set<Shape> WeightShapes(const Config& c, const std::vector<int64_t>& stages) {
  const ModelSpec& m = c.model;
  const int64_t tp = c.parallel.tp, h = m.hidden, gate = m.activation == SWIGLU ? 2 : 1;
  std::set<Shape> out;
  auto decoder = [&](bool moe) {
    if (m.attention == MHA) {
      out.insert({(m.heads + 2 * m.query_groups) * m.head_dim / tp, h});
      out.insert({h, m.heads * m.head_dim / tp});
    } else {
      const int64_t nh = m.heads / tp;
      if (m.q_lora > 0) {
        out.insert({m.q_lora, h});
        out.insert({nh * (m.nope_dim + m.rope_dim), m.q_lora});
      } else {
        out.insert({nh * (m.nope_dim + m.rope_dim), h});
      }
      out.insert({m.kv_lora + m.rope_dim, h});
      out.insert({nh * (m.nope_dim + m.v_dim), m.kv_lora});
      out.insert({h, nh * m.v_dim});
    }
    if (moe) {
      const int64_t fe = m.moe_ffn / c.parallel.etp;
      out.insert({gate * fe, h});
      out.insert({h, fe});
      if (m.shared_experts > 0) {
        out.insert({gate * m.shared_ffn / tp, h});
        out.insert({h, m.shared_ffn / tp});
      }
    } else {
      out.insert({gate * m.ffn / tp, h});
      out.insert({h, m.ffn / tp});
    }
  };
  for (int64_t s : stages) {
    for (const Slot& slot : c.layout.stages[s].slots) {
      switch (slot.kind) {
        case SlotKind::kDecoder: decoder(m.IsMoeLayer(slot.index)); break;
        case SlotKind::kMtp:
          out.insert({h / tp, 2 * h});
          decoder(m.experts > 0);
          out.insert({PaddedVocab(c) / tp, h});
          break;
        case SlotKind::kLoss: out.insert({PaddedVocab(c) / tp, h}); break;
        case SlotKind::kEmbedding: break;
      }
    }
  }
  return out;
}

int64_t MoeLayers(const Config& c, const std::vector<int64_t>& stages) {
  int64_t n = 0;
  for (int64_t s : stages) {
    for (const Slot& slot : c.layout.stages[s].slots) {
      if (slot.kind == SlotKind::kDecoder && c.model.IsMoeLayer(slot.index)) ++n;
      if (slot.kind == SlotKind::kMtp && c.model.experts > 0) ++n;
    }
  }
  return n;
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
  if (UsesFp8(c.precision.fp8)) {
    // Transformer Engine caches each GEMM weight's FP8 copies across
    // micro-batches (module/linear.py _fp8_workspaces, refreshed on the
    // first micro-batch): the linears' weights, not the embedding, the
    // output layer, the router or the norms.
    int64_t gemm_params = 0;
    for (int64_t s : stages) {
      const Stage& stage = c.layout.stages[s];
      for (const Slot& slot : stage.slots) {
        for (const ParamEntry& e : SlotParams(c, stage, slot)) {
          const std::string& name = e.matrix;
          const bool gemm = e.module != "embedding" && e.module != "head" &&
                            e.module != "norms" && name.find("norm") == std::string::npos &&
                            name.find("bias") == std::string::npos &&
                            name.find("router") == std::string::npos &&
                            name.find("b_o") == std::string::npos &&
                            name.find("b_qkv") == std::string::npos;
          if (gemm) gemm_params = Add(gemm_params, e.device);
        }
      }
    }
    const int64_t cache =
        Fp8WeightCacheBytes(c.precision.fp8, gemm_params, c.hardware.compute_capability);
    if (cache > 0) out.push_back({"fp8_weight_cache", cache});
  }
  if (profile.megatron_buffers()) {
    const int64_t tokens = Mul(c.batch.micro_batch_size, c.batch.seq_len / c.parallel.cp);
    const int64_t held = c.parallel.sequence_parallel ? tokens / c.parallel.tp : tokens;
    if (c.conventions.gradient_accumulation_fusion) {
      // TE module/base.py get_dummy_wgrad (and Megatron's output layer):
      // with fused weight-gradient accumulation the GEMM writes into
      // main_grad, and autograd gets a cached empty BF16 tensor of the
      // weight's shape, one per distinct shape.
      int64_t dummy = 0;
      for (const auto& [rows, cols] : WeightShapes(c, stages)) {
        dummy = Add(dummy, Mul(rows, cols, c.precision.activation));
      }
      out.push_back({"te_dummy_wgrads", dummy});
    }
    if (HoldsLoss(c, stages) && c.parallel.sequence_parallel) {
      // megatron/core/utils.py GlobalMemoryBuffer "mpu": the output
      // layer's sequence-parallel all-gather, [t, h] BF16, kept.
      out.push_back({"megatron_gather_buffer", Mul(tokens, c.model.hidden, c.precision.activation)});
    }
    if (const int64_t layers = MoeLayers(c, stages); layers > 0) {
      // MoEAlltoAllTokenDispatcher keeps each layer's last probs [T, N]
      // (router dtype) and routing map [T, N] (bool) as attributes.
      const int64_t router = c.conventions.moe_router_fp32 ? 4 : c.precision.activation;
      out.push_back({"moe_dispatcher_state", Mul(layers, held, c.model.experts, router + 1)});
    }
  }
  return out;
}

int64_t OptimizerGradientCopyBytes(const Config& c, int64_t optimizer_bytes) {
  const PrecisionSpec& p = c.precision;
  if (!GetProfile(c.conventions.profile).table().optimizer_copies_gradients()) return 0;
  if (p.master < 0 || p.master <= p.gradient || p.optimizer <= 0) return 0;
  // One copy of each gradient element the optimizer steps (its shard under
  // the distributed optimizer), in the master weights' precision.
  return Mul(optimizer_bytes / p.optimizer, p.master);
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
