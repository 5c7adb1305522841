#include "graph/config.h"

#include <algorithm>
#include <cmath>

#include "graph/checked.h"
#include "graph/fp8.h"
#include "graph/presets.h"
#include "graph/profile.h"

namespace stepsim::graph {
namespace {

// Collects "field: message" lines.
class Problems {
 public:
  void Add(const std::string& field, const std::string& message) {
    lines_.push_back(field + ": " + message);
  }
  void AddStatus(const Status& status) {
    if (!status.ok()) lines_.push_back(status.message());
  }
  bool empty() const { return lines_.empty(); }
  Status ToStatus() const {
    return Status::Invalid(JoinLines(lines_));
  }

 private:
  std::vector<std::string> lines_;
};

std::string Str(int64_t v) { return std::to_string(v); }

// Upper bound for any single size or count: keeps products of a few of them
// meaningful and rejects typos such as an extra six zeros early.
constexpr int64_t kMaxDimension = int64_t{1} << 31;

// Sizes that set how many ops and steps a run builds: past these a run
// would exhaust memory or time, so they are refused up front.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxMtpLayers = 16;
constexpr int64_t kMaxPipelineRanks = 1024;
constexpr int64_t kMaxChunks = 64;
constexpr int64_t kMaxMicrobatches = 1 << 20;

void CheckAtMost(Problems& p, const std::string& field, int64_t value, int64_t limit) {
  if (value > limit) {
    p.Add(field, Str(value) + " is more than the supported " + Str(limit));
  }
}

void CheckPositive(Problems& p, const std::string& field, int64_t value) {
  if (value < 1) {
    p.Add(field, "must be at least 1, got " + Str(value));
  } else if (value > kMaxDimension) {
    p.Add(field, Str(value) + " is larger than the supported maximum " + Str(kMaxDimension));
  }
}

void CheckNonNegative(Problems& p, const std::string& field, int64_t value) {
  if (value < 0) {
    p.Add(field, "must not be negative, got " + Str(value));
  } else if (value > kMaxDimension) {
    p.Add(field, Str(value) + " is larger than the supported maximum " + Str(kMaxDimension));
  }
}

void CheckDivides(Problems& p, const std::string& field, int64_t divisor,
                  const std::string& what, int64_t value) {
  if (divisor >= 1 && value >= 0 && value % divisor != 0) {
    p.Add(field, Str(divisor) + " does not divide " + what + " (" + Str(value) + ")");
  }
}

ModelSpec ResolveModel(const Scenario& scenario, Problems& problems) {
  Model model;
  if (scenario.model().has_preset() && scenario.model().has_hf_config()) {
    problems.Add("model.hf_config", "a model comes from a preset or a config.json, not both "
                                    "(model.preset is set too)");
    return {};
  }
  if (scenario.model().has_hf_config()) {
    // tools/ reads the file and merges it into the scenario before Resolve.
    problems.Add("model.hf_config", "\"" + scenario.model().hf_config() +
                                        "\" was not read (a stepsim bug)");
    return {};
  }
  if (scenario.model().has_preset()) {
    StatusOr<ModelPreset> preset = FindModelPreset(scenario.model().preset());
    if (!preset.ok()) {
      problems.AddStatus(preset.status());
      return {};
    } else {
      model = preset->model();
    }
  }
  Model overrides = scenario.model();
  overrides.clear_preset();
  if (overrides.moe_layer_pattern_size() > 0) {
    model.clear_moe_layer_pattern();
    model.clear_first_dense_layers();
    model.clear_moe_layer_freq();
  }
  model.MergeFrom(overrides);

  ModelSpec m;
  m.name = model.has_name() ? model.name()
                            : (scenario.model().has_preset() ? scenario.model().preset()
                                                             : "custom");
  m.attention = model.attention() == ATTENTION_KIND_UNSPECIFIED ? MLA : model.attention();
  m.activation = model.mlp_activation() == MLP_ACTIVATION_UNSPECIFIED
                     ? SWIGLU
                     : model.mlp_activation();
  m.norm = model.norm() == NORM_KIND_UNSPECIFIED ? RMSNORM : model.norm();
  m.linear_bias = model.linear_bias();
  m.qkv_bias = model.qkv_bias() || model.linear_bias();
  m.tie_embeddings = model.tie_embeddings();
  m.qk_norm = model.qk_layernorm();
  m.position = model.position_embedding() == POSITION_EMBEDDING_UNSPECIFIED
                   ? ROPE
                   : model.position_embedding();
  m.router_normalize_topk = model.router_normalize_topk();
  m.router_score = model.router_score_function() == ROUTER_SCORE_UNSPECIFIED
                       ? SOFTMAX
                       : model.router_score_function();

  auto required = [&](bool has, int64_t value, const std::string& field) {
    if (!has) {
      problems.Add("model." + field, "required (set it or name a model.preset)");
      return int64_t{1};  // a placeholder that triggers no follow-up errors
    }
    return value;
  };
  m.hidden = required(model.has_hidden_size(), model.hidden_size(), "hidden_size");
  m.layers = required(model.has_num_layers(), model.num_layers(), "num_layers");
  m.heads = required(model.has_num_attention_heads(), model.num_attention_heads(),
                     "num_attention_heads");
  m.vocab = required(model.has_vocab_size(), model.vocab_size(), "vocab_size");
  m.experts = model.num_routed_experts();
  m.mtp_layers = model.mtp_num_layers();
  CheckPositive(problems, "model.hidden_size", m.hidden);
  CheckPositive(problems, "model.num_layers", m.layers);
  CheckAtMost(problems, "model.num_layers", m.layers, kMaxLayers);
  CheckAtMost(problems, "model.mtp_num_layers", m.mtp_layers, kMaxMtpLayers);
  CheckPositive(problems, "model.num_attention_heads", m.heads);
  CheckPositive(problems, "model.vocab_size", m.vocab);
  CheckNonNegative(problems, "model.num_routed_experts", m.experts);
  CheckNonNegative(problems, "model.mtp_num_layers", m.mtp_layers);
  const int64_t pattern_layers = std::clamp<int64_t>(m.layers, 0, kMaxLayers);

  // Which layers have routed experts.
  if (model.moe_layer_pattern_size() > 0) {
    if (model.moe_layer_pattern_size() != m.layers) {
      problems.Add("model.moe_layer_pattern",
                   "has " + Str(model.moe_layer_pattern_size()) +
                       " entries; give one per layer (model.num_layers = " + Str(m.layers) + ")");
    }
    if (model.has_first_dense_layers() || model.has_moe_layer_freq()) {
      problems.Add("model.moe_layer_pattern",
                   "replaces model.first_dense_layers and model.moe_layer_freq; set only one");
    }
    for (int i = 0; i < model.moe_layer_pattern_size(); ++i) {
      const int32_t v = model.moe_layer_pattern(i);
      if (v != 0 && v != 1) {
        problems.Add("model.moe_layer_pattern", "entry " + Str(i) + " is " + Str(v) +
                                                    "; use 1 for an MoE layer, 0 for a dense one");
        break;
      }
      m.moe_layers.push_back(v == 1 && m.experts > 0);
    }
    if (m.experts == 0) {
      problems.Add("model.moe_layer_pattern", "needs model.num_routed_experts > 0");
    }
  } else {
    const int64_t first_dense = model.has_first_dense_layers() ? model.first_dense_layers() : 0;
    const int64_t freq = model.has_moe_layer_freq() ? model.moe_layer_freq() : 1;
    if (first_dense < 0 || first_dense > m.layers) {
      problems.Add("model.first_dense_layers",
                   Str(first_dense) + " is outside 0.." + Str(m.layers));
    }
    if (freq < 1 || freq > m.layers) {
      problems.Add("model.moe_layer_freq", Str(freq) + " is outside 1.." + Str(m.layers));
    }
    if (model.has_moe_layer_freq() && m.experts == 0) {
      problems.Add("model.moe_layer_freq", "needs model.num_routed_experts > 0");
    }
    for (int64_t i = 0; i < pattern_layers; ++i) {
      m.moe_layers.push_back(m.experts > 0 && i >= first_dense && freq >= 1 && i % freq == 0);
    }
  }
  const bool has_dense = m.DenseLayers() > 0;
  if (has_dense || (m.experts == 0 && m.mtp_layers > 0)) {
    m.ffn = required(model.has_ffn_hidden_size(), model.ffn_hidden_size(), "ffn_hidden_size");
    CheckPositive(problems, "model.ffn_hidden_size", m.ffn);
  } else {
    m.ffn = model.ffn_hidden_size();
  }
  if (m.experts > 0) {
    m.moe_ffn = required(model.has_moe_ffn_hidden_size(), model.moe_ffn_hidden_size(),
                         "moe_ffn_hidden_size");
    m.top_k = required(model.has_moe_top_k(), model.moe_top_k(), "moe_top_k");
    m.shared_experts = model.num_shared_experts();
    CheckPositive(problems, "model.moe_ffn_hidden_size", m.moe_ffn);
    CheckNonNegative(problems, "model.num_shared_experts", m.shared_experts);
    if (m.top_k < 1 || m.top_k > m.experts) {
      problems.Add("model.moe_top_k",
                   Str(m.top_k) + " is outside 1.." + Str(m.experts) + " (the routed experts)");
    }
    if (model.has_shared_expert_ffn_hidden_size()) {
      m.shared_ffn = model.shared_expert_ffn_hidden_size();
      if (m.shared_experts == 0) {
        problems.Add("model.shared_expert_ffn_hidden_size", "needs model.num_shared_experts > 0");
      }
      CheckPositive(problems, "model.shared_expert_ffn_hidden_size", m.shared_ffn);
    } else if (m.shared_experts >= 0 && m.shared_experts <= kMaxDimension && m.moe_ffn > 0) {
      m.shared_ffn = m.shared_experts * m.moe_ffn;
    }
  } else {
    for (const char* field : {"moe_ffn_hidden_size", "num_shared_experts", "moe_top_k",
                              "shared_expert_ffn_hidden_size", "router_score_function"}) {
      const auto* f = Model::descriptor()->FindFieldByName(field);
      if (model.GetReflection()->HasField(model, f) && scenario.model().GetReflection()->HasField(
                                                           scenario.model(), f)) {
        problems.Add(std::string("model.") + field, "needs model.num_routed_experts > 0");
      }
    }
  }
  if (m.attention == MLA) {
    m.q_lora = model.q_lora_rank();
    m.kv_lora = required(model.has_kv_lora_rank(), model.kv_lora_rank(), "kv_lora_rank");
    m.nope_dim = required(model.has_qk_nope_head_dim(), model.qk_nope_head_dim(),
                          "qk_nope_head_dim");
    m.rope_dim = required(model.has_qk_rope_head_dim(), model.qk_rope_head_dim(),
                          "qk_rope_head_dim");
    m.v_dim = model.has_v_head_dim() ? model.v_head_dim() : m.nope_dim;
    CheckNonNegative(problems, "model.q_lora_rank", m.q_lora);
    CheckPositive(problems, "model.kv_lora_rank", m.kv_lora);
    CheckPositive(problems, "model.qk_nope_head_dim", m.nope_dim);
    CheckNonNegative(problems, "model.qk_rope_head_dim", m.rope_dim);
    CheckPositive(problems, "model.v_head_dim", m.v_dim);
    m.query_groups = m.heads;
    for (const char* field : {"num_query_groups", "kv_channels", "qk_layernorm", "qkv_bias"}) {
      const auto* f = Model::descriptor()->FindFieldByName(field);
      if (scenario.model().GetReflection()->HasField(scenario.model(), f)) {
        problems.Add(std::string("model.") + field, "applies to attention MHA, not MLA");
      }
    }
  } else if (m.heads >= 1) {
    for (const char* field : {"q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
                              "qk_rope_head_dim", "v_head_dim"}) {
      const auto* f = Model::descriptor()->FindFieldByName(field);
      if (scenario.model().GetReflection()->HasField(scenario.model(), f) &&
          scenario.model().GetReflection()->GetInt64(scenario.model(), f) != 0) {
        problems.Add(std::string("model.") + field, "applies to attention MLA, not MHA");
      }
    }
    if (model.has_kv_channels()) {
      m.head_dim = model.kv_channels();
      CheckPositive(problems, "model.kv_channels", m.head_dim);
    } else {
      CheckDivides(problems, "model.num_attention_heads", m.heads, "model.hidden_size",
                   m.hidden);
      m.head_dim = m.hidden / m.heads;
    }
    m.query_groups = model.has_num_query_groups() ? model.num_query_groups() : m.heads;
    CheckPositive(problems, "model.num_query_groups", m.query_groups);
    if (m.query_groups >= 1) {
      CheckDivides(problems, "model.num_query_groups", m.query_groups,
                   "model.num_attention_heads", m.heads);
    }
    m.nope_dim = m.head_dim;
    m.v_dim = m.head_dim;
  }
  if (m.position == LEARNED_ABSOLUTE) {
    m.max_positions = required(model.has_max_position_embeddings(),
                               model.max_position_embeddings(), "max_position_embeddings");
    CheckPositive(problems, "model.max_position_embeddings", m.max_positions);
  } else {
    m.max_positions = model.max_position_embeddings();
    CheckNonNegative(problems, "model.max_position_embeddings", m.max_positions);
  }
  if (model.has_make_vocab_size_divisible_by()) {
    m.vocab_multiple = model.make_vocab_size_divisible_by();
    CheckPositive(problems, "model.make_vocab_size_divisible_by", m.vocab_multiple);
  } else {
    m.vocab_multiple = 0;  // decided by the profile in Resolve
  }
  return m;
}

ParallelSpec ResolveParallel(const Scenario& scenario, const ModelSpec& m,
                             Problems& problems) {
  const Parallel& in = scenario.parallel();
  ParallelSpec p;
  auto get = [&](bool has, int64_t value, const std::string& field) {
    if (!has) return int64_t{1};
    CheckPositive(problems, "parallel." + field, value);
    return value;
  };
  p.pp = get(in.has_pp(), in.pp(), "pp");
  p.tp = get(in.has_tp(), in.tp(), "tp");
  p.ep = get(in.has_ep(), in.ep(), "ep");
  p.etp = get(in.has_etp(), in.etp(), "etp");
  p.dp = get(in.has_dp(), in.dp(), "dp");
  p.cp = get(in.has_cp(), in.cp(), "cp");
  p.vpp = get(in.has_vpp(), in.vpp(), "vpp");
  p.sequence_parallel = in.has_sequence_parallel() ? in.sequence_parallel() : p.tp > 1;
  CheckAtMost(problems, "parallel.pp", p.pp, kMaxPipelineRanks);
  CheckAtMost(problems, "parallel.vpp", p.vpp, kMaxChunks);
  if (!problems.empty()) return p;

  CheckDivides(problems, "parallel.tp", p.tp, "model.num_attention_heads", m.heads);
  if (m.attention == MHA && m.query_groups != m.heads) {
    CheckDivides(problems, "parallel.tp", p.tp, "model.num_query_groups", m.query_groups);
  }
  if (m.DenseLayers() > 0) {
    CheckDivides(problems, "parallel.tp", p.tp, "model.ffn_hidden_size", m.ffn);
  }
  if (m.experts > 0) {
    CheckDivides(problems, "parallel.ep", p.ep, "model.num_routed_experts", m.experts);
    CheckDivides(problems, "parallel.etp", p.etp, "model.moe_ffn_hidden_size", m.moe_ffn);
    const int64_t expert_group = p.ep * p.etp;
    // Experts are replicated over the ranks of one stage that are not in
    // their EP x ETP group: EDP = DP * CP * TP / (EP * ETP).
    const int64_t stage_ranks = p.dp * p.cp * p.tp;
    if (stage_ranks % expert_group != 0) {
      problems.Add("parallel.ep",
                   "EP*ETP = " + Str(expert_group) + " does not divide DP*CP*TP = " +
                       Str(stage_ranks) + ", so the expert data-parallel size EDP is not whole");
    } else {
      p.edp = stage_ranks / expert_group;
    }
  } else if (p.ep > 1 || p.etp > 1) {
    problems.Add(p.ep > 1 ? "parallel.ep" : "parallel.etp",
                 "expert parallelism needs a model with routed experts");
  }
  try {
    p.world = Mul(p.dp, p.tp, p.pp, p.cp);
  } catch (const Overflow&) {
    problems.Add("parallel.dp", "DP * TP * PP * CP overflows 64-bit integers");
  }
  if (p.sequence_parallel && p.tp == 1) {
    problems.Add("parallel.sequence_parallel", "needs parallel.tp > 1");
  }
  return p;
}

PrecisionSpec ResolvePrecision(const Precision& in, Problems& problems) {
  PrecisionSpec p;
  if (in.preset() == MIXED_ADAM_2_4_12) {
    p.optimizer = 12;
    p.moment = 4;
  }
  auto get = [&](bool has, int64_t value, int64_t fallback, const std::string& field,
                 int64_t min = 1) {
    if (!has) return fallback;
    if (value < min || value > 64) {
      problems.Add("precision." + field,
                   Str(value) + " is outside " + Str(min) + "..64 bytes");
    }
    return value;
  };
  p.weight = get(in.has_weight_bytes(), in.weight_bytes(), p.weight, "weight_bytes");
  p.gradient = get(in.has_gradient_bytes(), in.gradient_bytes(), p.gradient, "gradient_bytes");
  p.activation =
      get(in.has_activation_bytes(), in.activation_bytes(), p.activation, "activation_bytes");
  if (in.has_master_weight_bytes() || in.has_moment_bytes()) {
    p.master = get(in.has_master_weight_bytes(), in.master_weight_bytes(), p.master,
                   "master_weight_bytes", 0);
    p.moment = get(in.has_moment_bytes(), in.moment_bytes(), p.moment, "moment_bytes", 0);
    p.optimizer = p.master + 2 * p.moment;
    if (in.has_optimizer_bytes() && in.optimizer_bytes() != p.optimizer) {
      problems.Add("precision.optimizer_bytes",
                   Str(in.optimizer_bytes()) + " is not master_weight_bytes + 2 * moment_bytes = " +
                       Str(p.optimizer) + "; give the total or its parts");
    }
  } else if (in.has_optimizer_bytes()) {
    p.optimizer = get(true, in.optimizer_bytes(), p.optimizer, "optimizer_bytes", 0);
    p.master = p.moment = -1;  // only the total is known
  }
  if (in.fp8_recipe() != Precision::FP8_RECIPE_UNSPECIFIED) p.fp8 = in.fp8_recipe();
  return p;
}

// Every GEMM input an FP8 recipe stores must split into its tiles: the
// reduction widths of the model's linear layers on one device.
void CheckFp8Widths(const Config& c, Problems& problems) {
  const int64_t align = Fp8Alignment(c.precision.fp8);
  if (align <= 1) return;
  const ModelSpec& m = c.model;
  const ParallelSpec& p = c.parallel;
  std::vector<std::pair<std::string, int64_t>> widths = {{"model.hidden_size", m.hidden}};
  if (m.attention == MLA) {
    if (m.q_lora > 0) widths.push_back({"model.q_lora_rank", m.q_lora});
    widths.push_back({"model.kv_lora_rank", m.kv_lora});
    widths.push_back({"the attention output per device (heads * v_head_dim / TP)",
                      m.heads * m.v_dim / p.tp});
  } else {
    widths.push_back({"the attention output per device (heads * kv_channels / TP)",
                      m.heads * m.head_dim / p.tp});
  }
  if (m.DenseLayers() > 0) widths.push_back({"model.ffn_hidden_size / TP", m.ffn / p.tp});
  if (m.experts > 0) {
    widths.push_back({"model.moe_ffn_hidden_size / ETP", m.moe_ffn / p.etp});
    if (m.shared_experts > 0) {
      widths.push_back({"model.shared_expert_ffn_hidden_size / TP", m.shared_ffn / p.tp});
    }
  }
  for (const auto& [what, width] : widths) {
    if (width % align == 0) continue;
    problems.Add("precision.fp8_recipe",
                 Precision::Fp8Recipe_Name(c.precision.fp8) + " stores GEMM inputs in tiles of " +
                     Str(align) + ": " + what + " (" + Str(width) + ") is not a multiple of " +
                     Str(align));
  }
}

RecomputeSpec ResolveRecompute(const Recompute& in, Problems& problems) {
  RecomputeSpec r;
  r.policy = in.policy() == RECOMPUTE_POLICY_UNSPECIFIED ? NONE : in.policy();
  r.method = in.method() == RECOMPUTE_METHOD_UNSPECIFIED ? UNIFORM : in.method();
  for (const std::string& name : in.modules()) {
    bool known = false;
    for (const std::string& k : SelectiveRecomputeModules()) known |= k == name;
    if (!known) {
      std::string names;
      for (const std::string& k : SelectiveRecomputeModules()) {
        names += (names.empty() ? "" : ", ") + k;
      }
      problems.Add("recompute.modules", "unknown module \"" + name + "\" (expected one of " +
                                            names + ")");
    }
    r.modules.insert(name);
  }
  if (r.policy == SELECTIVE && in.modules_size() == 0) {
    problems.Add("recompute.modules", "policy SELECTIVE needs at least one module");
  }
  if (r.policy != SELECTIVE && in.modules_size() > 0) {
    problems.Add("recompute.modules", "only meaningful with policy SELECTIVE");
  }
  if (in.method() != RECOMPUTE_METHOD_UNSPECIFIED && r.policy != FULL) {
    problems.Add("recompute.method", "only meaningful with policy FULL");
  }
  if (in.has_num_layers()) {
    if (r.policy != FULL || r.method != BLOCK) {
      problems.Add("recompute.num_layers", "only meaningful with policy FULL and method BLOCK");
    } else {
      CheckNonNegative(problems, "recompute.num_layers", in.num_layers());
    }
    r.num_layers = in.num_layers();
  } else if (r.policy == FULL && r.method == BLOCK) {
    problems.Add("recompute.num_layers", "required with method BLOCK");
  }
  return r;
}

ConventionSpec ResolveConventions(const Conventions& in, const ParallelSpec& p,
                                  Problems& problems) {
  ConventionSpec c;
  if (in.profile() != FRAMEWORK_PROFILE_UNSPECIFIED) c.profile = in.profile();
  switch (c.profile) {
    case PAPER:
      c.attention = EAGER;
      c.dropout = true;
      c.moe_tokens = LOCAL;
      c.q_rope = REPLICATED;
      c.shared_experts = WHOLE;
      c.zero_expert_scope = MOE_BLOCK;
      c.moe_activations = PAPER_WHOLE;
      break;
    case PYTORCH_EAGER:
      c.attention = EAGER;
      break;
    default:  // MEGATRON_CORE: the defaults in config.h
      break;
  }
  if (in.attention() != ATTENTION_IMPL_UNSPECIFIED) c.attention = in.attention();
  if (in.has_dropout()) c.dropout = in.dropout();
  if (in.moe_tokens() != MOE_TOKENS_UNSPECIFIED) c.moe_tokens = in.moe_tokens();
  if (in.q_rope() != Q_ROPE_SHARDING_UNSPECIFIED) c.q_rope = in.q_rope();
  if (in.shared_experts() != SHARED_EXPERT_SHARDING_UNSPECIFIED) {
    c.shared_experts = in.shared_experts();
  }
  if (in.zero_expert_scope() != ZERO_EXPERT_SCOPE_UNSPECIFIED) {
    c.zero_expert_scope = in.zero_expert_scope();
  }
  if (in.moe_activations() != MOE_ACTIVATION_SHARDING_UNSPECIFIED) {
    c.moe_activations = in.moe_activations();
  }
  if (in.has_fused_loss()) c.fused_loss = in.fused_loss();
  if (in.has_rope_fusion()) c.rope_fusion = in.rope_fusion();
  c.moe_router_fp32 = in.moe_router_fp32();
  c.moe_aux_loss = in.moe_aux_loss();
  c.moe_permute_fusion = in.moe_permute_fusion();
  c.moe_shared_expert_overlap = in.moe_shared_expert_overlap();
  if (in.has_gradient_accumulation_fusion()) {
    c.gradient_accumulation_fusion = in.gradient_accumulation_fusion();
  }
  c.dataloader_attention_mask = in.dataloader_attention_mask();
  c.retain_batches = in.retain_batches();
  c.moe_grouped_gemm = in.moe_grouped_gemm();
  c.cross_entropy_keeps_bf16_logits = in.cross_entropy_keeps_bf16_logits();
  if (in.has_routing_imbalance()) {
    c.routing_imbalance = in.routing_imbalance();
    if (!(c.routing_imbalance >= 1.0) || c.routing_imbalance > static_cast<double>(p.ep)) {
      problems.Add("conventions.routing_imbalance",
                   "must be between 1.0 (balanced) and parallel.ep = " + Str(p.ep) +
                       " (every token on one rank)");
    }
    if (c.moe_tokens != DISPATCHED) {
      problems.Add("conventions.routing_imbalance", "only meaningful with moe_tokens DISPATCHED");
    }
  }
  return c;
}

HardwareSpec ResolveHardware(const Hardware& in, Problems& problems) {
  HardwareSpec h;
  h.gpu = in.gpu() == GPU_PRESET_UNSPECIFIED ? H800 : in.gpu();
  // Presets: dense BF16 peak, memory as the driver reports it (MiB), HBM
  // bandwidth, NVLink bandwidth per GPU, one 400 Gb/s NIC per GPU (A100: 200).
  constexpr int64_t kMiB = int64_t{1} << 20;
  switch (h.gpu) {
    case H100:
      h = {H100, 81559 * kMiB, 989.4e12, 3.35e12, 450e9, 50e9, 0, 0, 8, 0, 90, 132};
      break;
    case H200:
      h = {H200, 143771 * kMiB, 989.4e12, 4.8e12, 450e9, 50e9, 0, 0, 8, 0, 90, 132};
      break;
    case A100:
      h = {A100, 81920 * kMiB, 312e12, 2.039e12, 300e9, 25e9, 0, 0, 8, 0, 80, 108};
      break;
    case CPU:
      // The calibration harness's host: memory and rates are nominal (a
      // large host, slow compute), no CUDA library workspaces.
      h = {CPU, int64_t{1} << 40, 1e12, 100e9, 100e9, 10e9, 0, 0, 8, 0, 0};
      break;
    default:  // H800: H100 compute and memory, NVLink cut to 400 GB/s
      h = {H800, 81559 * kMiB, 989.4e12, 3.35e12, 200e9, 50e9, 0, 0, 8, 0, 90, 132};
      break;
  }
  h.latency_us = 5.0;
  h.efficiency = 0.5;
  h.comm_workspace_bytes = -1;  // the profile's default, decided in Resolve
  // Rates between 1e3 and 1e21 per second: outside that a step's times
  // would overflow or vanish.
  auto positive = [&](bool has, double value, double& target, const std::string& field) {
    if (!has) return;
    if (!(value > 0) || !std::isfinite(value)) {
      problems.Add("hardware." + field, "must be a positive number");
    } else if (value < 1e3 || value > 1e21) {
      problems.Add("hardware." + field, "must be between 1e3 and 1e21 per second");
    }
    target = value;
  };
  positive(in.has_flops(), in.flops(), h.flops, "flops");
  positive(in.has_hbm_bandwidth(), in.hbm_bandwidth(), h.hbm_bandwidth, "hbm_bandwidth");
  positive(in.has_nvlink_bandwidth(), in.nvlink_bandwidth(), h.nvlink_bandwidth,
           "nvlink_bandwidth");
  positive(in.has_network_bandwidth(), in.network_bandwidth(), h.network_bandwidth,
           "network_bandwidth");
  if (in.has_latency_us()) {
    if (!(in.latency_us() >= 0) || !(in.latency_us() <= 1e6)) {
      problems.Add("hardware.latency_us", "must be between 0 and 1e6 (one second)");
    }
    h.latency_us = in.latency_us();
  }
  if (in.has_efficiency()) {
    if (!(in.efficiency() > 0 && in.efficiency() <= 1)) {
      problems.Add("hardware.efficiency", "must be in (0, 1]");
    }
    h.efficiency = in.efficiency();
  }
  constexpr int64_t kMaxDeviceBytes = int64_t{1} << 50;  // 1 PiB
  if (in.has_hbm_bytes()) {
    if (in.hbm_bytes() < 1 || in.hbm_bytes() > kMaxDeviceBytes) {
      problems.Add("hardware.hbm_bytes", "must be between 1 and 2^50 (1 PiB)");
    }
    h.hbm_bytes = in.hbm_bytes();
  }
  if (in.has_gpus_per_node()) {
    CheckPositive(problems, "hardware.gpus_per_node", in.gpus_per_node());
    h.gpus_per_node = in.gpus_per_node();
  }
  if (in.has_comm_workspace_bytes()) {
    if (in.comm_workspace_bytes() < 0 || in.comm_workspace_bytes() > kMaxDeviceBytes) {
      problems.Add("hardware.comm_workspace_bytes", "must be between 0 and 2^50 (1 PiB)");
    }
    h.comm_workspace_bytes = in.comm_workspace_bytes();
  }
  if (in.has_sm_count()) {
    if (in.sm_count() < 1 || in.sm_count() > 100000) {
      problems.Add("hardware.sm_count", "must be between 1 and 100,000");
    }
    h.sm_count = in.sm_count();
  }
  return h;
}

// The allocator settings and hardware.runtime_overhead_bytes.
AllocatorSpec ResolveAllocator(const Scenario& scenario, HardwareSpec& hardware,
                               Problems& problems) {
  const Hardware& hw = scenario.hardware();
  // A CPU host has no CUDA context and no caching allocator (the calibration
  // harness: allocated bytes are the live tensors).
  const bool cpu = hardware.gpu == CPU;
  hardware.runtime_overhead_bytes = cpu ? 0 : kDefaultRuntimeOverheadBytes;
  if (hw.has_runtime_overhead_bytes()) {
    if (hw.runtime_overhead_bytes() < 0 || hw.runtime_overhead_bytes() > (int64_t{1} << 50)) {
      problems.Add("hardware.runtime_overhead_bytes", "must be between 0 and 2^50 (1 PiB)");
    }
    hardware.runtime_overhead_bytes = hw.runtime_overhead_bytes();
  }
  const Allocator& in = scenario.allocator();
  AllocatorSpec a;
  if (cpu) a.kind = Allocator::NONE;
  if (in.kind() != Allocator::KIND_UNSPECIFIED) a.kind = in.kind();
  auto mb = [&](bool has, int64_t value, int64_t& target, const std::string& field) {
    if (!has) return;
    // PyTorch refuses less than its 20 MiB large buffer.
    if (value < 20 || value > (int64_t{1} << 30)) {
      problems.Add("allocator." + field, Str(value) + " is outside 20..2^30 MiB");
    }
    target = value;
  };
  mb(in.has_max_split_size_mb(), in.max_split_size_mb(), a.max_split_size_mb,
     "max_split_size_mb");
  mb(in.has_max_non_split_rounding_mb(), in.max_non_split_rounding_mb(),
     a.max_non_split_rounding_mb, "max_non_split_rounding_mb");
  if (in.has_roundup_power2_divisions()) {
    const int64_t d = in.roundup_power2_divisions();
    if (d < 0 || d > 1024 || (d & (d - 1)) != 0) {
      problems.Add("allocator.roundup_power2_divisions",
                   Str(d) + " is not 0 or a power of two up to 1024");
    }
    a.roundup_power2_divisions = d;
  }
  a.expandable_segments = in.expandable_segments();
  if (a.kind == Allocator::NONE) {
    const std::vector<std::pair<bool, std::string>> settings = {
        {in.has_max_split_size_mb(), "max_split_size_mb"},
        {in.has_max_non_split_rounding_mb(), "max_non_split_rounding_mb"},
        {in.has_roundup_power2_divisions(), "roundup_power2_divisions"},
        {in.has_expandable_segments(), "expandable_segments"}};
    for (const auto& [has, field] : settings) {
      if (has) problems.Add("allocator." + field, "only meaningful with kind CACHING");
    }
  }
  return a;
}

void CheckTiming(const Timing& t, int64_t stages, Problems& problems) {
  auto check = [&](const google::protobuf::RepeatedField<double>& values,
                   const std::string& field) {
    if (values.size() > 1 && values.size() != stages) {
      problems.Add("timing." + field, "has " + Str(values.size()) +
                                          " values; give one, or one per stage (" +
                                          Str(stages) + ")");
    }
    for (double v : values) {
      if (!(v >= 0) || !(v <= 1e9)) {
        problems.Add("timing." + field, "values must be between 0 and 1e9 microseconds");
        break;
      }
    }
  };
  check(t.forward_us(), "forward_us");
  check(t.backward_input_us(), "backward_input_us");
  // A forward or input gradient that takes no time makes "when" meaningless.
  for (const auto* values : {&t.forward_us(), &t.backward_input_us()}) {
    for (double v : *values) {
      if (v == 0) {
        problems.Add(values == &t.forward_us() ? "timing.forward_us" : "timing.backward_input_us",
                     "must be more than 0");
        break;
      }
    }
  }
  check(t.backward_weight_us(), "backward_weight_us");
  check(t.p2p_us(), "p2p_us");
}

// Protobuf's text format takes any number for an (open) enum field: every
// enum value set in the scenario must be one the schema defines.
void CheckEnums(const google::protobuf::Message& message, const std::string& prefix,
                Problems& problems) {
  const google::protobuf::Reflection* r = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r->ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* f : fields) {
    const std::string path = prefix + f->name();
    if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated()) {
      CheckEnums(r->GetMessage(message, f), path + ".", problems);
      continue;
    }
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_ENUM || f->is_repeated()) {
      continue;
    }
    const int value = r->GetEnumValue(message, f);
    if (f->enum_type()->FindValueByNumber(value) != nullptr) continue;
    std::string names;
    for (int i = 1; i < f->enum_type()->value_count(); ++i) {
      names += (i > 1 ? ", " : "") + f->enum_type()->value(i)->name();
    }
    problems.Add(path, "unknown value " + Str(value) + " (expected one of " + names + ")");
  }
}

}  // namespace

