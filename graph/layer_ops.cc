#include "graph/layer_ops.h"

#include <cmath>
#include <deque>
#include <iterator>

#include "graph/checked.h"
#include "graph/params.h"
#include "graph/profile.h"

namespace stepsim::graph {

const char kFp8SwigluRecompute[] = "fp8_swiglu";

namespace {

// Sizes shared by every builder, for one micro-batch on one device.
struct Dims {
  int64_t b = 1;   // sequences per micro-batch
  int64_t s = 1;   // tokens per sequence on this context-parallel rank
  int64_t t = 1;   // tensor-parallel size
  int64_t sp = 1;  // sequence divisor outside TP regions: t with SP, else 1
  int64_t a = 2;   // bytes per activation element
  int64_t bs() const { return Mul(b, s); }
  int64_t tokens_sp() const { return bs() / sp; }  // tokens outside TP regions
};

Dims MakeDims(const Config& c) {
  Dims d;
  d.b = c.batch.micro_batch_size;
  d.s = c.batch.seq_len / c.parallel.cp;
  d.t = c.parallel.tp;
  d.sp = c.parallel.sequence_parallel ? c.parallel.tp : 1;
  d.a = c.precision.activation;
  return d;
}

double Matmul(double m, double n, double k) { return 2.0 * m * n * k; }

// Collects the ops of one slot with a common name prefix, and resolves what
// each keeps through the profile.
class Builder {
 public:
  Builder(const Config& c, std::string prefix, std::string module, int64_t layer)
      : c_(c), d_(MakeDims(c)), profile_(GetProfile(c.conventions.profile)),
        prefix_(std::move(prefix)), module_(std::move(module)), layer_(layer) {}

  const Dims& d() const { return d_; }
  const Config& c() const { return c_; }
  void SetModule(std::string module) { module_ = std::move(module); }
  const std::string& module() const { return module_; }
  void SetUnit(std::string unit) { unit_ = std::move(unit); }
  // Reports every op under `group` (MTP) instead of its own module.
  void SetGroup(std::string group) { group_ = std::move(group); }

  // Starts a new op; returns it for filling in. Its profile key is
  // "<module>.<name>" unless `kind` is given.
  OpSpec& Op(const std::string& name, bool has_weights, const std::string& kind = "") {
    OpSpec op;
    op.name = prefix_ + module_ + "." + name;
    op.kind = kind.empty() ? module_ + "." + name : kind;
    op.module = group_.empty() ? module_ : group_;
    op.layer = layer_;
    op.unit = unit_;
    op.has_weights = has_weights;
    ops_.push_back(std::move(op));
    return ops_.back();
  }

  // `width`: a GEMM input's inner dimension, for the scales FP8 keeps.
  static void Offer(OpSpec& op, const std::string& tensor, int64_t elements, int64_t width = 0) {
    op.offers.push_back({tensor, elements, width});
  }

  // Every op with its keeps resolved by the profile.
  std::vector<OpSpec> Take() {
    for (OpSpec& op : ops_) Resolve(op);
    return {std::make_move_iterator(ops_.begin()), std::make_move_iterator(ops_.end())};
  }

 private:
  void Resolve(OpSpec& op) const {
    const OpKeeps* rule = profile_.Find(op.kind);
    if (rule == nullptr) return;
    for (const KeptTensor& k : rule->keep()) {
      Misplaced(op, k, k.unless_checkpointed() || k.consumes_output_grad(), "keep");
      Pick(op, k, &op.keeps);
    }
    for (const KeptTensor& k : rule->forward_workspace()) {
      Misplaced(op, k, k.checkpoint_only() || k.consumes_output_grad(), "forward_workspace");
    }
    for (const KeptTensor& k : rule->backward_workspace()) {
      Misplaced(op, k, k.checkpoint_only() || k.unless_checkpointed(), "backward_workspace");
    }
    if (UsesFp8(c_.precision.fp8) && op.has_weights) {
      for (const Keep& k : op.keeps) {
        if (k.linear_input && k.width > 0) op.fp8_gemm_rows = k.elements / k.width;
      }
    }
    for (const KeptTensor& k : rule->forward_workspace()) Pick(op, k, &op.forward_workspace);
    for (const KeptTensor& k : rule->backward_workspace()) Pick(op, k, &op.backward_workspace);
  }

  // A flag the list `where` has no use for (checkpoint_only on keeps,
  // unless_checkpointed on forward and consumes_output_grad on backward
  // workspaces) would be silently ignored: refused instead.
  void Misplaced(const OpSpec& op, const KeptTensor& k, bool misplaced, const char* where) const {
    if (!misplaced) return;
    throw ProfileError("profile " + FrameworkProfile_Name(profile_.table().profile()) + ": op " +
                       op.kind + " " + where + " \"" + k.name() +
                       "\" carries a flag that list does not use (a stepsim bug)");
  }

