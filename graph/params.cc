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
    out.SetModule("attention", ShardGroup::kDense);
    const int64_t qkv = Mul(3, h, h), o = Mul(h, h);
    out.Add("w_qkv", qkv, qkv / tp);
    out.Add("w_o", o, o / tp);
    if (m.linear_bias) {
      out.Add("b_qkv", Mul(3, h), Mul(3, h) / tp);
      out.Add("b_o", h, h);
    }
    return;
  }
  out.SetModule("mla", ShardGroup::kDense);
  const int64_t dh = m.nope_dim, dhr = m.rope_dim, dcq = m.q_lora, dc = m.kv_lora;
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
                w_uv = Mul(nh, dh, dc), w_o = Mul(h, nh, dh);
  out.Add("w_dkv", w_dkv, w_dkv);
  out.Add("w_kr", w_kr, w_kr);
  out.Add("w_uk", w_uk, w_uk / tp);
  out.Add("w_uv", w_uv, w_uv / tp);
  out.Add("w_o", w_o, w_o / tp);
  if (dcq > 0) {
    out.AddTo("norms", "q_latent", NormParams(m, dcq), NormParams(m, dcq), ShardGroup::kDense);
  }
  out.AddTo("norms", "kv_latent", NormParams(m, dc), NormParams(m, dc), ShardGroup::kDense);
}

// A dense MLP of width `ffn`, split over `split` ranks.
void AddMlp(const ModelSpec& m, int64_t ffn, int64_t split, const std::string& name,
            EntryList& out) {
  const int64_t h = m.hidden;
  if (m.activation == SWIGLU) {
    const int64_t w = Mul(3, h, ffn);
    out.Add(name, w, w / split);
  } else {
    const int64_t w = Mul(2, h, ffn);
    out.Add(name, w, w / split);
  }
  if (m.linear_bias) {
    out.Add(name + "_bias_in", ffn, ffn / split);
    out.Add(name + "_bias_out", h, h);
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
  const int64_t one_expert = Mul(3, m.hidden, m.moe_ffn);
  if (m.shared_experts > 0) {
    const int64_t shared = Mul(m.shared_experts, one_expert);
    out.Add("shared_experts", shared,
            c.conventions.shared_experts == TP_SPLIT ? shared / p.tp : shared);
  }
  out.SetModule("moe", ShardGroup::kExpert);
  out.Add("routed_experts", Mul(m.experts, one_expert),
          Mul(m.experts / p.ep, one_expert / p.etp));
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

int64_t PaddedVocabPerRank(const Config& c) { return CeilDiv(c.model.vocab, c.parallel.tp); }

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

}  // namespace

std::vector<ParamEntry> SlotParams(const Config& c, const Stage& stage, const Slot& slot) {
  const ModelSpec& m = c.model;
  const int64_t vocab_device = Mul(PaddedVocabPerRank(c), m.hidden);
  EntryList out("embedding", ShardGroup::kDense);
  switch (slot.kind) {
    case SlotKind::kEmbedding:
      out.Add("word", Mul(m.vocab, m.hidden), vocab_device);
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
        out.AddTo("embedding", "mtp_copy", Mul(m.vocab, m.hidden), vocab_device,
                  ShardGroup::kDense);
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
          const bool shared_copy =
              e.matrix == "embedding.mtp_copy" || e.matrix == "head.tied_copy";
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
          const bool copy = e.matrix == "embedding.mtp_copy" || e.matrix == "head.tied_copy";
          if (copy) continue;
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
