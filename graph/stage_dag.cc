#include "graph/stage_dag.h"

#include <boost/graph/graphviz.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "graph/checked.h"
#include "graph/fp8.h"
#include "graph/layer_ops.h"
#include "graph/profile.h"

namespace stepsim::graph {
namespace {

// Selective modules from the broadest to the narrowest: a tensor discarded
// by several selected modules is recomputed with the broadest one.
const std::vector<std::string>& ModulesByScope() {
  static const std::vector<std::string> order = {
      "moe", "mlp", "shared_experts", "core_attn", "mla_up_proj", "moe_act", "layernorm"};
  return order;
}

std::string LayerPrefix(const OpSpec& op) { return op.name.substr(0, op.name.find('.')); }

// Which recompute group (if any) discards `keep` of `op`; "" keeps it.
std::string RecomputeGroup(const Config& c, const OpSpec& op, const Keep& keep,
                           const std::vector<std::string>& fully_recomputed_units) {
  const RecomputeSpec& r = c.recompute;
  if (std::find(keep.selective.begin(), keep.selective.end(), kFp8SwigluRecompute) !=
          keep.selective.end() &&
      !(r.policy == FULL && !op.unit.empty())) {
    return LayerPrefix(op) + "." + kFp8SwigluRecompute;
  }
  if (r.policy == FULL) {
    if (op.unit.empty() || keep.checkpoint || keep.checkpoint_only) return "";
    const bool selected = std::find(fully_recomputed_units.begin(), fully_recomputed_units.end(),
                                    op.unit) != fully_recomputed_units.end();
    return selected ? op.unit : "";
  }
  if (r.policy == SELECTIVE) {
    for (const std::string& module : ModulesByScope()) {
      if (!r.Selects(module)) continue;
      if (std::find(keep.selective.begin(), keep.selective.end(), module) !=
          keep.selective.end()) {
        return LayerPrefix(op) + "." + module;
      }
    }
  }
  return "";
}

// The full-recompute units of the stage: every unit (UNIFORM) or those of
// the first num_layers layers (BLOCK).
std::vector<std::string> FullyRecomputedUnits(const Config& c, const std::vector<OpSpec>& ops) {
  std::vector<std::string> units;
  std::vector<int64_t> layers;
  for (const OpSpec& op : ops) {
    if (op.unit.empty()) continue;
    if (std::find(layers.begin(), layers.end(), op.layer) == layers.end()) {
      layers.push_back(op.layer);
    }
    const int64_t position = static_cast<int64_t>(
        std::find(layers.begin(), layers.end(), op.layer) - layers.begin());
    if (c.recompute.method == BLOCK && position >= c.recompute.num_layers) continue;
    if (std::find(units.begin(), units.end(), op.unit) == units.end()) units.push_back(op.unit);
  }
  return units;
}

// Whether a checkpoint holds `op`'s checkpoint_only tensors: its unit is
// fully recomputed, or, outside every unit, any unit of the stage is.
bool Checkpointed(const Config& c, const OpSpec& op, const std::vector<std::string>& units) {
  if (c.recompute.policy != FULL) return false;
  if (op.unit.empty()) return !units.empty();
  return std::find(units.begin(), units.end(), op.unit) != units.end();
}

class DagBuilder {
 public:
  explicit DagBuilder(StageDag* dag) : dag_(dag) {}

  int NewTensor(std::string name, int64_t bytes, Category category) {
    dag_->tensors.push_back({std::move(name), bytes, category});
    return static_cast<int>(dag_->tensors.size()) - 1;
  }
  int NewOp(std::string name, const OpSpec& spec, OpKind kind) {
    Op op;
    op.name = std::move(name);
    op.module = spec.module;
    op.kind = kind;
    op.layer = spec.layer;
    dag_->ops.push_back(std::move(op));
    boost::add_vertex(dag_->graph);
    return static_cast<int>(dag_->ops.size()) - 1;
  }
  void Alloc(int op, int tensor) { dag_->ops[op].events.push_back({true, tensor}); }
  void Free(int op, int tensor) { dag_->ops[op].events.push_back({false, tensor}); }
  void Edge(int from, int to) {
    if (from >= 0 && to >= 0 && from != to) boost::add_edge(from, to, dag_->graph);
  }

