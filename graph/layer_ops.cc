#include "graph/layer_ops.h"

#include <cmath>
#include <deque>
#include <iterator>

#include "graph/checked.h"

namespace stepsim::graph {
namespace {

// Sizes shared by every builder, for one micro-batch on one device.
struct Dims {
  int64_t b = 1;   // sequences per micro-batch
  int64_t s = 1;   // tokens per sequence on this context-parallel rank
  int64_t t = 1;   // tensor-parallel size
  int64_t sp = 1;  // sequence divisor outside TP regions: t with SP, else 1
  int64_t a = 2;   // bytes per activation element
  int64_t bs() const { return Mul(b, s); }
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

// Collects the ops of one slot with a common name prefix.
class Builder {
 public:
  Builder(const Config& c, std::string prefix, std::string module, int64_t layer)
      : c_(c), d_(MakeDims(c)), prefix_(std::move(prefix)), module_(std::move(module)),
        layer_(layer) {}

  const Dims& d() const { return d_; }
  const Config& c() const { return c_; }
  void SetModule(std::string module) { module_ = std::move(module); }
  void SetUnit(std::string unit) { unit_ = std::move(unit); }

  // Reports every op under `group` (MTP) instead of its own module.
  void SetGroup(std::string group) { group_ = std::move(group); }

  // Starts a new op; returns it for filling in.
  OpSpec& Op(const std::string& name, bool has_weights) {
    OpSpec op;
    op.name = prefix_ + module_ + "." + name;
    op.module = group_.empty() ? module_ : group_;
    op.layer = layer_;
    op.unit = unit_;
    op.has_weights = has_weights;
    ops_.push_back(std::move(op));
    return ops_.back();
  }

  std::vector<OpSpec> Take() { return {std::make_move_iterator(ops_.begin()),
                                       std::make_move_iterator(ops_.end())}; }

