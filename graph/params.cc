#include "graph/params.h"

#include <algorithm>

#include "graph/checked.h"

namespace stepsim::graph {
namespace {

// Builds entries for one slot. `tp`-split matrices are divided exactly:
// validation guarantees TP divides heads and MLP widths.
class EntryList {
 public:
  EntryList(std::string module, ShardGroup group) : module_(std::move(module)), group_(group) {}

  void Add(const std::string& matrix, int64_t whole, int64_t device) {
    entries_.push_back({module_, module_ + "." + matrix, whole, device, group_});
  }
  // Adds under another module name (norms inside a layer).
  void AddTo(const std::string& module, const std::string& matrix, int64_t whole,
             int64_t device, ShardGroup group) {
    entries_.push_back({module, module + "." + matrix, whole, device, group});
  }
  void SetModule(std::string module, ShardGroup group) {
    module_ = std::move(module);
    group_ = group;
  }
  std::vector<ParamEntry>& entries() { return entries_; }

 private:
  std::string module_;
  ShardGroup group_;
  std::vector<ParamEntry> entries_;
};

int64_t NormParams(const ModelSpec& m, int64_t width) {
  return m.norm == LAYERNORM ? Mul(2, width) : width;
}

// Attention of one layer (without its norm).
void AddAttention(const Config& c, EntryList& out) {
  const ModelSpec& m = c.model;
  const int64_t tp = c.parallel.tp, h = m.hidden, nh = m.heads;
  if (m.attention == MHA) {
    // Q of n_h heads, K and V of g query groups, fused column-parallel;
    // the output projection row-parallel.
    out.SetModule("attention", ShardGroup::kDense);
    const int64_t qkv_width = Mul(Add(nh, Mul(2, m.query_groups)), m.head_dim);
    const int64_t qkv = Mul(qkv_width, h), o = Mul(h, nh, m.head_dim);
    out.Add("w_qkv", qkv, qkv / tp);
    out.Add("w_o", o, o / tp);
    if (m.qkv_bias) out.Add("b_qkv", qkv_width, qkv_width / tp);
    if (m.linear_bias) out.Add("b_o", h, h);
    if (m.qk_norm) {
      // One norm of the head dimension for Q and one for K, shared by all
      // heads and replicated over TP.
      out.AddTo("norms", "q_head", NormParams(m, m.head_dim), NormParams(m, m.head_dim),
                ShardGroup::kDense);
      out.AddTo("norms", "k_head", NormParams(m, m.head_dim), NormParams(m, m.head_dim),
                ShardGroup::kDense);
    }
    return;
  }
  out.SetModule("mla", ShardGroup::kDense);
  const int64_t dh = m.nope_dim, dhr = m.rope_dim, dcq = m.q_lora, dc = m.kv_lora,
                dv = m.v_dim;
  const bool split_rope = c.conventions.q_rope == SPLIT;
  if (dcq > 0) {
    const int64_t w_dq = Mul(dcq, h), w_uq = Mul(nh, dh, dcq), w_qr = Mul(nh, dhr, dcq);
    out.Add("w_dq", w_dq, w_dq);
    out.Add("w_uq", w_uq, w_uq / tp);
    out.Add("w_qr", w_qr, split_rope ? w_qr / tp : w_qr);
  } else {
    // No query compression: W^Q [n_h(d_h + d_hr), h], column-parallel.
    const int64_t w_q = Mul(nh, dh + dhr, h);
    out.Add("w_q", w_q, w_q / tp);
  }
  const int64_t w_dkv = Mul(dc, h), w_kr = Mul(dhr, h), w_uk = Mul(nh, dh, dc),
                w_uv = Mul(nh, dv, dc), w_o = Mul(h, nh, dv);
  out.Add("w_dkv", w_dkv, w_dkv);
  out.Add("w_kr", w_kr, w_kr);
  out.Add("w_uk", w_uk, w_uk / tp);
  out.Add("w_uv", w_uv, w_uv / tp);
  out.Add("w_o", w_o, w_o / tp);
  if (m.linear_bias) out.Add("b_o", h, h);
  if (dcq > 0) {
    out.AddTo("norms", "q_latent", NormParams(m, dcq), NormParams(m, dcq), ShardGroup::kDense);
  }
  out.AddTo("norms", "kv_latent", NormParams(m, dc), NormParams(m, dc), ShardGroup::kDense);
}

bool Gated(const ModelSpec& m) { return m.activation == SWIGLU; }

// Weights of one MLP of width `ffn`: fc1 (gate and up when gated) and fc2.
int64_t MlpWeights(const ModelSpec& m, int64_t ffn) {
  return Mul(Gated(m) ? 3 : 2, m.hidden, ffn);
}

// A dense MLP of width `ffn`, split over `split` ranks; with linear biases,
// fc1's (2 * ffn when gated, split) and fc2's (h, replicated).
void AddMlp(const ModelSpec& m, int64_t ffn, int64_t split, const std::string& name,
            EntryList& out) {
  const int64_t w = MlpWeights(m, ffn);
  out.Add(name, w, w / split);
  if (m.linear_bias) {
    const int64_t in = Mul(Gated(m) ? 2 : 1, ffn);
    out.Add(name + "_bias_in", in, in / split);
    out.Add(name + "_bias_out", m.hidden, m.hidden);
  }
}

void AddMoe(const Config& c, EntryList& out) {
  const ModelSpec& m = c.model;
  const ParallelSpec& p = c.parallel;
  const bool paper_scope = c.conventions.zero_expert_scope == MOE_BLOCK;
  const ShardGroup shared_group = paper_scope ? ShardGroup::kExpert : ShardGroup::kDense;
  out.SetModule("moe", shared_group);
  const int64_t router = Mul(m.experts, m.hidden);
  out.Add("router", router, router);
  if (m.shared_experts > 0) {
    const int64_t split = c.conventions.shared_experts == TP_SPLIT ? p.tp : 1;
    AddMlp(m, m.shared_ffn, split, "shared_experts", out);
  }
  out.SetModule("moe", ShardGroup::kExpert);
  const int64_t one_expert = MlpWeights(m, m.moe_ffn);
  out.Add("routed_experts", Mul(m.experts, one_expert),
          Mul(m.experts / p.ep, one_expert / p.etp));
  if (m.linear_bias) {
    const int64_t in = Mul(Gated(m) ? 2 : 1, m.moe_ffn);
    out.Add("routed_experts_bias", Mul(m.experts, Add(in, m.hidden)),
            Mul(m.experts / p.ep, Add(in / p.etp, m.hidden)));
  }
}

void AddDecoderLayer(const Config& c, bool moe, EntryList& out, const std::string& norm_module) {
  const ModelSpec& m = c.model;
  out.AddTo(norm_module, "attention", NormParams(m, m.hidden), NormParams(m, m.hidden),
            ShardGroup::kDense);
  AddAttention(c, out);
  out.AddTo(norm_module, moe ? "moe" : "mlp", NormParams(m, m.hidden), NormParams(m, m.hidden),
            ShardGroup::kDense);
  if (moe) {
    AddMoe(c, out);
  } else {
    out.SetModule("mlp", ShardGroup::kDense);
    AddMlp(m, m.ffn, c.parallel.tp, "w", out);
  }
}

}  // namespace

int64_t PaddedVocab(const Config& c) {
  const int64_t multiple = Mul(c.model.vocab_multiple, c.parallel.tp);
  return Mul(CeilDiv(c.model.vocab, multiple), multiple);
}

namespace {

int64_t PaddedVocabPerRank(const Config& c) { return PaddedVocab(c) / c.parallel.tp; }

// The embedding's tables on one device: the word table (vocabulary split
// over TP) and a learned position table (replicated).
void AddEmbeddingTables(const Config& c, const std::string& word, EntryList& out) {
  const ModelSpec& m = c.model;
  out.AddTo("embedding", word, Mul(m.vocab, m.hidden), Mul(PaddedVocabPerRank(c), m.hidden),
            ShardGroup::kDense);
  if (m.position == LEARNED_ABSOLUTE) {
    const int64_t table = Mul(m.max_positions, m.hidden);
    out.AddTo("embedding", word == "word" ? "position" : word + "_position", table, table,
              ShardGroup::kDense);
  }
}

// True when every rank that runs `stage` also runs a stage holding `kind`:
// such a rank has that matrix already and needs no copy.
bool EveryRankHolds(const Config& c, const Stage& stage, SlotKind kind) {
  bool placed = false;
  for (const auto& stages : c.layout.rank_stages) {
    if (std::find(stages.begin(), stages.end(), stage.stage) == stages.end()) continue;
    placed = true;
    bool holds = false;
    for (int64_t other : stages) holds |= c.layout.stages[other].Has(kind);
    if (!holds) return false;
  }
  return placed ? true : stage.Has(kind);
}

// A stage's copy of matrices another stage owns (the embedding an MTP stage
// keeps, a tied head's copy of the embedding): on the device, but not new
// parameters of the model.
bool IsSharedCopy(const ParamEntry& e) {
  return e.matrix.starts_with("embedding.mtp_copy") || e.matrix == "head.tied_copy";
}

}  // namespace

std::vector<ParamEntry> SlotParams(const Config& c, const Stage& stage, const Slot& slot) {
  const ModelSpec& m = c.model;
  const int64_t vocab_device = Mul(PaddedVocabPerRank(c), m.hidden);
  EntryList out("embedding", ShardGroup::kDense);
  switch (slot.kind) {
    case SlotKind::kEmbedding:
      AddEmbeddingTables(c, "word", out);
      break;
    case SlotKind::kDecoder:
      AddDecoderLayer(c, m.IsMoeLayer(slot.index), out, "norms");
      break;
    case SlotKind::kMtp: {
      // Projection [h, 2h] (column-parallel), norms of the embedding and the
      // hidden state, one transformer layer, a final norm. The embedding and
      // head are shared with the main model; a stage holding MTP without the
      // embedding keeps its own copy of the embedding (counted there).
      out.SetModule("mtp", ShardGroup::kDense);
      const int64_t proj = Mul(2, m.hidden, m.hidden);
      out.Add("eh_proj", proj, proj / c.parallel.tp);
      out.Add("enorm", NormParams(m, m.hidden), NormParams(m, m.hidden));
      out.Add("hnorm", NormParams(m, m.hidden), NormParams(m, m.hidden));
      EntryList layer("mtp", ShardGroup::kDense);
      AddDecoderLayer(c, m.experts > 0, layer, "mtp");
      for (ParamEntry& e : layer.entries()) {
        // Keep the ZeRO group, file everything under the mtp module.
        e.matrix = "mtp." + e.matrix;
        e.module = "mtp";
        out.entries().push_back(e);
      }
      out.SetModule("mtp", ShardGroup::kDense);
      out.Add("final_norm", NormParams(m, m.hidden), NormParams(m, m.hidden));
      // With tied embeddings a stage that also holds the loss already keeps
      // the head's copy of the embedding, which the MTP module shares.
      const bool shared_with_head = m.tie_embeddings && EveryRankHolds(c, stage, SlotKind::kLoss);
      if (slot.index == 0 && !EveryRankHolds(c, stage, SlotKind::kEmbedding) &&
          !shared_with_head) {
        AddEmbeddingTables(c, "mtp_copy", out);
      }
      break;
    }
    case SlotKind::kLoss:
      out.AddTo("norms", "final", NormParams(m, m.hidden), NormParams(m, m.hidden),
                ShardGroup::kDense);
      if (!m.tie_embeddings) {
        out.AddTo("head", "output", Mul(m.vocab, m.hidden), vocab_device, ShardGroup::kDense);
      } else if (!EveryRankHolds(c, stage, SlotKind::kEmbedding)) {
        // Tied embeddings on another rank: this stage keeps a copy.
        out.AddTo("head", "tied_copy", Mul(m.vocab, m.hidden), vocab_device,
                  ShardGroup::kDense);
      }
      break;
  }
  return std::move(out.entries());
}

StatusOr<ModelParams> CountParams(const Config& c) {
  try {
    ModelParams result;
    for (const Stage& stage : c.layout.stages) {
      StageParams sp;
      sp.stage = stage.stage;
      sp.pp_rank = stage.pp_rank;
      sp.chunk = stage.chunk;
      sp.describe = stage.Describe();
      for (const Slot& slot : stage.slots) {
        const char* kind = "";
        switch (slot.kind) {
          case SlotKind::kEmbedding: kind = "embedding"; break;
          case SlotKind::kLoss: kind = "loss"; break;
          case SlotKind::kMtp: kind = "mtp_module"; break;
          case SlotKind::kDecoder:
            kind = c.model.IsMoeLayer(slot.index) ? "moe_layer" : "dense_layer";
            break;
        }
        int64_t slot_whole = 0;
        for (const ParamEntry& e : SlotParams(c, stage, slot)) {
          const bool shared_copy = IsSharedCopy(e);
          if (!shared_copy) slot_whole = Add(slot_whole, e.whole);
        }
        result.per_slot_kind.try_emplace(kind, slot_whole);
        for (const ParamEntry& e : SlotParams(c, stage, slot)) {
          sp.whole = Add(sp.whole, e.whole);
          sp.device = Add(sp.device, e.device);
          (e.group == ShardGroup::kExpert ? sp.device_expert : sp.device_dense) =
              Add(e.group == ShardGroup::kExpert ? sp.device_expert : sp.device_dense,
                  e.device);
          sp.modules[e.module] = Add(sp.modules[e.module], e.device);
          sp.matrices[e.matrix] = Add(sp.matrices[e.matrix], e.device);
          if (IsSharedCopy(e)) continue;
          if (slot.kind == SlotKind::kMtp) {
            result.mtp = Add(result.mtp, e.whole);
          } else {
            result.total = Add(result.total, e.whole);
          }
        }
      }
      result.stages.push_back(std::move(sp));
    }
    return result;
  } catch (const Overflow&) {
    return Status::Invalid(
        "model: parameter counts overflow 64-bit integers; the model sizes are too large");
  }
}

}  // namespace stepsim::graph
