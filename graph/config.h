// A scenario resolved into plain values: presets applied, defaults filled in,
// every field validated. Everything downstream reads a Config, never the raw
// Scenario, so "unset" and "default" are decided in exactly one place.
#ifndef STEPSIM_GRAPH_CONFIG_H_
#define STEPSIM_GRAPH_CONFIG_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "graph/layout.h"
#include "graph/status.h"
#include "scenario.pb.h"

namespace stepsim::graph {

struct ModelSpec {
  std::string name;
  AttentionKind attention = MLA;
  MlpActivation activation = SWIGLU;
  NormKind norm = RMSNORM;
  bool linear_bias = false;
  bool tie_embeddings = false;
  int64_t hidden = 0;          // h
  int64_t layers = 0;          // l
  int64_t first_dense = 0;     // layers [0, first_dense) are dense
  int64_t ffn = 0;             // h_F
  int64_t moe_ffn = 0;         // h_E
  int64_t experts = 0;         // N
  int64_t shared_experts = 0;  // N_s
  int64_t top_k = 0;           // N_r
  int64_t heads = 0;           // n_h, query heads
  int64_t query_groups = 0;    // g, key/value heads (= heads for MHA)
  int64_t head_dim = 0;        // MHA/GQA per-head dimension
  bool qk_norm = false;        // per-head norms of Q and K
  bool qkv_bias = false;       // biases on Q, K, V (also when linear_bias)
  int64_t q_lora = 0;          // d_cq (0: no query compression)
  int64_t kv_lora = 0;         // d_c
  int64_t nope_dim = 0;        // d_h
  int64_t rope_dim = 0;        // d_hr
  int64_t v_dim = 0;           // MLA value head dim (d_h unless set)
  int64_t vocab = 0;           // v, before padding
  int64_t vocab_multiple = 1;  // make_vocab_size_divisible_by
  PositionEmbedding position = ROPE;
  int64_t max_positions = 0;   // LEARNED_ABSOLUTE table rows
  int64_t shared_ffn = 0;      // total width of the shared experts
  RouterScore router_score = SOFTMAX;
  bool router_normalize_topk = false;  // top-k weights renormalised
  int64_t mtp_layers = 0;
  std::vector<bool> moe_layers;  // per decoder layer: routed experts or a dense MLP

  bool IsMoeLayer(int64_t layer) const {
    if (experts == 0) return false;
    if (layer >= 0 && layer < static_cast<int64_t>(moe_layers.size())) return moe_layers[layer];
    return true;  // MTP modules of an MoE model use an MoE layer
  }
  // Layers with a dense MLP (some MoE models have none, e.g. Mixtral).
  int64_t DenseLayers() const;
};

struct ParallelSpec {
  int64_t pp = 1, tp = 1, ep = 1, etp = 1, dp = 1, cp = 1, vpp = 1;
  bool sequence_parallel = false;
  int64_t edp = 1;    // DP*CP*TP/(EP*ETP): replicas of each expert shard
  // Ranks that shard non-expert state under ZeRO and reduce its gradients:
  // DP*CP (Megatron's data-parallel group with context parallelism).
  int64_t dense_dp() const { return dp * cp; }
  int64_t world = 1;  // DP*TP*PP*CP
};

struct BatchSpec {
  int64_t micro_batch_size = 1;  // b
  int64_t seq_len = 0;           // s
  int64_t microbatches = 1;      // m
};

struct PrecisionSpec {
  int64_t weight = 2, gradient = 4, optimizer = 8, activation = 2;
  // The optimizer's parts when known (-1: only the total is): the master
  // weights and each of Adam's two moments; optimizer = master + 2 * moment.
  int64_t master = 4, moment = 2;
  Precision::Fp8Recipe fp8 = Precision::NONE;
};

struct RecomputeSpec {
  RecomputePolicy policy = NONE;
  std::set<std::string> modules;  // SELECTIVE
  RecomputeMethod method = UNIFORM;
  int64_t num_layers = 0;         // FULL + BLOCK

  bool Selects(const std::string& module) const {
    return policy == SELECTIVE && modules.count(module) > 0;
  }
};

struct ConventionSpec {
  FrameworkProfile profile = MEGATRON_CORE;
  AttentionImpl attention = FLASH;
  bool dropout = false;
  MoeTokens moe_tokens = DISPATCHED;
  QRopeSharding q_rope = SPLIT;
  SharedExpertSharding shared_experts = TP_SPLIT;
  ZeroExpertScope zero_expert_scope = ROUTED_EXPERTS;
  MoeActivationSharding moe_activations = TOKENS_HELD;
  double routing_imbalance = 1.0;
  bool fused_loss = false;
  bool rope_fusion = true;
  bool moe_router_fp32 = false;
  bool moe_aux_loss = false;
  bool moe_permute_fusion = false;
  bool moe_shared_expert_overlap = false;
  bool gradient_accumulation_fusion = true;
  bool dataloader_attention_mask = false;
  bool retain_batches = false;
  bool moe_grouped_gemm = false;
  bool cross_entropy_keeps_bf16_logits = false;
};

struct HardwareSpec {
  GpuPreset gpu = H800;
  int64_t hbm_bytes = 0;
  double flops = 0, hbm_bandwidth = 0, nvlink_bandwidth = 0, network_bandwidth = 0;
  double latency_us = 0, efficiency = 0;
  int64_t gpus_per_node = 8;
  int64_t comm_workspace_bytes = 0;
  int compute_capability = 90;  // major*10 + minor: 90 Hopper, 80 Ampere
  int64_t sm_count = 0;         // streaming multiprocessors (0: not a GPU)
  // Outside the caching allocator. Last: the presets in ResolveHardware set
  // the fields before it positionally.
  int64_t runtime_overhead_bytes = 0;
};

// PyTorch's caching-allocator settings (scenario `allocator`).
struct AllocatorSpec {
  Allocator::Kind kind = Allocator::CACHING;
  int64_t max_split_size_mb = 0;  // 0: no limit
  int64_t max_non_split_rounding_mb = 20;
  int64_t roundup_power2_divisions = 0;
  bool expandable_segments = false;
};

// The CUDA context with its kernels, 1,341 MiB (see Hardware in scenario.proto).
inline constexpr int64_t kDefaultRuntimeOverheadBytes = int64_t{1341} << 20;

struct Config {
  std::string name;
  ModelSpec model;
  ParallelSpec parallel;
  BatchSpec batch;
  PrecisionSpec precision;
  int64_t zero_stage = 0;
  RecomputeSpec recompute;
  ConventionSpec conventions;
  ScheduleKind schedule = ONE_F_ONE_B;
  std::string schedule_file;
  // Forward-backward chunk pairs run overlapped (schedule.overlap_forward_backward),
  // with this many SMs kept by the all-to-all.
  bool overlap_forward_backward = false;
  int64_t communication_sms = 20;
  HardwareSpec hardware;
  Timing timing;
  Layout layout;
  AllocatorSpec allocator;
};

// The selective-recompute module names stepsim knows (Megatron's).
const std::vector<std::string>& SelectiveRecomputeModules();

// Applies presets and defaults and validates. On failure returns
// kInvalidInput whose message lists every problem, one per line, each
// starting with the field path ("parallel.tp: 3 does not divide ...").
StatusOr<Config> Resolve(const Scenario& scenario);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_CONFIG_H_
