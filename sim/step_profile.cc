#include "sim/step_profile.h"

#include <utility>

#include "graph/checked.h"
#include "graph/params.h"

namespace stepsim::sim {
namespace {

using graph::Category;

// A fixed duration from the timing override for this stage, or -1.
double Fixed(const google::protobuf::RepeatedField<double>& values, int64_t stage) {
  if (values.empty()) return -1;
  return (values.size() == 1 ? values[0] : values[static_cast<int>(stage)]) * 1e-6;
}

// What a ZeRO-3 rank gathers for one group of ops (a layer, the embedding,
// the loss): the other ranks' shards of its weights, and how long the
// all-gathers take.
struct Gather {
  int64_t bytes = 0;
  double seconds = 0;
  std::string group;  // ReduceScatter::group
};

// A slot's group of ops: `key`, what its ops' GroupKey gives (the decoder
// layer, MTP: num_layers + index; the module for the embedding and the
// loss), and `name`, how the trace names it (ReduceScatter::group).
struct SlotGroup {
  std::string key, name;
};
SlotGroup GroupOf(const graph::Config& c, const graph::Slot& slot) {
  switch (slot.kind) {
    case graph::SlotKind::kEmbedding: return {"embedding", "embedding"};
    case graph::SlotKind::kLoss: return {"loss", "loss"};
    case graph::SlotKind::kDecoder:
      return {std::to_string(slot.index), "L" + std::to_string(slot.index)};
    case graph::SlotKind::kMtp:
      return {std::to_string(c.model.layers + slot.index), "M" + std::to_string(slot.index)};
  }
  return {};
}

// A slot's parameters on this device, non-expert and expert.
std::pair<int64_t, int64_t> SlotParamCounts(const graph::Config& c, const graph::Stage& stage,
                                            const graph::Slot& slot) {
  int64_t dense = 0, expert = 0;
  for (const graph::ParamEntry& e : graph::SlotParams(c, stage, slot)) {
    (e.group == graph::ShardGroup::kExpert ? expert : dense) += e.device;
  }
  return {dense, expert};
}

// Keyed by SlotGroup::key.
std::map<std::string, Gather> GatheredWeights(const graph::Config& c, const CostModel& cost,
                                              const graph::Stage& stage) {
  std::map<std::string, Gather> out;
  if (c.zero_stage < 3) return out;
  for (const graph::Slot& slot : stage.slots) {
    const auto [dense, expert] = SlotParamCounts(c, stage, slot);
    const int64_t dense_missing =
        Mul(Sub(dense, CeilDiv(dense, c.parallel.dense_dp())), c.precision.weight);
    const int64_t expert_missing =
        Mul(Sub(expert, CeilDiv(expert, c.parallel.edp)), c.precision.weight);
    out[GroupOf(c, slot).key] = {Add(dense_missing, expert_missing),
                                 cost.GatherSeconds(dense_missing, expert_missing), ""};
  }
  return out;
}

// What a ZeRO-2/3 rank reduce-scatters for one group of ops per micro-batch:
// its unsharded gradients of the parameters sharded over a group of more
// than one rank (non-expert over DP, expert over EDP; a group of one keeps
// whole gradients and accumulates them in place), and how long the ring
// reduce-scatters take.
std::map<std::string, Gather> ReducedGradients(const graph::Config& c, const CostModel& cost,
                                               const graph::Stage& stage) {
  std::map<std::string, Gather> out;
  if (!ReducesPerMicrobatch(c)) return out;
  for (const graph::Slot& slot : stage.slots) {
    const auto [dense, expert] = SlotParamCounts(c, stage, slot);
    const int64_t dense_bytes = c.parallel.dense_dp() > 1 ? Mul(dense, c.precision.gradient) : 0;
    const int64_t expert_bytes = c.parallel.edp > 1 ? Mul(expert, c.precision.gradient) : 0;
    SlotGroup group = GroupOf(c, slot);
    out[std::move(group.key)] = {Add(dense_bytes, expert_bytes),
                                 cost.GradientSyncSeconds(dense_bytes, expert_bytes),
                                 std::move(group.name)};
  }
  return out;
}

std::string GroupKey(const graph::Op& op) {
  return op.layer >= 0 ? std::to_string(op.layer) : op.module;
}

// A run of consecutive ops of one group whose weights ZeRO-3 gathers.
struct GatherRun {
  size_t first = 0, last = 0;  // positions in the step's order
  Gather gather;
};

std::vector<GatherRun> GatherRuns(const graph::StageDag& dag, const std::vector<int>& order,
                                  const std::map<std::string, Gather>& gathered) {
  std::vector<GatherRun> runs;
  if (gathered.empty()) return runs;
  for (size_t i = 0; i < order.size();) {
    const std::string key = GroupKey(dag.ops[order[i]]);
    size_t j = i;
    while (j + 1 < order.size() && GroupKey(dag.ops[order[j + 1]]) == key) ++j;
    const auto it = gathered.find(key);
    if (it != gathered.end() && it->second.bytes > 0) runs.push_back({i, j, it->second});
    i = j + 1;
  }
  return runs;
}

// For each group of `reduced` whose weight gradients the step computes: the
// positions of its first and last weight-gradient op (W) in the step's
// order, which may have other groups' ops between them. The op that drops a
// retained graph (graph::kRetainedGraphOp) computes no gradient.
std::vector<GatherRun> ReduceRuns(const graph::StageDag& dag, const std::vector<int>& order,
                                  const std::map<std::string, Gather>& reduced) {
  std::vector<GatherRun> runs;
  if (reduced.empty()) return runs;
  std::map<std::string, size_t> run_of;
  for (size_t i = 0; i < order.size(); ++i) {
    const graph::Op& op = dag.ops[order[i]];
    if (op.kind != graph::OpKind::kBackwardWeight || op.name == graph::kRetainedGraphOp) continue;
    const std::string key = GroupKey(op);
    const auto it = reduced.find(key);
    if (it == reduced.end() || it->second.bytes <= 0) continue;
    const auto [at, added] = run_of.emplace(key, runs.size());
    if (added) runs.push_back({i, i, it->second});
    runs[at->second].last = i;
  }
  return runs;
}

// `seconds`: each op's time; `all_to_all`: the part of it in an EP
// all-to-all.
//
// ZeRO-3, as FSDP runs it (one group ahead): a group's weights are gathered
// on the DP stream before its first op computes, and while a group computes
// the next group's gather runs, so two groups' gathered weights are held.
// The first group's gather is issued at its first op and waited for in
// full; a later group's starts when the group before it starts computing,
// and its first op waits for whatever of it that compute did not hide. A
// group's weights are freed after its last op. Fixed timings (`timing`)
// already hold any wait.
//
// ZeRO-2/3, as FSDP2's post-backward hook runs it (_fsdp_param_group.py
// post_backward): a group's unsharded gradients are allocated at its first
// weight-gradient op; after its last, the compute stream waits for the
// reduce-scatter in flight (current_stream().wait_event on the previous
// reduce_scatter_state), whose gradients are then freed, and issues the
// group's own on the DP stream. So one reduce-scatter is in flight at a
// time, and the step ends when the last completes (the root's final
// backward callback waits for it).
StepProfile Build(const graph::StageDag& dag, const std::vector<int>& order,
                  const std::vector<double>& seconds, const std::vector<double>& all_to_all,
                  double fixed, const std::map<std::string, Gather>& gathered,
                  const std::map<std::string, Gather>& reduced) {
  StepProfile p;
  double modelled = 0;
  for (int o : order) modelled += seconds[o];
  const double even = fixed >= 0 && modelled <= 0 && !order.empty()
                          ? fixed / static_cast<double>(order.size())
                          : 0.0;
  const std::vector<GatherRun> runs = GatherRuns(dag, order, gathered);
  size_t run = 0;          // the next run to start
  double gather_end = 0;   // when its gather completes, once issued
  // Per position: the bytes a group's unsharded gradients allocate there,
  // and the reduce-scatter issued after it (empty without any).
  const std::vector<GatherRun> reduce_runs = ReduceRuns(dag, order, reduced);
  std::vector<int64_t> reduce_alloc;
  std::vector<const Gather*> reduce_issue;
  if (!reduce_runs.empty()) {
    reduce_alloc.assign(order.size(), 0);
    reduce_issue.assign(order.size(), nullptr);
  }
  for (const GatherRun& r : reduce_runs) {
    reduce_alloc[r.first] = r.gather.bytes;
    reduce_issue[r.last] = &r.gather;
  }
  const bool reduces = !reduce_runs.empty();
  // The reduce-scatter in flight: when it completes, and its bytes (0: none).
  double reducing_end = 0;
  int64_t reducing_bytes = 0;
  // Phase boundaries from cumulative sums, so the last phase ends exactly at
  // the step's duration.
  double t = 0, cumulative = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const int o = order[i];
    const graph::Op& op = dag.ops[o];
    Phase ph;
    ph.op = o;
    ph.start = t;
    double wait = 0;  // for this group's gathered weights
    if (run < runs.size() && runs[run].first == i) {
      if (run == 0) {  // nothing prefetched them
        ph.gathered_alloc[0] = runs[0].gather.bytes;
        gather_end = t + runs[0].gather.seconds;
      }
      if (fixed < 0) wait = std::max(0.0, gather_end - t);
      if (run + 1 < runs.size()) {  // the next group's, as this one computes
        ph.gathered_alloc[1] = runs[run + 1].gather.bytes;
        gather_end = t + wait + runs[run + 1].gather.seconds;
      }
      ++run;
    }
    for (int64_t g : ph.gathered_alloc) ph.alloc[static_cast<int>(Category::kComm)] += g;
    ph.reduced_alloc = reduces ? reduce_alloc[i] : 0;
    ph.alloc[static_cast<int>(Category::kComm)] += ph.reduced_alloc;
    cumulative += wait + seconds[o];
    p.gather_seconds += wait;
    if (fixed < 0) {
      ph.end = cumulative;
    } else if (i + 1 == order.size()) {
      ph.end = fixed;
    } else {
      ph.end = modelled > 0 ? fixed * (cumulative / modelled)
                            : even * static_cast<double>(i + 1);
    }
    // After the op: the compute stream waits for the reduce-scatter in
    // flight, whose gradients go, before a group issues its own, and at
    // the step's end.
    double reduce_wait = 0;
    auto finish_reducing = [&]() {
      if (reducing_bytes == 0) return;
      const double w = fixed < 0 ? std::max(0.0, reducing_end - ph.end) : 0.0;
      ph.end += w;
      reduce_wait += w;
      ph.reduced_free += reducing_bytes;
      reducing_bytes = 0;
    };
    if (reduces && reduce_issue[i] != nullptr) {
      finish_reducing();
      // Under fixed timings, no wait: the stream runs them one after another.
      const double issued = std::max(ph.end, reducing_end);
      reducing_end = issued + reduce_issue[i]->seconds;
      reducing_bytes = reduce_issue[i]->bytes;
      p.reduce_scatters.push_back(
          {issued, reducing_end, reducing_bytes, reduce_issue[i]->group});
    }
    if (i + 1 == order.size()) finish_reducing();
    if (fixed < 0) cumulative += reduce_wait;
    p.reduce_seconds += reduce_wait;
    ph.free[static_cast<int>(Category::kComm)] += ph.reduced_free;
    for (const graph::TensorEvent& e : op.events) {
      const graph::Tensor& tensor = dag.tensors[e.tensor];
      Bytes& target = e.allocate ? ph.alloc : ph.free;
      target[static_cast<int>(tensor.category)] += tensor.bytes;
    }
    if (run > 0 && runs[run - 1].last == i) {  // the group's last op
      ph.free[static_cast<int>(Category::kComm)] += runs[run - 1].gather.bytes;
      ph.gathered_free = runs[run - 1].gather.bytes;
    }
    t = ph.end;
    if (all_to_all[o] > 0 && seconds[o] > 0) {
      p.comm_seconds += (ph.end - ph.start - wait - reduce_wait) * (all_to_all[o] / seconds[o]);
    }
    p.flops += op.flops;
    p.phases.push_back(ph);
  }
  p.duration = fixed >= 0 ? fixed : t;
  // Cumulative change and its peak.
  Bytes cum{};
  int64_t total = 0;
  for (size_t i = 0; i < p.phases.size(); ++i) {
    const Phase& ph = p.phases[i];
    for (int k = 0; k < graph::kNumCategories; ++k) {
      cum[k] += ph.alloc[k];
      total += ph.alloc[k];
    }
    if (total > p.peak) {
      p.peak = total;
      p.peak_phase = static_cast<int>(i);
      p.at_peak = cum;
    }
    for (int k = 0; k < graph::kNumCategories; ++k) {
      cum[k] -= ph.free[k];
      total -= ph.free[k];
    }
  }
  p.net = cum;
  return p;
}

}  // namespace