  // The offered tensor `k` names, typed and sized, appended to `out`.
  void Pick(const OpSpec& op, const KeptTensor& k, std::vector<Keep>* out) const {
    const auto it = std::find_if(op.offers.begin(), op.offers.end(),
                                 [&](const OpSpec::Offer& o) { return o.name == k.name(); });
    if (it == op.offers.end()) {
      throw ProfileError("profile " + FrameworkProfile_Name(profile_.table().profile()) +
                         ": op " + op.kind + " keeps \"" + k.name() +
                         "\", which the op does not offer (a stepsim bug)");
    }
    if (it->elements == 0) return;
    const Fp8Recipe recipe = c_.precision.fp8;
    if (!k.fp8_only().empty() &&
        std::find(k.fp8_only().begin(), k.fp8_only().end(), recipe) == k.fp8_only().end()) {
      return;  // an FP8 copy only these recipes keep
    }
    Keep keep;
    keep.name = k.name();
    keep.elements = Mul(it->elements, k.copies() > 0 ? k.copies() : 1);
    keep.width = it->width;
    keep.type = k.type() == ELEMENT_TYPE_UNSPECIFIED ? ACTIVATION : k.type();
    keep.bytes = Mul(keep.elements,
                     ElementBytes(keep.type, d_.a, c_.conventions.moe_router_fp32 ? 4 : d_.a));
    keep.linear_input = k.linear_input();
    keep.weight_grad = k.weight_grad();
    keep.checkpoint = k.checkpoint();
    keep.checkpoint_only = k.checkpoint_only();
    keep.unless_checkpointed = k.unless_checkpointed();
    keep.consumes_output_grad = k.consumes_output_grad();
    keep.until_forward_end = k.until_forward_end();
    keep.selective.assign(k.recompute().begin(), k.recompute().end());
    if (UsesFp8(recipe)) ApplyFp8(recipe, k, &keep);
    out->push_back(std::move(keep));
  }

  // FP8 storage of a kept tensor (graph/fp8.h).
  static void ApplyFp8(Fp8Recipe recipe, const KeptTensor& k, Keep* keep) {
    const int64_t width = keep->width > 0 ? keep->width : keep->elements;
    const int64_t rows = keep->elements / width;
    const bool deepseek = recipe == Precision::DEEPSEEK_V3;
    if (deepseek && k.attention_output()) {
      keep->bytes = E5M6TensorBytes(rows, width);
    } else if ((deepseek && k.swiglu_input()) || k.linear_input() || !k.fp8_only().empty()) {
      const int64_t copies = k.fp8_copies() > 0 ? k.fp8_copies() : 1;
      keep->bytes = Mul(copies, Fp8TensorBytes(recipe, rows, width));
    }
    // DeepSeek recomputes the MoE SwiGLU output from its cached FP8 input.
    if (deepseek && k.swiglu_output()) keep->selective.push_back(kFp8SwigluRecompute);
  }