int64_t ModelSpec::DenseLayers() const {
  // As IsMoeLayer says, without a step per layer (num_layers may be far
  // beyond what resolves): the pattern's dense layers; past it, all layers
  // of a dense model and none of an MoE one.
  if (layers <= 0) return 0;
  if (experts == 0) return layers;
  const int64_t listed = std::min<int64_t>(layers, static_cast<int64_t>(moe_layers.size()));
  int64_t dense = 0;
  for (int64_t l = 0; l < listed; ++l) dense += moe_layers[static_cast<size_t>(l)] ? 0 : 1;
  return dense;
}

const std::vector<std::string>& SelectiveRecomputeModules() {
  static const std::vector<std::string> names = {
      "core_attn", "mla_up_proj", "moe_act", "layernorm", "mlp", "moe", "shared_experts"};
  return names;
}

StatusOr<Config> Resolve(const Scenario& scenario) {
  Problems problems;
  CheckEnums(scenario, "", problems);
  if (!problems.empty()) return problems.ToStatus();
  Config c;
  c.name = scenario.name();
  c.model = ResolveModel(scenario, problems);
  if (!problems.empty()) return problems.ToStatus();
  c.parallel = ResolveParallel(scenario, c.model, problems);

  const Batch& batch = scenario.batch();
  if (!batch.has_seq_len()) {
    problems.Add("batch.seq_len", "required");
  } else {
    CheckPositive(problems, "batch.seq_len", batch.seq_len());
  }
  c.batch.seq_len = batch.seq_len();
  if (batch.has_micro_batch_size()) {
    CheckPositive(problems, "batch.micro_batch_size", batch.micro_batch_size());
    c.batch.micro_batch_size = batch.micro_batch_size();
  }
  if (batch.has_num_microbatches()) {
    CheckPositive(problems, "batch.num_microbatches", batch.num_microbatches());
    CheckAtMost(problems, "batch.num_microbatches", batch.num_microbatches(), kMaxMicrobatches);
    c.batch.microbatches = batch.num_microbatches();
  }
  if (c.batch.seq_len >= 1 && c.parallel.cp >= 1) {
    CheckDivides(problems, "parallel.cp", c.parallel.cp, "batch.seq_len", c.batch.seq_len);
    if (c.parallel.sequence_parallel && c.batch.seq_len % c.parallel.cp == 0) {
      CheckDivides(problems, "parallel.tp", c.parallel.tp,
                   "the sequence per context-parallel rank (sequence parallelism)",
                   c.batch.seq_len / c.parallel.cp);
    }
  }

  c.precision = ResolvePrecision(scenario.precision(), problems);
  c.zero_stage = scenario.zero().stage();
  if (c.zero_stage < 0 || c.zero_stage > 3) {
    problems.Add("zero.stage", Str(c.zero_stage) + " is outside 0..3");
  }
  c.recompute = ResolveRecompute(scenario.recompute(), problems);
  c.conventions = ResolveConventions(scenario.conventions(), c.parallel, problems);
  if (c.model.shared_experts > 0 && c.conventions.shared_experts == TP_SPLIT) {
    CheckDivides(problems, "parallel.tp", c.parallel.tp,
                 "the shared experts' width (model.shared_expert_ffn_hidden_size)",
                 c.model.shared_ffn);
  }
  if (problems.empty()) CheckFp8Widths(c, problems);
  if (c.model.vocab_multiple == 0) {
    // Megatron pads the vocabulary to a multiple of 128 * TP
    // (--make-vocab-size-divisible-by, default 128); the paper and Hugging
    // Face models only split it over TP.
    c.model.vocab_multiple = c.conventions.profile == MEGATRON_CORE ? 128 : 1;
  }
  if (c.model.position == LEARNED_ABSOLUTE && c.batch.seq_len > c.model.max_positions) {
    problems.Add("batch.seq_len", Str(c.batch.seq_len) + " is longer than the " +
                                      Str(c.model.max_positions) +
                                      " learned positions (model.max_position_embeddings)");
  }
  c.schedule = scenario.schedule().kind() == SCHEDULE_KIND_UNSPECIFIED
                   ? ONE_F_ONE_B
                   : scenario.schedule().kind();
  c.schedule_file = scenario.schedule().file();
  c.hardware = ResolveHardware(scenario.hardware(), problems);
  {
    const Schedule& s = scenario.schedule();
    const bool dualpipe = c.schedule == DUALPIPE || c.schedule == DUALPIPE_V;
    c.overlap_forward_backward = s.has_overlap_forward_backward()
                                     ? s.overlap_forward_backward()
                                     : dualpipe && c.schedule_file.empty();
    if (s.overlap_forward_backward() && !dualpipe && c.schedule_file.empty()) {
      problems.Add("schedule.overlap_forward_backward",
                   "only DUALPIPE, DUALPIPE_V or a schedule file pair forward and backward "
                   "chunks of different chunks");
    }
    if (s.has_communication_sms()) {
      c.communication_sms = s.communication_sms();
      if (c.communication_sms < 0 ||
          (c.hardware.sm_count > 0 && c.communication_sms >= c.hardware.sm_count)) {
        problems.Add("schedule.communication_sms",
                     Str(c.communication_sms) + " must be at least 0 and below the " +
                         Str(c.hardware.sm_count) + " SMs of hardware.sm_count");
      }
    }
  }
  if (c.hardware.comm_workspace_bytes < 0) {
    // The paper counts a communication-library workspace of 0.8-2 GB per
    // device (1 GiB here); NCCL allocates its buffers outside PyTorch's
    // allocator, so frameworks' allocated bytes do not hold it.
    c.hardware.comm_workspace_bytes =
        GetProfile(c.conventions.profile).table().comm_workspace_allocated() ? int64_t{1} << 30 : 0;
  }

  c.allocator = ResolveAllocator(scenario, c.hardware, problems);
  c.timing = scenario.timing();

  if (problems.empty()) {
    // The layout: explicit string, else the preset's layout for this pp,
    // else the default split.
    // DualPipeV runs two chunks per rank in a V: two stages per rank.
    if (c.schedule == DUALPIPE_V && !scenario.parallel().has_vpp()) c.parallel.vpp = 2;
    std::string text = scenario.parallel().layout();
    if (text.empty() && scenario.model().has_preset() && c.parallel.vpp == 1) {
      StatusOr<ModelPreset> preset = FindModelPreset(scenario.model().preset());
      if (preset.ok() && !scenario.model().has_num_layers()) {
        for (const LayoutPreset& l : preset->layouts()) {
          if (l.pp() == c.parallel.pp && l.mtp_num_layers() == c.model.mtp_layers) {
            text = l.layout();
          }
        }
      }
    }
    StatusOr<Layout> layout =
        text.empty()
            ? DefaultLayout(c.parallel.pp, c.parallel.vpp, c.model.layers, c.model.mtp_layers)
            : ParseLayout(text, c.parallel.pp, c.model.layers, c.model.mtp_layers,
                          c.schedule != DUALPIPE_V);
    if (!layout.ok()) {
      problems.AddStatus(layout.status());
    } else {
      if (scenario.parallel().has_vpp() && layout->vpp != c.parallel.vpp) {
        problems.Add("parallel.vpp", Str(c.parallel.vpp) + " does not match the layout's " +
                                         Str(layout->vpp) + " chunks per rank");
      }
      if (layout->vpp > kMaxChunks) {
        problems.Add("parallel.layout", Str(layout->vpp) + " chunks per rank is more than the "
                                        "supported " + Str(kMaxChunks));
      }
      c.parallel.vpp = layout->vpp;
      c.layout = std::move(*layout);
      // Placement of stages on ranks follows the schedule.
      if (c.schedule == DUALPIPE) problems.AddStatus(PlaceDualPipe(&c.layout));
      if (c.schedule == DUALPIPE_V) problems.AddStatus(PlaceDualPipeV(&c.layout));
      CheckTiming(c.timing, static_cast<int64_t>(c.layout.stages.size()), problems);
    }
  }
  if (!problems.empty()) return problems.ToStatus();
  return c;
}

}  // namespace stepsim::graph