 private:
  const Config& c_;
  Dims d_;
  std::string prefix_, module_, unit_, group_;
  int64_t layer_;
  std::deque<OpSpec> ops_;  // a deque: references to earlier ops stay valid
};

Keep K(std::string name, int64_t bytes, bool weight_grad = false,
       std::vector<std::string> selective = {}, bool checkpoint = false) {
  return Keep{std::move(name), bytes, weight_grad, checkpoint, std::move(selective)};
}

// A norm: keeps its input (the block checkpoint when `checkpoint`).
void AddNorm(Builder& bld, const std::string& name, bool checkpoint) {
  const Dims& d = bld.d();
  const int64_t x = Mul(d.a, d.bs(), bld.c().model.hidden) / d.sp;
  OpSpec& op = bld.Op(name, true);
  op.keeps.push_back(K("input", x, false, {}, checkpoint));
  op.output_bytes = x;
  op.input_grad_bytes = x;
  op.flops = 4.0 * static_cast<double>(d.bs()) * bld.c().model.hidden / d.sp;
  op.backward_flops = op.flops;
}

// The sequence-parallel all-gather before a column-parallel linear (and the
// reduce-scatter after a row-parallel one): a full-sequence buffer.
int64_t GatherBuffer(const Dims& d, int64_t width) {
  return d.sp > 1 ? Mul(d.a, d.bs(), width) : 0;
}

void AddAttentionCore(Builder& bld, int64_t heads_local, int64_t qk_dim, int64_t v_dim,
                      const std::vector<std::string>& qkv_tags) {
  const Config& c = bld.c();
  const Dims& d = bld.d();
  const int64_t b = d.b, s = d.s;
  const double causal = 0.5;  // causal masking: half the score matrix is computed
  const double qk_flops = Matmul(static_cast<double>(b) * heads_local * s, s, qk_dim) * causal;
  const double av_flops = Matmul(static_cast<double>(b) * heads_local * s, s, v_dim) * causal;
  const int64_t q_k = Mul(2, d.a, d.bs(), qk_dim, heads_local);
  const int64_t v = Mul(d.a, d.bs(), v_dim, heads_local);
  const int64_t scores = Mul(d.a, b, heads_local, s, s);
  if (c.conventions.attention == FLASH) {
    // One fused kernel: Q, K, V and the FP32 log-sum-exp kept; its output is
    // the input of the output projection, which keeps it.
    OpSpec& op = bld.Op("core_attn", false);
    op.keeps.push_back(K("q_k", q_k, false, qkv_tags));
    op.keeps.push_back(K("v", v, false, qkv_tags));
    op.keeps.push_back(K("lse", Mul(4, b, heads_local, s), false, {"core_attn"}));
    op.output_bytes = Mul(d.a, d.bs(), v_dim, heads_local);
    op.input_grad_bytes = q_k + v;
    op.flops = qk_flops + av_flops;
    op.backward_flops = 2.5 * op.flops;  // includes the kernel's own recomputation
    return;
  }
  OpSpec& qk = bld.Op("qk", false);
  qk.keeps.push_back(K("q_k", q_k, false, qkv_tags));
  qk.output_bytes = scores;
  qk.input_grad_bytes = q_k;
  qk.flops = qk_flops;
  qk.backward_flops = 2 * qk_flops;

  OpSpec& softmax = bld.Op("softmax", false);
  softmax.keeps.push_back(K("softmax_out", scores, false, {"core_attn"}));
  softmax.output_bytes = scores;
  softmax.input_grad_bytes = scores;
  softmax.flops = 5.0 * static_cast<double>(b) * heads_local * s * s * causal;
  softmax.backward_flops = softmax.flops;

  if (c.conventions.dropout) {
    OpSpec& drop = bld.Op("attn_dropout", false);
    drop.keeps.push_back(K("mask", Mul(b, heads_local, s, s), false, {"core_attn"}));
    drop.keeps.push_back(K("output", scores, false, {"core_attn"}));
    drop.output_bytes = scores;
    drop.input_grad_bytes = scores;
    drop.flops = static_cast<double>(b) * heads_local * s * s;
    drop.backward_flops = drop.flops;
  }

  OpSpec& av = bld.Op("attn_v", false);
  av.keeps.push_back(K("v", v, false, qkv_tags));
  av.output_bytes = Mul(d.a, d.bs(), v_dim, heads_local);
  av.input_grad_bytes = Add(scores, v);
  av.flops = av_flops;
  av.backward_flops = 2 * av_flops;
}

void AddOutputDropout(Builder& bld, const std::vector<std::string>& tags) {
  if (!bld.c().conventions.dropout) return;
  const Dims& d = bld.d();
  const int64_t x = Mul(d.bs(), bld.c().model.hidden) / d.sp;
  OpSpec& op = bld.Op("dropout", false);
  op.keeps.push_back(K("mask", x, false, tags));
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
  const int64_t o_in = Mul(d.a, d.bs(), heads_local, head_dim);
  o.keeps.push_back(K("input", o_in, true));
  o.flops = Matmul(static_cast<double>(d.bs()), heads_local * head_dim, h);
  o.backward_flops = o.flops;
  o.weight_flops = o.flops;
  o.output_bytes = Mul(d.a, d.bs(), h) / d.sp;
  o.input_grad_bytes = o_in;
  o.comm_buffer_bytes = GatherBuffer(d, h);
  AddOutputDropout(bld, {});
}

// The MLA block (paper's table in memory-model.md section 4).
void AddMla(Builder& bld) {
  const Config& c = bld.c();
  const ModelSpec& m = c.model;
  const Dims& d = bld.d();
  const int64_t nh = m.heads / d.t, h = m.hidden;
  const double bs = static_cast<double>(d.bs());
  AddNorm(bld, "attn_norm", true);

  // q/kv down-projections share the normed input (sequence-gathered).
  OpSpec& down = bld.Op("down_proj", true);
  const int64_t normed = Mul(d.a, d.bs(), h) / d.sp;
  down.keeps.push_back(K("input", normed, true, {"layernorm"}));
  const int64_t down_width = m.q_lora > 0 ? Add(m.q_lora, m.kv_lora, m.rope_dim)
                                          : Add(m.kv_lora, m.rope_dim);
  down.flops = Matmul(bs, h, down_width);
  if (m.q_lora == 0) down.flops += Matmul(bs, h, nh * (m.nope_dim + m.rope_dim));
  down.backward_flops = down.flops;
  down.weight_flops = down.flops;
  down.output_bytes = Mul(d.a, d.bs(), down_width);
  down.input_grad_bytes = normed;
  down.comm_buffer_bytes = GatherBuffer(d, h);

  // Latent norms and up-projections keep the latents c_Q, c_KV (not split).
  OpSpec& up = bld.Op("up_proj", true);
  const int64_t latents = Mul(d.a, d.bs(), Add(m.q_lora, m.kv_lora));
  up.keeps.push_back(K("latents", latents, true));
  const int64_t rope_heads = c.conventions.q_rope == SPLIT ? nh : m.heads;
  up.flops = Matmul(bs, m.q_lora, nh * m.nope_dim) + Matmul(bs, m.q_lora, rope_heads * m.rope_dim) +
             Matmul(bs, m.kv_lora, 2 * nh * m.nope_dim);
  up.backward_flops = up.flops;
  up.weight_flops = up.flops;
  up.output_bytes = Mul(d.a, d.bs(), nh, Add(Mul(2, Add(m.nope_dim, m.rope_dim)), m.nope_dim));
  up.input_grad_bytes = latents;

  AddAttentionCore(bld, nh, m.nope_dim + m.rope_dim, m.nope_dim, {"mla_up_proj"});
  AddOutputProjection(bld, nh, m.nope_dim);
}

// Classic multi-head attention (GPT): fused QKV, core attention, projection.
void AddMha(Builder& bld) {
  const ModelSpec& m = bld.c().model;
  const Dims& d = bld.d();
  const int64_t nh = m.heads / d.t, hd = m.hidden / m.heads, h = m.hidden;
  const double bs = static_cast<double>(d.bs());
  AddNorm(bld, "attn_norm", true);
  OpSpec& qkv = bld.Op("qkv_proj", true);
  const int64_t normed = Mul(d.a, d.bs(), h) / d.sp;
  qkv.keeps.push_back(K("input", normed, true, {"layernorm"}));
  qkv.flops = Matmul(bs, h, 3 * nh * hd);
  qkv.backward_flops = qkv.flops;
  qkv.weight_flops = qkv.flops;
  qkv.output_bytes = Mul(3, d.a, d.bs(), nh, hd);
  qkv.input_grad_bytes = normed;
  qkv.comm_buffer_bytes = GatherBuffer(d, h);
  AddAttentionCore(bld, nh, hd, hd, {});
  AddOutputProjection(bld, nh, hd);
}

// An MLP over `tokens` tokens: fc1 (gate and up for SwiGLU), activation,
// fc2, output dropout. `input` is the fc1 input kept; widths are per device.
struct MlpShape {
  std::string prefix;      // "mlp_", "experts_", "shared_"
  double tokens = 0;       // tokens (or token copies) processed
  int64_t input_bytes = 0; // fc1 input kept
  std::vector<std::string> input_tags;  // extra selective tags of the fc1 input
  int64_t width = 0;       // intermediate width on the device
  int64_t mask_bytes = 0;  // output dropout mask (0: no dropout)
  std::vector<std::string> tags, act_tags;
  int64_t gather = 0;      // TP/SP gather buffer
};

void AddMlpOps(Builder& bld, const MlpShape& s) {
  const ModelSpec& m = bld.c().model;
  const Dims& d = bld.d();
  const bool swiglu = m.activation == SWIGLU;
  const int64_t inter = Mul(d.a, static_cast<int64_t>(s.tokens), s.width);
  const int64_t in_width = swiglu ? 2 * s.width : s.width;

  OpSpec& fc1 = bld.Op(s.prefix + "fc1", true);
  std::vector<std::string> input_tags = s.tags;
  input_tags.insert(input_tags.end(), s.input_tags.begin(), s.input_tags.end());
  if (s.input_bytes > 0) fc1.keeps.push_back(K("input", s.input_bytes, true, input_tags));
  fc1.flops = Matmul(s.tokens, m.hidden, in_width);
  fc1.backward_flops = fc1.flops;
  fc1.weight_flops = fc1.flops;
  fc1.output_bytes = swiglu ? 2 * inter : inter;
  fc1.input_grad_bytes = s.input_bytes > 0 ? s.input_bytes : Mul(d.a, d.bs(), m.hidden) / d.sp;
  fc1.comm_buffer_bytes = s.gather;

  OpSpec& act = bld.Op(s.prefix + "act", false);
  if (swiglu) {
    // gate and up outputs, and silu(gate): with fc2's input, 8*h_E bytes a token.
    act.keeps.push_back(K("gate", inter, false, s.tags));
    act.keeps.push_back(K("up", inter, false, s.tags));
    std::vector<std::string> silu_tags = s.tags;
    silu_tags.insert(silu_tags.end(), s.act_tags.begin(), s.act_tags.end());
    act.keeps.push_back(K("silu", inter, false, silu_tags));
  } else {
    // GeLU keeps its input (4h wide in GPT: 8 bytes a token per h).
    act.keeps.push_back(K("input", inter, false, s.tags));
  }
  act.output_bytes = inter;
  act.input_grad_bytes = swiglu ? 2 * inter : inter;
  act.flops = 8.0 * s.tokens * s.width;
  act.backward_flops = act.flops;

  OpSpec& fc2 = bld.Op(s.prefix + "fc2", true);
  std::vector<std::string> fc2_tags = s.tags;
  fc2_tags.insert(fc2_tags.end(), s.act_tags.begin(), s.act_tags.end());
  fc2.keeps.push_back(K("input", inter, true, fc2_tags));
  fc2.flops = Matmul(s.tokens, s.width, m.hidden);
  fc2.backward_flops = fc2.flops;
  fc2.weight_flops = fc2.flops;
  fc2.output_bytes = Mul(d.a, static_cast<int64_t>(s.tokens), m.hidden);
  fc2.input_grad_bytes = inter;
  fc2.comm_buffer_bytes = s.gather;

  if (s.mask_bytes > 0) {
    OpSpec& drop = bld.Op(s.prefix + "dropout", false);
    drop.keeps.push_back(K("mask", s.mask_bytes, false, s.tags));
    drop.output_bytes = fc2.output_bytes;
    drop.input_grad_bytes = fc2.output_bytes;
    drop.flops = static_cast<double>(s.mask_bytes);
    drop.backward_flops = drop.flops;
  }
}

void AddDenseMlp(Builder& bld) {
  const ModelSpec& m = bld.c().model;
  const Dims& d = bld.d();
  AddNorm(bld, "mlp_norm", true);
  MlpShape s;
  s.prefix = "";
  s.tokens = static_cast<double>(d.bs());
  s.input_bytes = Mul(d.a, d.bs(), m.hidden) / d.sp;
  s.width = m.ffn / d.t;
  s.mask_bytes = bld.c().conventions.dropout ? Mul(d.bs(), m.hidden) / d.sp : 0;
  s.tags = {"mlp"};
  s.gather = GatherBuffer(d, m.hidden);
  s.input_tags = {"layernorm"};  // the fc1 input is the norm's output
  AddMlpOps(bld, s);
}

void AddMoe(Builder& bld) {
  const Config& c = bld.c();
  const ModelSpec& m = c.model;
  const Dims& d = bld.d();
  const bool paper = c.conventions.moe_activations == PAPER_WHOLE;
  // Tokens this rank's MoE terms are counted over: the paper keeps them
  // whole; physically each rank holds its sequence-parallel shard.
  const int64_t held = paper ? d.bs() : d.bs() / d.sp;
  const int64_t h = m.hidden;

  // Norm: input (the block checkpoint) and output, 4bsh (/TP with SP).
  {
    const int64_t x = Mul(d.a, d.bs(), h) / d.sp;
    OpSpec& norm = bld.Op("moe_norm", true);
    norm.keeps.push_back(K("input", x, false, {}, true));
    norm.keeps.push_back(K("output", x, false, {"layernorm"}));
    norm.output_bytes = x;
    norm.input_grad_bytes = x;
    norm.flops = 4.0 * static_cast<double>(d.bs()) * h / d.sp;
    norm.backward_flops = norm.flops;
  }
  // Router: logits and probabilities, 4bsN.
  {
    OpSpec& router = bld.Op("router", true);
    router.keeps.push_back(K("logits_probs", Mul(2, d.a, held, m.experts), false, {"moe"}));
    router.flops = Matmul(static_cast<double>(held), h, m.experts);
    router.backward_flops = router.flops;
    router.weight_flops = router.flops;
    router.output_bytes = Mul(d.a, held, m.experts);
    router.input_grad_bytes = Mul(d.a, held, h);
  }
  // Token copies the routed experts of this rank process.
  const int64_t local_copies = Mul(held, m.top_k);
  double copies;
  if (c.conventions.moe_tokens == LOCAL) {
    copies = static_cast<double>(local_copies) / static_cast<double>(c.parallel.ep);
  } else {
    copies = static_cast<double>(local_copies) * c.conventions.routing_imbalance;
  }
  copies = std::floor(copies);
  const int64_t copies_i = static_cast<int64_t>(copies);
  // Top-k and permutation keep the dispatch map; the all-to-all sends the
  // permuted tokens to their experts' ranks.
  {
    OpSpec& dispatch = bld.Op("dispatch", false);
    dispatch.collective = c.parallel.ep > 1;
    dispatch.ep_buffer = true;
    dispatch.keeps.push_back(K("dispatch_map", Mul(d.a, held, m.top_k), false, {}, true));
    const int64_t send = Mul(d.a, local_copies, h);
    dispatch.comm_buffer_bytes = Add(send, Mul(d.a, copies_i, h));
    dispatch.comm_bytes = static_cast<double>(send) * (c.parallel.ep - 1) / c.parallel.ep;
    dispatch.output_bytes = Mul(d.a, copies_i, h);
    dispatch.input_grad_bytes = Mul(d.a, held, h);
  }
  MlpShape routed;
  routed.prefix = "experts_";
  routed.tokens = copies;
  routed.input_bytes = Mul(d.a, copies_i, h);
  routed.width = m.moe_ffn / c.parallel.etp;
  routed.mask_bytes = c.conventions.dropout ? Mul(copies_i, h) : 0;
  routed.tags = {"moe"};
  routed.act_tags = {"moe_act"};
  AddMlpOps(bld, routed);

  if (m.shared_experts > 0) {
    MlpShape shared;
    shared.prefix = "shared_";
    shared.tags = {"moe", "shared_experts"};
    if (c.conventions.shared_experts == WHOLE) {
      // The paper: N_s whole experts over the held tokens, 3h + 8h_E each.
      shared.tokens = static_cast<double>(Mul(held, m.shared_experts));
      shared.input_bytes = Mul(d.a, held, h, m.shared_experts);
      shared.width = m.moe_ffn;
      shared.mask_bytes = c.conventions.dropout ? Mul(held, h, m.shared_experts) : 0;
    } else {
      // Split over TP like a dense MLP of width N_s * h_E. Its input is the
      // norm's output, which the norm already keeps: not counted twice.
      shared.tokens = static_cast<double>(d.bs());
      shared.input_bytes = 0;
      shared.width = Mul(m.shared_experts, m.moe_ffn) / d.t;
      shared.mask_bytes = c.conventions.dropout ? Mul(d.bs(), h) / d.sp : 0;
      shared.gather = GatherBuffer(d, h);
    }
    AddMlpOps(bld, shared);
  }
  {
    OpSpec& combine = bld.Op("combine", false);
    combine.collective = c.parallel.ep > 1;
    combine.ep_buffer = true;
    const int64_t back = Mul(d.a, copies_i, h);
    combine.comm_buffer_bytes = Add(back, Mul(d.a, local_copies, h));
    combine.comm_bytes = static_cast<double>(back) * (c.parallel.ep - 1) / c.parallel.ep;
    combine.output_bytes = Mul(d.a, d.bs(), h) / d.sp;
    combine.input_grad_bytes = back;
  }
}

void AddDecoder(Builder& bld, int64_t layer, bool moe, const std::string& unit_prefix) {
  const Config& c = bld.c();
  bld.SetUnit(unit_prefix + std::to_string(layer) + ".attn");
  if (c.model.attention == MHA) {
    bld.SetModule("attention");
    AddMha(bld);
  } else {
    bld.SetModule("mla");
    AddMla(bld);
  }
  bld.SetUnit(unit_prefix + std::to_string(layer) + (moe ? ".moe" : ".mlp"));
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
  OpSpec& op = bld.Op(name, true);
  op.keeps.push_back(K("token_ids", Mul(8, d.bs())));  // int64 ids
  op.output_bytes = Mul(d.a, d.bs(), m.hidden) / d.sp;
  op.flops = static_cast<double>(d.bs()) * m.hidden;
  op.weight_flops = op.flops;
  if (bld.c().conventions.dropout) {
    op.keeps.push_back(K("dropout_mask", Mul(d.bs(), m.hidden) / d.sp));
  }
}

// Final norm, output head and cross-entropy.
void AddLoss(Builder& bld, const std::string& prefix) {
  const Config& c = bld.c();
  const Dims& d = bld.d();
  const ModelSpec& m = c.model;
  const int64_t vocab_local = CeilDiv(m.vocab, d.t);
  AddNorm(bld, prefix + "final_norm", false);
  OpSpec& head = bld.Op(prefix + "head", true);
  const int64_t x = Mul(d.a, d.bs(), m.hidden) / d.sp;
  head.keeps.push_back(K("input", x, true));
  head.flops = Matmul(static_cast<double>(d.bs()), m.hidden, vocab_local);
  head.backward_flops = head.flops;
  head.weight_flops = head.flops;
  head.output_bytes = Mul(d.a, d.bs(), vocab_local);
  head.input_grad_bytes = x;
  head.comm_buffer_bytes = GatherBuffer(d, m.hidden);
  OpSpec& loss = bld.Op(prefix + "cross_entropy", false);
  if (c.conventions.fused_loss) {
    loss.keeps.push_back(K("lse", Mul(4, d.bs())));
  } else {
    loss.keeps.push_back(K("logits_fp32", Mul(4, d.bs(), vocab_local)));
  }
  loss.output_bytes = Mul(4, d.bs());
  loss.input_grad_bytes = Mul(d.a, d.bs(), vocab_local);
  loss.flops = 5.0 * static_cast<double>(d.bs()) * vocab_local;
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
      AddNorm(bld, "enorm", false);
      AddNorm(bld, "hnorm", false);
      {
        const Dims& d = bld.d();
        OpSpec& proj = bld.Op("eh_proj", true);
        const int64_t in = Mul(2, d.a, d.bs(), c.model.hidden) / d.sp;
        proj.keeps.push_back(K("input", in, true));
        proj.flops = Matmul(static_cast<double>(d.bs()), 2 * c.model.hidden,
                            c.model.hidden / d.t);
        proj.backward_flops = proj.flops;
        proj.weight_flops = proj.flops;
        proj.output_bytes = Mul(d.a, d.bs(), c.model.hidden) / d.sp;
        proj.input_grad_bytes = in;
        proj.comm_buffer_bytes = GatherBuffer(d, 2 * c.model.hidden);
      }
      AddDecoder(bld, slot.index, c.model.experts > 0, "M");
      bld.SetModule("mtp");
      AddLoss(bld, "");
      return bld.Take();
    }
    case SlotKind::kLoss: {
      Builder bld(c, "", "loss", -1);
      AddLoss(bld, "");
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