 private:
  StageDag* dag_;
};

// One kept tensor as the forward or a recompute op materialises it.
struct KeptTensor {
  int tensor;
  bool weight_grad;
};

// Whether a split W step computes this op's weight gradient from state its
// B leaves behind (the GEMM input and the output gradient), or B computes it
// itself. The frameworks that split B from W defer GEMMs only:
// - sail-sg/zero-bubble-pipeline-parallelism, megatron/core/tensor_parallel/
//   layers.py LinearWithGradAccumulationAndAsyncCommunication.backward:
//   WeightGradStore.put(weight, partial(pre_process, grad_output, input), ...)
//   for the Column/RowParallelLinear GEMMs (the un-gathered input: W gathers
//   it again under sequence parallelism); norms, the router and the embedding
//   get their weight gradients from plain autograd in B;
// - Transformer Engine (Megatron's --delay-wgrad-compute), module/linear.py
//   _Linear.backward, layernorm_linear.py, layernorm_mlp.py and
//   grouped_linear.py: wgrad_store.put([input, grad_output], wgrad_gemm); the
//   norm's dgamma comes with its dgrad in B;
// - deepseek-ai/DualPipe, examples/example_dualpipe.py LinearFunc.backward:
//   WeightGradStore.put(grad_weight_fn) closes over input and grad_output.
// An op offering a GEMM input (an offer with an inner width) is a GEMM; so is
// an op whose profile keeps a tensor for its weight gradient.
// The output gradient of FP8 GEMM `s` as B quantizes it for W (graph/fp8.h
// Fp8OutputGradBytes): [rows, output elements / rows].
int64_t QuantizedOutputGradBytes(const Config& c, const OpSpec& s) {
  const int64_t elements = s.output_bytes / c.precision.activation;
  return Fp8OutputGradBytes(c.precision.fp8, s.fp8_gemm_rows, CeilDiv(elements, s.fp8_gemm_rows),
                            c.hardware.compute_capability);
}

bool DefersWeightGrad(const OpSpec& s, const std::vector<KeptTensor>& kept) {
  for (const OpSpec::Offer& o : s.offers) {
    if (o.width > 0) return true;
  }
  for (const KeptTensor& k : kept) {
    if (k.weight_grad) return true;
  }
  return false;
}

}  // namespace

StatusOr<StageDag> BuildStageDag(const Config& c, const Stage& stage) {
  StageDag dag;
  dag.stage = stage.stage;
  try {
    const std::vector<OpSpec> specs = StageOps(c, stage);
    const int n = static_cast<int>(specs.size());
    if (n == 0) return dag;  // an empty stage passes activations through
    const std::vector<std::string> units = FullyRecomputedUnits(c, specs);
    DagBuilder b(&dag);

    // Recompute groups: their tensors, and the op whose backward needs them first.
    struct Group {
      std::vector<std::pair<int, const Keep*>> keeps;  // (op index, keep)
      int trigger = -1;                                // latest op in forward order
      double flops = 0;
      std::vector<int> ops;
    };
    std::map<std::string, Group> groups;
    std::vector<std::string> group_order;

    // Under full recomputation a unit is recomputed before any of its backward.
    std::map<std::string, int> unit_last;
    for (int i = 0; i < n; ++i) {
      if (!specs[i].unit.empty()) unit_last[specs[i].unit] = i;
    }
    std::vector<std::vector<KeptTensor>> kept(n);
    const ProfileTable& table = GetProfile(c.conventions.profile).table();
    const bool outputs_live = table.outputs_live_until_consumed();
    // PyTorch's split backward keeps the autograd graph from B to W, with
    // every tensor it saved, from the stage's first op to its last op with
    // weights: the ops after it (the loss) hang from the stage output only,
    // which stage_backward_input detaches, so they go with B
    // (torch/distributed/pipelining/_backward.py stage_backward_input:
    // torch.autograd.grad(..., retain_graph=True), then t.detach_() of the
    // outputs; the param groups' intermediates keep the graph below them).
    const bool retains_graph = table.split_backward_retains_graph();
    // Every stage but the pipeline's last receives its output gradient.
    const bool receives_gradient =
        stage.stage + 1 < static_cast<int64_t>(c.layout.stages.size());
    int last_weighted = -1;
    for (int i = 0; i < n; ++i) {
      if (specs[i].has_weights) last_weighted = i;
    }
    std::vector<int> retained, retain_ops;  // tensors the retained graph keeps, their ops
    int pending_out = -1;
    std::vector<int> until_end;  // forward workspaces freed after the last forward op
    std::vector<int> fwd(n), bwd(n), wgt(n, -1), dy(n, -1);

    // Forward.
    for (int i = 0; i < n; ++i) {
      const OpSpec& s = specs[i];
      fwd[i] = b.NewOp(s.name, s, s.collective ? OpKind::kComm : OpKind::kForward);
      Op& op = dag.ops[fwd[i]];
      op.flops = s.flops;
      op.comm_bytes = s.comm_bytes;
      op.tp_comm_bytes = s.ep_buffer ? 0 : static_cast<double>(s.comm_buffer_bytes);
      double moved = static_cast<double>(s.output_bytes);
      const bool checkpointed = Checkpointed(c, s, units);
      for (const Keep& k : s.keeps) {
        if (k.checkpoint_only && !checkpointed) continue;
        const std::string group = RecomputeGroup(c, s, k, units);
        if (!group.empty()) {
          Group& g = groups[group];
          if (g.keeps.empty()) group_order.push_back(group);
          g.keeps.emplace_back(i, &k);
          g.trigger = std::max(g.trigger, c.recompute.policy == FULL ? unit_last[s.unit] : i);
          if (std::find(g.ops.begin(), g.ops.end(), i) == g.ops.end()) {
            g.ops.push_back(i);
            g.flops += s.flops;
          }
          continue;
        }
        const int t = b.NewTensor(s.name + "." + k.name, k.bytes, Category::kActivations);
        b.Alloc(fwd[i], t);
        kept[i].push_back({t, k.weight_grad});
        moved += static_cast<double>(k.bytes);
      }
      dag.ops[fwd[i]].bytes_moved = moved;
      // Every allocation of an op comes before its frees: a gather buffer
      // and the output are live together while the op runs.
      int comm = -1;
      if (s.ep_buffer && s.comm_buffer_bytes > 0) {
        // An EP all-to-all: the input's permuted (or sorted) copy is sent,
        // so the input goes once copied; the received rows outlive the
        // send buffer until the output is made from them.
        const int send = b.NewTensor(s.name + ".send", s.send_bytes, Category::kComm);
        comm = b.NewTensor(s.name + ".recv", s.receive_bytes, Category::kComm);
        b.Alloc(fwd[i], send);
        if (pending_out >= 0) b.Free(fwd[i], pending_out);
        pending_out = -1;
        b.Alloc(fwd[i], comm);
        b.Free(fwd[i], send);
      } else if (s.comm_buffer_bytes > 0) {
        comm = b.NewTensor(s.name + ".comm", s.comm_buffer_bytes, Category::kComm);
        b.Alloc(fwd[i], comm);
      }
      const int out = s.output_bytes > 0
                          ? b.NewTensor(s.name + ".out", s.output_bytes, Category::kWorkspace)
                          : -1;
      if (out >= 0) b.Alloc(fwd[i], out);
      // The profile's forward workspaces: freed with the op, or after the
      // stage's last forward op (a mask every layer reads).
      std::vector<int> scratch;
      for (const Keep& w : s.forward_workspace) {
        if (w.unless_checkpointed && checkpointed) continue;  // kept instead
        const int t = b.NewTensor(s.name + "." + w.name, w.bytes, Category::kWorkspace);
        b.Alloc(fwd[i], t);
        (w.until_forward_end ? until_end : scratch).push_back(t);
      }
      for (int t : scratch) b.Free(fwd[i], t);
      if (i + 1 == n) {
        for (int t : until_end) b.Free(fwd[i], t);
      }
      if (comm >= 0) b.Free(fwd[i], comm);
      // The previous op's output is this op's input: under the profile's
      // rule it lives until this op has run.
      if (pending_out >= 0) b.Free(fwd[i], pending_out);
      pending_out = -1;
      if (out >= 0) {
        if (outputs_live && i + 1 < n) {
          pending_out = out;
        } else {
          b.Free(fwd[i], out);
        }
      }
      if (i > 0) b.Edge(fwd[i - 1], fwd[i]);
      dag.forward.push_back(fwd[i]);
    }
    dag.output_bytes = specs.back().output_bytes;
    dag.input_grad_bytes = specs.front().input_grad_bytes;

    // Backward, last op first: recompute groups triggered here, B, then W.
    int previous = fwd[n - 1];
    for (int i = n - 1; i >= 0; --i) {
      const OpSpec& s = specs[i];
      for (const std::string& name : group_order) {
        Group& g = groups[name];
        if (g.trigger != i) continue;
        const int r = b.NewOp("R:" + name, s, OpKind::kRecompute);
        dag.ops[r].flops = g.flops;
        dag.ops[r].module = specs[g.trigger].module;
        for (const auto& [op_index, keep] : g.keeps) {
          const int t = b.NewTensor(specs[op_index].name + "." + keep->name, keep->bytes,
                                    Category::kRecompute);
          b.Alloc(r, t);
          kept[op_index].push_back({t, keep->weight_grad});
          dag.ops[r].bytes_moved += static_cast<double>(keep->bytes);
        }
        for (int op_index : g.ops) b.Edge(fwd[op_index], r);
        b.Edge(previous, r);
        previous = r;
        dag.backward.push_back(r);
        dag.backward_fused.push_back(r);
      }
      if (!s.backward_workspace.empty()) {
        // The profile's backward workspaces (e.g. an eager loss's FP32
        // gradients) exist before the input gradient is produced: an op of
        // their own, ahead of the B op, so the two never add up.
        // A workspace that replaces the output gradient (an eager cast's
        // backward) is made by an op of its own, which releases the
        // gradient at its end; the rest come after it.
        auto workspace_op = [&]() {
          const int w = b.NewOp(s.name, s, OpKind::kBackwardInput);
          b.Edge(previous, w);
          b.Edge(fwd[i], w);
          previous = w;
          dag.backward.push_back(w);
          dag.backward_fused.push_back(w);
          return w;
        };
        int w = workspace_op();
        std::vector<int> scratch;
        for (const Keep& k : s.backward_workspace) {
          scratch.push_back(b.NewTensor(s.name + ".grad_" + k.name, k.bytes, Category::kWorkspace));
          b.Alloc(w, scratch.back());
          dag.ops[w].bytes_moved += static_cast<double>(k.bytes);
          if (k.consumes_output_grad && dy[i] >= 0) {
            b.Free(w, dy[i]);
            dy[i] = -1;
            w = workspace_op();
          }
        }
        for (int t : scratch) b.Free(w, t);
      }
      bwd[i] = b.NewOp(s.name, s, OpKind::kBackwardInput);
      Op& bop = dag.ops[bwd[i]];
      bop.flops = s.backward_flops;
      bop.comm_bytes = s.comm_bytes;
      bop.tp_comm_bytes = s.ep_buffer ? 0 : static_cast<double>(s.comm_buffer_bytes);
      bop.bytes_moved = static_cast<double>(s.input_grad_bytes);
      b.Edge(previous, bwd[i]);
      b.Edge(fwd[i], bwd[i]);
      previous = bwd[i];
      int grad_recv = -1;
      if (s.ep_buffer && s.comm_buffer_bytes > 0) {
        // The all-to-all backward: the output gradient's permuted copy is
        // sent, the received rows become the input gradient.
        const int send = b.NewTensor(s.name + ".grad_send", s.grad_send_bytes, Category::kComm);
        grad_recv = b.NewTensor(s.name + ".grad_recv", s.grad_receive_bytes, Category::kComm);
        b.Alloc(bwd[i], send);
        if (dy[i] >= 0) b.Free(bwd[i], dy[i]);
        dy[i] = -1;
        b.Alloc(bwd[i], grad_recv);
        b.Free(bwd[i], send);
      }
      // dX of op i is dY of op i - 1; op 0's goes to the previous stage.
      if (i > 0 && s.input_grad_bytes > 0) {
        dy[i - 1] = b.NewTensor(s.name + ".grad_input", s.input_grad_bytes,
                                Category::kWorkspace);
        b.Alloc(bwd[i], dy[i - 1]);
      }
      if (grad_recv >= 0) {
        b.Free(bwd[i], grad_recv);
      } else if (s.comm_buffer_bytes > 0) {
        const int t = b.NewTensor(s.name + ".grad_comm", s.comm_buffer_bytes, Category::kComm);
        b.Alloc(bwd[i], t);
        b.Free(bwd[i], t);
      }

      // Whether W runs on its own with state B leaves it (see DefersWeightGrad).
      // Under a retained graph every op with weights hands W its output
      // gradient: the hooks on the param groups' intermediates capture it
      // (stage_backward_input's get_hook), norms included.
      const bool deferred = s.has_weights && (retains_graph || DefersWeightGrad(s, kept[i]));
      int64_t released = 0;  // what B frees that a retained graph keeps until W
      for (const KeptTensor& k : kept[i]) {
        if (k.weight_grad && deferred) continue;
        b.Free(bwd[i], k.tensor);
        released = Add(released, dag.tensors[k.tensor].bytes);
      }
      if (dy[i] >= 0 && !deferred) {
        b.Free(bwd[i], dy[i]);
        dy[i] = -1;
      }
      if (deferred && dy[i] < 0 && i + 1 == n && receives_gradient) {
        // The stage's last op reads the gradient received from the next
        // stage, the engine's buffer: W needs it too. Under FP8 W holds
        // the copy B quantizes (as below); else the engine keeps the
        // received buffer until this micro-batch's W has run.
        if (s.fp8_gemm_rows > 0 && s.output_bytes > 0) {
          const int q = b.NewTensor(s.name + ".grad_output_fp8", QuantizedOutputGradBytes(c, s),
                                    Category::kOutputGrads);
          b.Alloc(bwd[i], q);
          dy[i] = q;
        } else {
          dag.weight_reads_received_gradient = true;
        }
      } else if (dy[i] >= 0) {
        // W reads this op's own output gradient (category output_grads). The
        // chain hands B the next op's input gradient, which differs beside a
        // branch (shared experts, the query and key-value paths): B frees it
        // and W holds the op's own size. An FP8 GEMM's B quantizes the
        // gradient for the weight-gradient GEMM, and W holds only the
        // quantized copy (Transformer Engine linear.py _Linear.backward:
        // grad_output through grad_output_quantizer, columnwise, into
        // wgrad_store.put([inputmat_total, grad_output], wgrad_gemm)).
        const bool fp8 = s.fp8_gemm_rows > 0 && s.output_bytes > 0;
        int64_t held = s.output_bytes > 0 ? s.output_bytes : dag.tensors[dy[i]].bytes;
        if (fp8) held = QuantizedOutputGradBytes(c, s);
        if (fp8 || held != dag.tensors[dy[i]].bytes) {
          const int q = b.NewTensor(s.name + (fp8 ? ".grad_output_fp8" : ".grad_output"), held,
                                    Category::kOutputGrads);
          if (fp8) b.Alloc(bwd[i], q);  // quantized from the BF16 gradient
          b.Free(bwd[i], dy[i]);
          if (!fp8) b.Alloc(bwd[i], q);  // the same gradient, at its own size
          dy[i] = q;
        } else {
          // The chain's tensor is the gradient W reads: it is one, from the
          // B that makes it to this op's W.
          dag.tensors[dy[i]].category = Category::kOutputGrads;
        }
      }
      dag.backward.push_back(bwd[i]);
      dag.backward_fused.push_back(bwd[i]);
      if (retains_graph && i <= last_weighted && released > 0) {
        // In the split order only: what B_i freed stays, as one tensor,
        // until the stage's W ends (the fused order, one backward call,
        // frees it with B_i).
        const int r = b.NewOp(s.name + ".retained", s, OpKind::kBackwardInput);
        retained.push_back(b.NewTensor(s.name + ".retained", released, Category::kActivations));
        b.Alloc(r, retained.back());
        b.Edge(bwd[i], r);
        retain_ops.push_back(r);
        dag.backward.push_back(r);
      }
      if (s.has_weights) {
        wgt[i] = b.NewOp(s.name, s, OpKind::kBackwardWeight);
        dag.ops[wgt[i]].flops = s.weight_flops;
        for (const KeptTensor& k : kept[i]) {
          if (k.weight_grad && deferred) {
            b.Free(wgt[i], k.tensor);
            dag.ops[wgt[i]].bytes_moved += static_cast<double>(dag.tensors[k.tensor].bytes);
          }
        }
        if (dy[i] >= 0) b.Free(wgt[i], dy[i]);
        b.Edge(bwd[i], wgt[i]);
        b.Edge(fwd[i], wgt[i]);
        if (i + 1 < n) b.Edge(bwd[i + 1], wgt[i]);
        dag.weight.push_back(wgt[i]);
        dag.backward_fused.push_back(wgt[i]);
      }
    }
    if (!retained.empty()) {
      // The end of the split W: the graph goes with everything it kept
      // (stage_backward_weight drops the intermediates; stage.py
      // backward_weight_one_chunk pops the micro-batch's backward state).
      const int r = b.NewOp(kRetainedGraphOp, specs.front(), OpKind::kBackwardWeight);
      dag.ops[r].layer = -1;
      for (int t : retained) b.Free(r, t);
      for (int o : retain_ops) b.Edge(o, r);
      for (int o : dag.weight) b.Edge(o, r);
      dag.weight.push_back(r);
    }
  } catch (const Overflow&) {
    return Status::Invalid("model: activation sizes overflow 64-bit byte counts");
  } catch (const ProfileError& e) {
    return Status::Failed(e.what());
  }
  Status valid = ValidateDag(dag);
  if (!valid.ok()) return Status::Failed("stage " + std::to_string(stage.stage) +
                                         " DAG is invalid (a stepsim bug):\n" + valid.message());
  return dag;
}

namespace {

// Depth-first search for a cycle; returns its vertices in order, or empty.
std::vector<int> FindCycle(const OpGraph& g) {
  const int n = static_cast<int>(boost::num_vertices(g));
  std::vector<int> color(n, 0), parent(n, -1);
  for (int root = 0; root < n; ++root) {
    if (color[root] != 0) continue;
    std::vector<std::pair<int, OpGraph::out_edge_iterator>> stack;
    auto [begin, end] = boost::out_edges(root, g);
    stack.push_back({root, begin});
    color[root] = 1;
    while (!stack.empty()) {
      auto& [v, it] = stack.back();
      auto [_, v_end] = boost::out_edges(v, g);
      if (it == v_end) {
        color[v] = 2;
        stack.pop_back();
        continue;
      }
      const int w = static_cast<int>(boost::target(*it, g));
      ++it;
      if (color[w] == 1) {
        std::vector<int> cycle = {w};
        for (int x = v; x != w; x = parent[x]) cycle.push_back(x);
        cycle.push_back(w);
        std::reverse(cycle.begin(), cycle.end());
        return cycle;
      }
      if (color[w] == 0) {
        color[w] = 1;
        parent[w] = v;
        stack.push_back({w, boost::out_edges(w, g).first});
      }
    }
  }
  return {};
}

// For each query (from, to) of the acyclic graph g, whether a path leads
// from `from` to `to`. Sources go 64 at a time, as the bits of one word per
// vertex swept once in topological order: O((V + E) * sources / 64), where
// a search per query would cost O((V + E) * queries).
std::vector<bool> ReachesAll(const OpGraph& g, const std::vector<std::pair<int, int>>& queries) {
  const int n = static_cast<int>(boost::num_vertices(g));
  std::vector<int> indegree(n, 0), order;
  order.reserve(n);
  for (int v = 0; v < n; ++v) indegree[v] = static_cast<int>(boost::in_degree(v, g));
  for (int v = 0; v < n; ++v) {
    if (indegree[v] == 0) order.push_back(v);
  }
  for (size_t i = 0; i < order.size(); ++i) {
    for (auto [it, end] = boost::out_edges(order[i], g); it != end; ++it) {
      const int w = static_cast<int>(boost::target(*it, g));
      if (--indegree[w] == 0) order.push_back(w);
    }
  }
  std::vector<int> by_source(queries.size());
  for (size_t q = 0; q < queries.size(); ++q) by_source[q] = static_cast<int>(q);
  std::stable_sort(by_source.begin(), by_source.end(),
                   [&](int a, int b) { return queries[a].first < queries[b].first; });
  std::vector<bool> result(queries.size(), false);
  std::vector<uint64_t> mask(n);
  size_t next = 0;
  while (next < by_source.size()) {
    // The next batch: queries of up to 64 distinct sources.
    std::fill(mask.begin(), mask.end(), 0);
    size_t end = next;
    int bits = 0;
    std::vector<int> bit_of(by_source.size() - next);
    for (int last = -1; end < by_source.size(); ++end) {
      const int source = queries[by_source[end]].first;
      if (source != last) {
        if (bits == 64) break;
        mask[source] |= uint64_t{1} << bits;
        ++bits;
        last = source;
      }
      bit_of[end - next] = bits - 1;
    }
    for (const int v : order) {
      if (mask[v] == 0) continue;
      for (auto [it, e] = boost::out_edges(v, g); it != e; ++it) {
        mask[boost::target(*it, g)] |= mask[v];
      }
    }
    for (size_t k = next; k < end; ++k) {
      const auto& [from, to] = queries[by_source[k]];
      result[by_source[k]] = (mask[to] >> bit_of[k - next] & 1) != 0 && from != to;
    }
    next = end;
  }
  return result;
}

std::string OpLabel(const StageDag& dag, int op) {
  return std::string(OpKindName(dag.ops[op].kind)) + " " + dag.ops[op].name;
}

}  // namespace

Status ValidateDag(const StageDag& dag) {
  std::vector<std::string> problems;
  const std::vector<int> cycle = FindCycle(dag.graph);
  if (!cycle.empty()) {
    std::string text = "cycle: ";
    for (size_t i = 0; i < cycle.size(); ++i) {
      text += (i ? " -> " : "") + OpLabel(dag, cycle[i]);
    }
    problems.push_back(text);
  }
  const int nt = static_cast<int>(dag.tensors.size());
  std::vector<int> alloc_op(nt, -1), free_op(nt, -1), allocs(nt, 0), frees(nt, 0);
  std::vector<int> alloc_pos(nt, -1), free_pos(nt, -1);
  for (int o = 0; o < static_cast<int>(dag.ops.size()); ++o) {
    const auto& events = dag.ops[o].events;
    for (int e = 0; e < static_cast<int>(events.size()); ++e) {
      const int t = events[e].tensor;
      if (t < 0 || t >= nt) {
        problems.push_back(OpLabel(dag, o) + ": event on unknown tensor " + std::to_string(t));
        continue;
      }
      if (events[e].allocate) {
        ++allocs[t];
        alloc_op[t] = o;
        alloc_pos[t] = e;
      } else {
        ++frees[t];
        free_op[t] = o;
        free_pos[t] = e;
      }
    }
  }
  // Whether each tensor's free depends on its allocation, all at once.
  std::vector<std::pair<int, int>> queries;
  std::vector<int> query_of(nt, -1);
  if (cycle.empty()) {
    for (int t = 0; t < nt; ++t) {
      if (allocs[t] == 1 && frees[t] == 1 && alloc_op[t] != free_op[t]) {
        query_of[t] = static_cast<int>(queries.size());
        queries.emplace_back(alloc_op[t], free_op[t]);
      }
    }
  }
  const std::vector<bool> reaches = ReachesAll(dag.graph, queries);
  for (int t = 0; t < nt; ++t) {
    const Tensor& tensor = dag.tensors[t];
    if (allocs[t] != 1 || frees[t] != 1) {
      problems.push_back("tensor " + tensor.name + ": allocated " + std::to_string(allocs[t]) +
                         " and freed " + std::to_string(frees[t]) + " times (expected once each)");
      continue;
    }
    const bool same = alloc_op[t] == free_op[t];
    if (same ? free_pos[t] < alloc_pos[t] : (query_of[t] >= 0 && !reaches[query_of[t]])) {
      problems.push_back("tensor " + tensor.name + ": freed by " + OpLabel(dag, free_op[t]) +
                         ", which does not depend on " + OpLabel(dag, alloc_op[t]) +
                         " that allocates it");
    }
    const bool kept = tensor.category == Category::kActivations ||
                      tensor.category == Category::kRecompute;
    const OpKind k = dag.ops[free_op[t]].kind;
    if (kept && k != OpKind::kBackwardInput && k != OpKind::kBackwardWeight) {
      problems.push_back("tensor " + tensor.name + ": kept for backward but freed by " +
                         OpLabel(dag, free_op[t]));
    }
    if (tensor.category == Category::kOutputGrads && k != OpKind::kBackwardWeight) {
      problems.push_back("tensor " + tensor.name + ": an output gradient held for W but freed by " +
                         OpLabel(dag, free_op[t]));
    }
  }
  if (problems.empty()) return Status::Ok();
  return Status::Failed(JoinLines(problems));
}

std::string DagToDot(const StageDag& dag) {
  std::ostringstream out;
  boost::write_graphviz(
      out, dag.graph,
      [&](std::ostream& os, OpGraph::vertex_descriptor v) {
        const Op& op = dag.ops[v];
        const char* color = "black";
        switch (op.kind) {
          case OpKind::kForward: color = "steelblue"; break;
          case OpKind::kBackwardInput: color = "firebrick"; break;
          case OpKind::kBackwardWeight: color = "darkorange"; break;
          case OpKind::kRecompute: color = "forestgreen"; break;
          case OpKind::kComm: color = "purple"; break;
        }
        std::string label = std::string(OpKindName(op.kind)) + " " + op.name;
        std::string escaped;
        for (char ch : label) {
          if (ch == '"' || ch == '\\') escaped += '\\';
          escaped += ch;
        }
        os << "[label=\"" << escaped << "\", color=" << color << "]";
      });
  return out.str();
}

}  // namespace stepsim::graph
