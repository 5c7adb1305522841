#include "graph/activations.h"

#include "graph/checked.h"

namespace stepsim::graph {

int64_t PeakOver(const StageDag& dag, const std::vector<int>& order, int64_t start,
                 std::string* peak_op) {
  int64_t live = start, peak = start;
  for (int o : order) {
    for (const TensorEvent& e : dag.ops[o].events) {
      const int64_t bytes = dag.tensors[e.tensor].bytes;
      live = e.allocate ? Add(live, bytes) : live - bytes;
      if (live > peak) {
        peak = live;
        if (peak_op != nullptr) {
          *peak_op = std::string(OpKindName(dag.ops[o].kind)) + " " + dag.ops[o].name;
        }
      }
    }
  }
  return peak;
}

StatusOr<std::vector<StageActivations>> ComputeActivations(const Config& c) {
  std::vector<StageActivations> out;
  try {
    for (const Stage& stage : c.layout.stages) {
      StatusOr<StageDag> dag = BuildStageDag(c, stage);
      if (!dag.ok()) return dag.status();
      StageActivations a;
      a.stage = stage.stage;
      a.pp_rank = stage.pp_rank;
      a.chunk = stage.chunk;
      a.layers = stage.Describe();
      for (int o : dag->forward) {
        const Op& op = dag->ops[o];
        for (const TensorEvent& e : op.events) {
          const Tensor& t = dag->tensors[e.tensor];
          if (!e.allocate || t.category != Category::kActivations) continue;
          a.per_microbatch_bytes = Add(a.per_microbatch_bytes, t.bytes);
          a.modules[op.module] = Add(a.modules[op.module], t.bytes);
          a.ops[op.name] = Add(a.ops[op.name], t.bytes);
        }
      }
      a.forward_peak_bytes = PeakOver(*dag, dag->forward, 0, &a.forward_peak_op);
      a.backward_peak_bytes =
          PeakOver(*dag, dag->backward_fused, a.per_microbatch_bytes, &a.backward_peak_op);
      for (const Op& op : dag->ops) {
        switch (op.kind) {
          case OpKind::kForward:
          case OpKind::kComm: a.forward_flops += op.flops; break;
          case OpKind::kBackwardInput:
          case OpKind::kRecompute: a.backward_flops += op.flops; break;
          case OpKind::kBackwardWeight: a.weight_flops += op.flops; break;
        }
      }
      int64_t recompute = 0;
      for (int o : dag->backward_fused) {
        for (const TensorEvent& e : dag->ops[o].events) {
          const Tensor& t = dag->tensors[e.tensor];
          if (t.category != Category::kRecompute) continue;
          recompute = e.allocate ? Add(recompute, t.bytes) : recompute - t.bytes;
          a.recompute_peak_bytes = std::max(a.recompute_peak_bytes, recompute);
        }
      }
      out.push_back(std::move(a));
    }
  } catch (const Overflow&) {
    return Status::Invalid("model: activation sizes overflow 64-bit byte counts");
  }
  return out;
}

StatusOr<ActivationsReport> BuildActivationsReport(const Config& c) {
  StatusOr<std::vector<StageActivations>> stages = ComputeActivations(c);
  if (!stages.ok()) return stages.status();
  ActivationsReport r;
  r.set_scenario(c.name);
  r.set_model(c.model.name);
  r.set_micro_batch_size(c.batch.micro_batch_size);
  r.set_seq_len(c.batch.seq_len);
  std::string recompute = RecomputePolicy_Name(c.recompute.policy);
  if (c.recompute.policy == SELECTIVE) {
    std::string modules;
    for (const std::string& m : c.recompute.modules) modules += (modules.empty() ? "" : ",") + m;
    recompute += "(" + modules + ")";
  }
  r.set_recompute(recompute);
  r.set_attention(AttentionImpl_Name(c.conventions.attention));
  r.set_moe_tokens(MoeTokens_Name(c.conventions.moe_tokens));
  for (const StageActivations& a : *stages) {
    StageActivationsReport* s = r.add_stages();
    s->set_stage(a.stage);
    s->set_pp_rank(a.pp_rank);
    s->set_chunk(a.chunk);
    s->set_layers(a.layers);
    s->set_per_microbatch_bytes(a.per_microbatch_bytes);
    for (const auto& [k, v] : a.modules) (*s->mutable_modules())[k] = v;
    for (const auto& [k, v] : a.ops) (*s->mutable_ops())[k] = v;
    s->set_forward_peak_bytes(a.forward_peak_bytes);
    s->set_forward_peak_op(a.forward_peak_op);
    s->set_backward_peak_bytes(a.backward_peak_bytes);
    s->set_backward_peak_op(a.backward_peak_op);
    s->set_recompute_peak_bytes(a.recompute_peak_bytes);
    s->set_forward_flops(a.forward_flops);
    s->set_backward_flops(a.backward_flops);
    s->set_weight_flops(a.weight_flops);
  }
  return r;
}

}  // namespace stepsim::graph