  const Config& c_;
  Dims d_;
  const Profile& profile_;
  std::string prefix_, module_, unit_, group_;
  int64_t layer_;
  std::deque<OpSpec> ops_;  // a deque: references to earlier ops stay valid
};

// A norm over `rows` rows of `width`. Offers its input, the FP32 upcast of
// it (eager RMSNorm), the per-row statistics, the normalised tensor before
// the scale (eager) and its output.
OpSpec& AddNorm(Builder& bld, const std::string& name, int64_t rows, int64_t width,
                const std::string& kind = "") {
  const int64_t x = Mul(rows, width);
  const bool layernorm = bld.c().model.norm == LAYERNORM;
  OpSpec& op = bld.Op(name, true, kind);
  Builder::Offer(op, "input", x);
  Builder::Offer(op, "input_fp32", x);
  Builder::Offer(op, "squared_fp32", x);  // x^2, which torch 1.13's mean keeps
  Builder::Offer(op, "rstd", rows);
  Builder::Offer(op, "mean", layernorm ? rows : 0);
  Builder::Offer(op, "normalized", x);
  Builder::Offer(op, "output", x);
  op.output_bytes = Mul(bld.d().a, x);
  op.input_grad_bytes = op.output_bytes;
  op.flops = 4.0 * static_cast<double>(x);
  op.backward_flops = op.flops;
  return op;
}

// The hidden-state norm of a block: over the tokens outside TP regions.
OpSpec& AddHiddenNorm(Builder& bld, const std::string& name, const std::string& kind = "") {
  return AddNorm(bld, name, bld.d().tokens_sp(), bld.c().model.hidden, kind);
}

// The sequence-parallel all-gather before a column-parallel linear (and the
// reduce-scatter after a row-parallel one): a full-sequence buffer.
int64_t GatherBuffer(const Dims& d, int64_t width) {
  return d.sp > 1 ? Mul(d.a, d.bs(), width) : 0;
}

// Core attention over heads_local query heads and groups_local key/value
// heads: flash (one fused kernel) or eager (QK^T, softmax, dropout, x V).
// `v_storage` is the storage an eager x V matmul keeps of V (a view of a
// wider projection output may keep all of it); `v_source` the storage V is
// a view of (the value or key/value projection's output), which a fused
// kernel keeping V itself keeps whole.
void AddAttentionCore(Builder& bld, int64_t heads_local, int64_t groups_local, int64_t qk_dim,
                      int64_t v_dim, int64_t v_storage, int64_t v_source) {
  const Config& c = bld.c();
  const Dims& d = bld.d();
  const int64_t b = d.b, s = d.s, bs = d.bs();
  const double causal = 0.5;  // causal masking: half the score matrix is computed
  const double qk_flops = Matmul(static_cast<double>(b) * heads_local * s, s, qk_dim) * causal;
  const double av_flops = Matmul(static_cast<double>(b) * heads_local * s, s, v_dim) * causal;
  const int64_t q = Mul(bs, heads_local, qk_dim);
  const int64_t k = Mul(bs, groups_local, qk_dim);
  const int64_t k_expanded = groups_local == heads_local ? 0 : Mul(bs, heads_local, qk_dim);
  const int64_t v = Mul(bs, groups_local, v_dim);
  const int64_t v_expanded = groups_local == heads_local ? 0 : Mul(bs, heads_local, v_dim);
  const int64_t out = Mul(bs, heads_local, v_dim);
  const int64_t scores = Mul(b, heads_local, s, s);
  const int64_t qkv_bytes = Mul(d.a, Add(q, k, v));
  if (c.conventions.attention == FLASH) {
    // One fused kernel; its output is the input of the output projection.
    OpSpec& op = bld.Op("core_attn", false);
    Builder::Offer(op, "q", q);
    Builder::Offer(op, "k", k);
    Builder::Offer(op, "v", v);
    Builder::Offer(op, "out", out, heads_local * v_dim);
    Builder::Offer(op, "v_source", v_source);
    Builder::Offer(op, "lse", Mul(b, heads_local, s));
    // torch's scaled_dot_product_attention: the flash kernel needs equal
    // head dims; otherwise the memory-efficient kernel runs, which pads its
    // logsumexp rows to 32 (attention.cu _efficient_attention_forward).
    Builder::Offer(op, "sdpa_lse",
                   Mul(b, heads_local, qk_dim == v_dim ? s : CeilDiv(s, 32) * 32));
    Builder::Offer(op, "rng_state", 2);  // the Philox seed and offset, int64
    op.output_bytes = Mul(d.a, out);
    op.input_grad_bytes = qkv_bytes;
    op.flops = qk_flops + av_flops;
    op.backward_flops = 2.5 * op.flops;  // includes the kernel's own recomputation
    return;
  }
  OpSpec& qk = bld.Op("qk", false);
  Builder::Offer(qk, "q", q);
  Builder::Offer(qk, "k", k);
  Builder::Offer(qk, "k_expanded", k_expanded);
  Builder::Offer(qk, "k_matmul", Mul(bs, heads_local, qk_dim));  // K as the matmul reads it
  Builder::Offer(qk, "scale", 1);  // the softmax scale, a float64 scalar
  qk.output_bytes = Mul(d.a, scores);
  qk.input_grad_bytes = Mul(d.a, Add(q, k));
  qk.flops = qk_flops;
  qk.backward_flops = 2 * qk_flops;

  OpSpec& softmax = bld.Op("softmax", false);
  Builder::Offer(softmax, "output", scores);
  Builder::Offer(softmax, "input_fp32", scores);
  softmax.output_bytes = Mul(d.a, scores);
  softmax.input_grad_bytes = Mul(d.a, scores);
  softmax.flops = 5.0 * static_cast<double>(scores) * causal;
  softmax.backward_flops = softmax.flops;

  if (c.conventions.dropout) {
    OpSpec& drop = bld.Op("attn_dropout", false);
    Builder::Offer(drop, "mask", scores);
    Builder::Offer(drop, "output", scores);
    drop.output_bytes = Mul(d.a, scores);
    drop.input_grad_bytes = Mul(d.a, scores);
    drop.flops = static_cast<double>(scores);
    drop.backward_flops = drop.flops;
  }

  OpSpec& av = bld.Op("attn_v", false);
  Builder::Offer(av, "probs", scores);
  Builder::Offer(av, "v", v);
  Builder::Offer(av, "v_expanded", v_expanded);
  Builder::Offer(av, "v_storage", v_storage);
  Builder::Offer(av, "out", out, heads_local * v_dim);  // the output projection's input
  av.output_bytes = Mul(d.a, out);
  av.input_grad_bytes = Mul(d.a, Add(scores, v));
  av.flops = av_flops;
  av.backward_flops = 2 * av_flops;
}

// Rotary position embedding of Q and K. A fused kernel keeps nothing per
// layer; unfused, each of the two calls (Q, K) keeps its own cos and sin of
// [s, rot_dim] (Megatron's _apply_rotary_pos_emb_bshd).
void AddRope(Builder& bld, int64_t q_elements, int64_t k_elements, int64_t rot_dim) {
  const Config& c = bld.c();
  if (c.model.position != ROPE || rot_dim == 0) return;
  const Dims& d = bld.d();
  OpSpec& op = bld.Op("rope", false);
  Builder::Offer(op, "cos_sin", c.conventions.rope_fusion ? 0 : Mul(4, d.s, rot_dim));
  op.output_bytes = Mul(d.a, Add(q_elements, k_elements));
  op.input_grad_bytes = op.output_bytes;
  op.flops = 3.0 * static_cast<double>(q_elements + k_elements);
  op.backward_flops = op.flops;
}

void AddOutputDropout(Builder& bld) {
  if (!bld.c().conventions.dropout) return;
  const Dims& d = bld.d();
  const int64_t x = Mul(d.tokens_sp(), bld.c().model.hidden);
  OpSpec& op = bld.Op("dropout", false);
  Builder::Offer(op, "mask", x);
  op.output_bytes = Mul(d.a, x);
  op.input_grad_bytes = Mul(d.a, x);
  op.flops = static_cast<double>(x);
  op.backward_flops = op.flops;
}

// The attention output projection W^O (row-parallel, keeps its input) and
// the output dropout.
void AddOutputProjection(Builder& bld, int64_t heads_local, int64_t head_dim) {
  const Dims& d = bld.d();
  const int64_t h = bld.c().model.hidden;
  OpSpec& o = bld.Op("o_proj", true);
  const int64_t o_in = Mul(d.bs(), heads_local, head_dim);
  Builder::Offer(o, "input", o_in, heads_local * head_dim);
  o.flops = Matmul(static_cast<double>(d.bs()), heads_local * head_dim, h);
  o.backward_flops = o.flops;
  o.weight_flops = o.flops;
  o.output_bytes = Mul(d.a, d.tokens_sp(), h);
  o.input_grad_bytes = Mul(d.a, o_in);
  o.comm_buffer_bytes = GatherBuffer(d, h);
  AddOutputDropout(bld);
}

// The MLA block (paper's table in memory-model.md section 4).
void AddMla(Builder& bld) {
  const Config& c = bld.c();
  const ModelSpec& m = c.model;
  const Dims& d = bld.d();
  const int64_t nh = m.heads / d.t, h = m.hidden, bs = d.bs();
  const double bsd = static_cast<double>(bs);
  AddHiddenNorm(bld, "attn_norm");

  // q/kv down-projections share the normed input (sequence-gathered).
  OpSpec& down = bld.Op("down_proj", true);
  Builder::Offer(down, "input", Mul(d.tokens_sp(), h), h);
  // Without query compression Megatron fuses a norm into the q projection.
  Builder::Offer(down, "q_proj_norm_output", m.q_lora == 0 ? Mul(d.tokens_sp(), h) : 0, h);
  Builder::Offer(down, "q_proj_norm_rstd", m.q_lora == 0 ? d.tokens_sp() : 0);
  const int64_t down_width = m.q_lora > 0 ? Add(m.q_lora, m.kv_lora, m.rope_dim)
                                          : Add(m.kv_lora, m.rope_dim);
  down.flops = Matmul(bsd, h, down_width);
  if (m.q_lora == 0) down.flops += Matmul(bsd, h, nh * (m.nope_dim + m.rope_dim));
  down.backward_flops = down.flops;
  down.weight_flops = down.flops;
  down.output_bytes = Mul(d.a, bs, down_width);
  down.input_grad_bytes = Mul(d.a, d.tokens_sp(), h);
  down.comm_buffer_bytes = GatherBuffer(d, h);

  // The latent norms (replicated weights). Megatron runs the
  // down-projections on the sequence-parallel tokens, so the latents are
  // split over TP; the paper counts them whole.
  const int64_t latent_rows =
      GetProfile(c.conventions.profile).table().latents_sequence_parallel() ? d.tokens_sp() : bs;
  if (m.q_lora > 0) AddNorm(bld, "q_norm", latent_rows, m.q_lora);
  AddNorm(bld, "kv_norm", latent_rows, m.kv_lora);

  // Up-projections from the latents c_Q, c_KV (column-parallel over heads).
  OpSpec& up = bld.Op("up_proj", true);
  Builder::Offer(up, "q_latent", Mul(latent_rows, m.q_lora), m.q_lora);
  Builder::Offer(up, "kv_latent", Mul(latent_rows, m.kv_lora), m.kv_lora);
  Builder::Offer(up, "k_rope", Mul(latent_rows, m.rope_dim));
  const int64_t rope_heads = c.conventions.q_rope == SPLIT ? nh : m.heads;
  up.flops = Matmul(bsd, m.q_lora, nh * m.nope_dim) + Matmul(bsd, m.q_lora, rope_heads * m.rope_dim) +
             Matmul(bsd, m.kv_lora, nh * (m.nope_dim + m.v_dim));
  up.backward_flops = up.flops;
  up.weight_flops = up.flops;
  up.output_bytes = Mul(d.a, bs, nh, Add(Mul(2, Add(m.nope_dim, m.rope_dim)), m.v_dim));
  up.input_grad_bytes = Mul(d.a, latent_rows, Add(m.q_lora, m.kv_lora));
  up.comm_buffer_bytes = GatherBuffer(d, Add(m.q_lora, m.kv_lora));

  AddRope(bld, Mul(bs, nh, m.rope_dim), Mul(bs, m.rope_dim), m.rope_dim);
  // Eager V is a view of the up-projection's K/V output; at b = 1 the
  // matmul's reshape stays a view and keeps all of it (nope + v per head).
  const int64_t kv_up = Mul(bs, nh, Add(m.nope_dim, m.v_dim));
  const int64_t v_storage = d.b == 1 ? kv_up : Mul(bs, nh, m.v_dim);
  AddAttentionCore(bld, nh, nh, m.nope_dim + m.rope_dim, m.v_dim, v_storage, kv_up);
  AddOutputProjection(bld, nh, m.v_dim);
}

// Multi-head attention with grouped query heads (GPT, Llama, Qwen): fused
// QKV, optional per-head Q/K norms, core attention, projection.
void AddMha(Builder& bld) {
  const ModelSpec& m = bld.c().model;
  const Dims& d = bld.d();
  const int64_t nh = m.heads / d.t, hd = m.head_dim, h = m.hidden, bs = d.bs();
  const int64_t ng = std::max<int64_t>(1, m.query_groups / d.t);
  const double bsd = static_cast<double>(bs);
  AddHiddenNorm(bld, "attn_norm");
  OpSpec& qkv = bld.Op("qkv_proj", true);
  Builder::Offer(qkv, "input", Mul(d.tokens_sp(), h), h);
  qkv.flops = Matmul(bsd, h, (nh + 2 * ng) * hd);
  qkv.backward_flops = qkv.flops;
  qkv.weight_flops = qkv.flops;
  qkv.output_bytes = Mul(d.a, bs, Add(nh, Mul(2, ng)), hd);
  qkv.input_grad_bytes = Mul(d.a, d.tokens_sp(), h);
  qkv.comm_buffer_bytes = GatherBuffer(d, h);
  if (m.qk_norm) {
    AddNorm(bld, "q_norm", Mul(bs, nh), hd);
    AddNorm(bld, "k_norm", Mul(bs, ng), hd);
  }
  AddRope(bld, Mul(bs, nh, hd), Mul(bs, ng, hd), hd);
  AddAttentionCore(bld, nh, ng, hd, hd, Mul(bs, nh, hd), Mul(bs, ng, hd));
  AddOutputProjection(bld, nh, hd);
}

// An MLP over `tokens` tokens: fc1 (gate and up when gated), activation,
// fc2, output dropout. Widths are per device.
struct MlpShape {
  std::string prefix;       // "", "experts_", "shared_"
  int64_t tokens = 0;       // tokens (or token copies) processed
  int64_t input_tokens = 0; // rows of the fc1 input this op owns (0: another op keeps it)
  int64_t width = 0;        // intermediate width on the device
  int64_t mask = 0;         // output dropout mask elements (0: no dropout)
  int64_t gather = 0;       // TP/SP gather buffer
  int64_t gathered_input = 0;  // rows of a sequence-gathered fc1 input kept (shared-expert overlap)
  int64_t probs = 0;        // routing weights the activation applies (routed experts)
  int64_t norm_output = 0;  // rows of the block's norm output fc1 reads (shared experts)
};

void AddMlpOps(Builder& bld, const MlpShape& s) {
  const ModelSpec& m = bld.c().model;
  const Dims& d = bld.d();
  const bool gated = m.activation == SWIGLU;
  const int64_t inter = Mul(s.tokens, s.width);
  const double tokens = static_cast<double>(s.tokens);

  OpSpec& fc1 = bld.Op(s.prefix + "fc1", true);
  Builder::Offer(fc1, "input", Mul(s.input_tokens, m.hidden), m.hidden);
  Builder::Offer(fc1, "input_gathered", Mul(s.gathered_input, m.hidden), m.hidden);
  Builder::Offer(fc1, "norm_output", Mul(s.norm_output, m.hidden), m.hidden);
  fc1.flops = Matmul(tokens, m.hidden, (gated ? 2 : 1) * s.width);
  fc1.backward_flops = fc1.flops;
  fc1.weight_flops = fc1.flops;
  fc1.output_bytes = Mul(d.a, gated ? 2 : 1, inter);
  fc1.input_grad_bytes =
      Mul(d.a, s.input_tokens > 0 ? s.input_tokens : d.tokens_sp(), m.hidden);
  fc1.comm_buffer_bytes = s.gather;

  // The activation's profile key names its function: "mlp.swiglu",
  // "moe.experts_gelu", ... Its input is fc1's output ([tokens, 2w] gated).
  const char* function = gated ? "swiglu" : (m.activation == GELU ? "gelu" : "squared_relu");
  OpSpec& act = bld.Op(s.prefix + "act", false, bld.module() + "." + s.prefix + function);
  Builder::Offer(act, "input", Mul(gated ? 2 : 1, inter), (gated ? 2 : 1) * s.width);
  Builder::Offer(act, "probs", s.probs);
  if (gated) {
    Builder::Offer(act, "gate", inter);
    Builder::Offer(act, "up", inter);
    Builder::Offer(act, "silu", inter);
  }
  act.output_bytes = Mul(d.a, inter);
  act.input_grad_bytes = Mul(d.a, gated ? 2 : 1, inter);
  act.flops = 8.0 * static_cast<double>(inter);
  act.backward_flops = act.flops;

  OpSpec& fc2 = bld.Op(s.prefix + "fc2", true);
  Builder::Offer(fc2, "input", inter, s.width);
  fc2.flops = Matmul(tokens, s.width, m.hidden);
  fc2.backward_flops = fc2.flops;
  fc2.weight_flops = fc2.flops;
  fc2.output_bytes = Mul(d.a, s.tokens, m.hidden);
  fc2.input_grad_bytes = Mul(d.a, inter);
  fc2.comm_buffer_bytes = s.gather;

  if (s.mask > 0) {
    OpSpec& drop = bld.Op(s.prefix + "dropout", false);
    Builder::Offer(drop, "mask", s.mask);
    drop.output_bytes = fc2.output_bytes;
    drop.input_grad_bytes = fc2.output_bytes;
    drop.flops = static_cast<double>(s.mask);
    drop.backward_flops = drop.flops;
  }
}

void AddDenseMlp(Builder& bld) {
  const ModelSpec& m = bld.c().model;
  const Dims& d = bld.d();
  AddHiddenNorm(bld, "mlp_norm");
  MlpShape s;
  s.tokens = d.bs();
  s.input_tokens = d.tokens_sp();
  s.width = m.ffn / d.t;
  s.mask = bld.c().conventions.dropout ? Mul(d.tokens_sp(), m.hidden) : 0;
  s.gather = GatherBuffer(d, m.hidden);
  AddMlpOps(bld, s);
}

void AddMoe(Builder& bld) {
  const Config& c = bld.c();
  const ModelSpec& m = c.model;
  const Dims& d = bld.d();
  const bool paper = c.conventions.moe_activations == PAPER_WHOLE;
  // Tokens this rank's MoE terms are counted over: the paper keeps them
  // whole; physically each rank holds its sequence-parallel shard.
  const int64_t held = paper ? d.bs() : d.tokens_sp();
  const int64_t h = m.hidden;

  // Norm: its input is the block checkpoint.
  AddHiddenNorm(bld, "moe_norm");
  // Router: a linear to the N experts, scores, top-k. Its profile key names
  // the score function: "moe.router_softmax", "moe.router_sigmoid".
  {
    const char* kind =
        m.router_score == SIGMOID ? "moe.router_sigmoid" : "moe.router_softmax";
    OpSpec& router = bld.Op("router", true, kind);
    Builder::Offer(router, "input", Mul(held, h));
    Builder::Offer(router, "weight_fp32", Mul(m.experts, h));
    Builder::Offer(router, "logits", Mul(held, m.experts));
    Builder::Offer(router, "probs", Mul(held, m.experts));
    Builder::Offer(router, "topk_indices", Mul(held, m.top_k));
    Builder::Offer(router, "topk_weights", Mul(held, m.top_k));
    Builder::Offer(router, "topk_sum", m.router_normalize_topk ? held : 0);
    Builder::Offer(router, "scale", 1);  // a float64 scaling factor
    router.flops = Matmul(static_cast<double>(held), h, m.experts);
    router.backward_flops = router.flops;
    router.weight_flops = router.flops;
    router.output_bytes = Mul(d.a, held, m.experts);
    router.input_grad_bytes = Mul(d.a, held, h);
  }
  if (c.conventions.moe_aux_loss) {
    // The load-balancing loss recomputes the scores over all experts in FP32.
    OpSpec& aux = bld.Op("aux_loss", false);
    Builder::Offer(aux, "scores", Mul(held, m.experts));
    Builder::Offer(aux, "sum", m.router_score == SIGMOID ? held : 0);
    aux.flops = 4.0 * static_cast<double>(held) * m.experts;
    aux.backward_flops = aux.flops;
  }
  // Token copies the routed experts of this rank process.
  const int64_t local_copies = Mul(held, m.top_k);
  double copies;
  if (c.conventions.moe_tokens == LOCAL) {
    copies = static_cast<double>(local_copies) / static_cast<double>(c.parallel.ep);
  } else {
    // After the all-to-all over EP, Megatron's alltoall dispatcher gathers
    // the received tokens over the expert-tensor-parallel group
    // (token_dispatcher.py dispatch_postprocess): each of the ETP ranks of
    // an expert processes every row routed to it, T*k*ETP under balanced
    // routing (with its 1/ETP share of the width).
    copies = static_cast<double>(local_copies) * static_cast<double>(c.parallel.etp) *
             c.conventions.routing_imbalance;
  }
  const int64_t copies_i = static_cast<int64_t>(std::floor(copies));
  const bool fp8_dispatch = c.precision.fp8 == Precision::DEEPSEEK_V3;
  // Top-k and permutation keep the dispatch map; the all-to-all sends the
  // permuted tokens to their experts' ranks.
  {
    OpSpec& dispatch = bld.Op("dispatch", false);
    dispatch.collective = c.parallel.ep > 1;
    dispatch.ep_buffer = true;
    Builder::Offer(dispatch, "dispatch_map", Mul(held, m.top_k));
    Builder::Offer(dispatch, "routing_map", Mul(held, m.experts));
    Builder::Offer(dispatch, "probs", Mul(held, m.experts));
    Builder::Offer(dispatch, "permuted_probs", copies_i);
    Builder::Offer(dispatch, "token_indices", copies_i);
    // Megatron's permutation: unfused, the whole int64 argsort of the
    // [N, tokens] routing map stays alive (a slice of it is kept) with the
    // int64 sorted indices; fused, an int32 row map of [tokens, 2N + 1]; the
    // fused sort by local expert keeps an int32 map of the received rows.
    const bool fused = c.conventions.moe_permute_fusion;
    const bool sort = fused && m.experts / c.parallel.ep > 1;
    Builder::Offer(dispatch, "argsort", fused ? 0 : Mul(held, m.experts));
    Builder::Offer(dispatch, "sorted_indices", fused ? 0 : Mul(held, m.top_k));
    Builder::Offer(dispatch, "row_id_map", fused ? Mul(held, Add(Mul(2, m.experts), 1)) : 0);
    Builder::Offer(dispatch, "sort_map", sort ? copies_i : 0);
    Builder::Offer(dispatch, "one_hot", Mul(held, m.top_k, m.experts));  // eager expert mask
    // DeepSeek-V3 quantizes the tokens to FP8 (1x128 tiles) before
    // dispatching them; otherwise they travel in the activation dtype.
    auto tokens_bytes = [&](int64_t rows) {
      return fp8_dispatch ? Fp8TensorBytes(Precision::DEEPSEEK_V3, rows, h) : Mul(d.a, rows, h);
    };
    // Forward: the permuted tokens are sent, the expert rows received.
    // Backward: the rows' gradients go back in the activation dtype (the
    // report's backward combine stays in BF16).
    const int64_t send = tokens_bytes(local_copies);
    dispatch.send_bytes = send;
    dispatch.receive_bytes = tokens_bytes(copies_i);
    dispatch.grad_send_bytes = Mul(d.a, copies_i, h);
    dispatch.grad_receive_bytes = Mul(d.a, local_copies, h);
    dispatch.comm_buffer_bytes = Add(send, dispatch.receive_bytes);
    dispatch.comm_bytes = static_cast<double>(send) * (c.parallel.ep - 1) / c.parallel.ep;
    dispatch.output_bytes = Mul(d.a, copies_i, h);
    dispatch.input_grad_bytes = Mul(d.a, held, h);
  }
  MlpShape routed;
  routed.prefix = "experts_";
  routed.tokens = copies_i;
  routed.input_tokens = copies_i;
  routed.width = m.moe_ffn / c.parallel.etp;
  routed.mask = c.conventions.dropout ? Mul(copies_i, h) : 0;
  routed.probs = copies_i;
  AddMlpOps(bld, routed);

  if (m.shared_experts > 0) {
    MlpShape shared;
    shared.prefix = "shared_";
    if (c.conventions.shared_experts == WHOLE) {
      // The paper: N_s whole experts over the held tokens, 3h + 8h_E each.
      shared.tokens = Mul(held, m.shared_experts);
      shared.input_tokens = shared.tokens;
      shared.width = m.moe_ffn;
      shared.mask = c.conventions.dropout ? Mul(held, h, m.shared_experts) : 0;
    } else {
      // Split over TP like a dense MLP of the shared width. Its input is the
      // norm's output, which the router keeps: not offered twice.
      shared.tokens = d.bs();
      shared.input_tokens = 0;
      shared.width = m.shared_ffn / d.t;
      shared.mask = c.conventions.dropout ? Mul(d.tokens_sp(), h) : 0;
      shared.gather = GatherBuffer(d, h);
      // Overlapped with the all-to-all, Megatron gathers the sequence itself
      // and fc1 keeps the gathered input.
      shared.gathered_input = c.conventions.moe_shared_expert_overlap && d.sp > 1 ? d.bs() : 0;
      shared.norm_output = d.tokens_sp();
    }
    AddMlpOps(bld, shared);
  }
  {
    // Its profile key names the router's score function: eager softmax
    // routers (Mixtral, Qwen) weight expert outputs in BF16, DeepSeek-V3's
    // sigmoid router in FP32.
    OpSpec& combine = bld.Op("combine", false,
                             m.router_score == SIGMOID ? "moe.combine_sigmoid"
                                                       : "moe.combine_softmax");
    combine.collective = c.parallel.ep > 1;
    combine.ep_buffer = true;
    Builder::Offer(combine, "expert_outputs", Mul(copies_i, h));
    Builder::Offer(combine, "weighted_outputs", Mul(copies_i, h));
    Builder::Offer(combine, "weights", copies_i);
    Builder::Offer(combine, "token_indices", copies_i);
    Builder::Offer(combine, "weight_indices", copies_i);
    Builder::Offer(combine, "sort_map",
                   c.conventions.moe_permute_fusion && m.experts / c.parallel.ep > 1 ? copies_i : 0);
    // Forward: the expert rows go back in the activation dtype. Backward:
    // DeepSeek-V3 quantizes the gradients before the experts' down
    // projection to FP8 for this all-to-all (report section 3.3.3).
    const int64_t back = Mul(d.a, copies_i, h);
    combine.send_bytes = back;
    combine.receive_bytes = Mul(d.a, local_copies, h);
    combine.grad_send_bytes =
        fp8_dispatch ? Fp8TensorBytes(Precision::DEEPSEEK_V3, local_copies, h) : combine.receive_bytes;
    combine.grad_receive_bytes =
        fp8_dispatch ? Fp8TensorBytes(Precision::DEEPSEEK_V3, copies_i, h) : back;
    combine.comm_buffer_bytes = Add(back, combine.receive_bytes);
    combine.comm_bytes = static_cast<double>(back) * (c.parallel.ep - 1) / c.parallel.ep;
    combine.output_bytes = Mul(d.a, d.tokens_sp(), h);
    combine.input_grad_bytes = back;
  }
}

void AddDecoder(Builder& bld, int64_t layer, bool moe, const std::string& unit_prefix) {
  const Config& c = bld.c();
  const std::string layer_unit = unit_prefix + std::to_string(layer);
  const bool per_layer = GetProfile(c.conventions.profile).table().full_recompute_per_layer();
  bld.SetUnit(per_layer ? layer_unit : layer_unit + ".attn");
  if (c.model.attention == MHA) {
    bld.SetModule("attention");
    AddMha(bld);
  } else {
    bld.SetModule("mla");
    AddMla(bld);
  }
  bld.SetUnit(per_layer ? layer_unit : layer_unit + (moe ? ".moe" : ".mlp"));
  if (moe) {
    bld.SetModule("moe");
    AddMoe(bld);
  } else {
    bld.SetModule("mlp");
    AddDenseMlp(bld);
  }
  bld.SetUnit("");
}

void AddEmbedding(Builder& bld, const std::string& name) {
  const Dims& d = bld.d();
  const ModelSpec& m = bld.c().model;
  OpSpec& op = bld.Op(name, true, "embedding.lookup");
  Builder::Offer(op, "token_ids", d.bs());
  Builder::Offer(op, "position_ids", m.position == LEARNED_ABSOLUTE ? d.bs() : 0);
  // Vocabulary-parallel lookup: the bool mask of ids outside this rank's rows.
  Builder::Offer(op, "input_mask", d.t > 1 ? d.bs() : 0);
  // The rotary cos and sin tables of one forward, [s, rot_dim] each.
  const int64_t rot = m.attention == MLA ? m.rope_dim : m.head_dim;
  Builder::Offer(op, "rope_cache", m.position == ROPE ? Mul(2, d.s, rot) : 0);
  // The eager attention mask [b, 1, s, s]; flash attention takes is_causal
  // instead (HF's sdpa_mask returns None without padding).
  Builder::Offer(op, "causal_mask",
                 bld.c().conventions.attention == FLASH ? 0 : Mul(d.b, d.s, d.s));
  // The positions of one forward, [s] (HF's cache_position; position_ids is a view).
  Builder::Offer(op, "cache_position", d.s);
  Builder::Offer(op, "dropout_mask",
                 bld.c().conventions.dropout ? Mul(d.tokens_sp(), m.hidden) : 0);
  op.output_bytes = Mul(d.a, d.tokens_sp(), m.hidden);
  op.flops = static_cast<double>(d.bs()) * m.hidden;
  op.weight_flops = op.flops;
}

// Final norm, output head and cross-entropy.
void AddLoss(Builder& bld) {
  const Config& c = bld.c();
  const Dims& d = bld.d();
  const ModelSpec& m = c.model;
  const int64_t vocab_local = PaddedVocab(c) / d.t;
  const int64_t logits = Mul(d.bs(), vocab_local);
  AddHiddenNorm(bld, "final_norm", "loss.final_norm");
  OpSpec& head = bld.Op("head", true, "loss.head");
  Builder::Offer(head, "input", Mul(d.tokens_sp(), m.hidden), m.hidden);
  Builder::Offer(head, "input_grad_copy", Mul(d.tokens_sp(), m.hidden));
  head.flops = Matmul(static_cast<double>(d.bs()), m.hidden, vocab_local);
  head.backward_flops = head.flops;
  head.weight_flops = head.flops;
  // The logits; a cross-entropy that keeps its gradient in them (TE before
  // 2.18) keeps this very storage, counted there.
  head.output_bytes = c.conventions.cross_entropy_keeps_bf16_logits ? 0 : Mul(d.a, logits);
  head.input_grad_bytes = Mul(d.a, d.tokens_sp(), m.hidden);
  head.comm_buffer_bytes = GatherBuffer(d, m.hidden);
  OpSpec& loss = bld.Op("cross_entropy", false, "loss.cross_entropy");
  const bool fused = c.conventions.fused_loss;
  const bool in_logits = c.conventions.cross_entropy_keeps_bf16_logits;
  Builder::Offer(loss, "logits_fp32", fused ? 0 : logits);
  Builder::Offer(loss, "softmax", fused || in_logits ? 0 : logits);
  Builder::Offer(loss, "logits_grad", in_logits ? logits : 0);
  Builder::Offer(loss, "lse", fused ? d.bs() : 0);
  Builder::Offer(loss, "labels", d.bs());
  Builder::Offer(loss, "target_mask", d.bs());
  Builder::Offer(loss, "log_probs", logits);
  Builder::Offer(loss, "grad_fp32", logits);
  // Hugging Face shifts the labels by padding them: at b = 1 the shifted
  // labels are a view of the padded [s + 1] tensor, else a [b, s] copy.
  Builder::Offer(loss, "labels_storage", d.b == 1 ? d.s + 1 : d.bs());
  Builder::Offer(loss, "padded_labels", d.b == 1 ? 0 : Mul(d.b, d.s + 1));
  Builder::Offer(loss, "total_weight", 1);
  Builder::Offer(loss, "loss_scale", 1);
  loss.output_bytes = Mul(4, d.bs());
  // Kept in the logits, the gradient is handed back in that same storage.
  loss.input_grad_bytes = in_logits ? 0 : Mul(d.a, logits);
  loss.flops = 5.0 * static_cast<double>(logits);
  loss.backward_flops = loss.flops;
}

}  // namespace

std::vector<OpSpec> SlotOps(const Config& c, const Stage& /*stage*/, const Slot& slot) {
  switch (slot.kind) {
    case SlotKind::kEmbedding: {
      Builder bld(c, "", "embedding", -1);
      AddEmbedding(bld, "lookup");
      return bld.Take();
    }
    case SlotKind::kDecoder: {
      Builder bld(c, "L" + std::to_string(slot.index) + ".", "mla", slot.index);
      AddDecoder(bld, slot.index, c.model.IsMoeLayer(slot.index), "L");
      return bld.Take();
    }
    case SlotKind::kMtp: {
      const int64_t layer = c.model.layers + slot.index;
      const std::string prefix = "M" + std::to_string(slot.index) + ".";
      Builder bld(c, prefix, "mtp", layer);
      bld.SetGroup("mtp");
      AddEmbedding(bld, "lookup");
      AddHiddenNorm(bld, "enorm");
      AddHiddenNorm(bld, "hnorm");
      {
        const Dims& d = bld.d();
        OpSpec& proj = bld.Op("eh_proj", true);
        const int64_t in = Mul(2, d.tokens_sp(), c.model.hidden);
        Builder::Offer(proj, "input", in, 2 * c.model.hidden);
        proj.flops = Matmul(static_cast<double>(d.bs()), 2 * c.model.hidden,
                            c.model.hidden / d.t);
        proj.backward_flops = proj.flops;
        proj.weight_flops = proj.flops;
        proj.output_bytes = Mul(d.a, d.tokens_sp(), c.model.hidden);
        proj.input_grad_bytes = Mul(d.a, in);
        proj.comm_buffer_bytes = GatherBuffer(d, 2 * c.model.hidden);
      }
      AddDecoder(bld, slot.index, c.model.experts > 0, "M");
      bld.SetModule("mtp");
      AddLoss(bld);
      return bld.Take();
    }
    case SlotKind::kLoss: {
      Builder bld(c, "", "loss", -1);
      AddLoss(bld);
      return bld.Take();
    }
  }
  return {};
}

std::vector<OpSpec> StageOps(const Config& c, const Stage& stage) {
  std::vector<OpSpec> ops;
  for (const Slot& slot : stage.slots) {
    for (OpSpec& op : SlotOps(c, stage, slot)) ops.push_back(std::move(op));
  }
  return ops;
}

}  // namespace stepsim::graph