const StepProfile& StageProfile::For(StepKind kind) const {
  switch (kind) {
    case StepKind::kForward: return forward;
    case StepKind::kBackward: return backward;
    case StepKind::kWeight: return weight;
    case StepKind::kBackwardWeight: return backward_weight;
  }
  return forward;
}

StatusOr<std::vector<StageProfile>> BuildStageProfiles(const graph::Config& c,
                                                       const CostModel& cost) {
  return BuildStageProfiles(c, cost, c.layout.stages);
}

StatusOr<std::vector<StageProfile>> BuildStageProfiles(const graph::Config& c,
                                                       const CostModel& cost,
                                                       const std::vector<graph::Stage>& stages) {
  std::vector<StageProfile> out;
  // Profiles are built in place: a Boost graph does not move (adjacency_list
  // has no move constructor, and its swap makes three copies).
  out.reserve(stages.size());
  try {
    for (const graph::Stage& stage : stages) {
      StatusOr<graph::StageDag> dag = graph::BuildStageDag(c, stage);
      if (!dag.ok()) return dag.status();
      StageProfile& sp = out.emplace_back();
      sp.stage = stage.stage;
      dag->graph = graph::OpGraph();  // the edges stay behind (StageProfile::dag)
      sp.dag = std::move(*dag);
      std::vector<double> seconds(sp.dag.ops.size()), all_to_all(sp.dag.ops.size());
      for (size_t o = 0; o < seconds.size(); ++o) {
        seconds[o] = cost.OpSeconds(sp.dag.ops[o]);
        all_to_all[o] = cost.AllToAllSeconds(sp.dag.ops[o]);
      }
      const auto gathered = GatheredWeights(c, cost, stage);
      const auto reduced = ReducedGradients(c, cost, stage);
      const graph::StageDag& d = sp.dag;
      sp.forward = Build(d, d.forward, seconds, all_to_all, Fixed(c.timing.forward_us(), stage.stage),
                         gathered, {});
      const double fixed_b = Fixed(c.timing.backward_input_us(), stage.stage);
      const double fixed_w = Fixed(c.timing.backward_weight_us(), stage.stage);
      sp.backward = Build(d, d.backward, seconds, all_to_all, fixed_b, gathered, reduced);
      sp.weight = Build(d, d.weight, seconds, all_to_all, fixed_w, gathered, reduced);
      // BW: B's and W's ops interleaved; fixed times add up.
      double fixed_bw = -1;
      if (fixed_b >= 0 || fixed_w >= 0) {
        fixed_bw = (fixed_b >= 0 ? fixed_b : sp.backward.duration) +
                   (fixed_w >= 0 ? fixed_w : sp.weight.duration);
      }
      sp.backward_weight =
          Build(d, d.backward_fused, seconds, all_to_all, fixed_bw, gathered, reduced);
      // Durations stay far from what timestamps in nanoseconds can hold.
      constexpr double kMaxStepSeconds = 1e6;
      for (const StepProfile* p : {&sp.forward, &sp.backward, &sp.weight, &sp.backward_weight}) {
        if (!(p->duration >= 0 && p->duration <= kMaxStepSeconds)) {
          return stepsim::Status::Invalid(
              "hardware: a step of stage " + std::to_string(stage.stage) + " would take " +
              std::to_string(p->duration) + " s; check hardware.flops, the bandwidths and "
              "hardware.efficiency");
        }
      }
      // Pipeline payloads: the stage output and the input gradient, b*s*h
      // activations (divided by TP with sequence parallelism).
      const graph::Config& cc = c;
      const int64_t sp_div = cc.parallel.sequence_parallel ? cc.parallel.tp : 1;
      const int64_t hop = Mul(cc.precision.activation, cc.batch.micro_batch_size,
                                     cc.batch.seq_len / cc.parallel.cp, cc.model.hidden) /
                          sp_div;
      sp.activation_bytes = hop;
      sp.gradient_bytes = hop;
    }
  } catch (const Overflow&) {
    return stepsim::Status::Invalid("model: memory sizes overflow 64-bit byte counts");
  }
  return out;
}

}  // namespace stepsim::sim
