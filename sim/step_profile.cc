#include "sim/step_profile.h"

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
};

// Keyed by decoder layer (MTP: num_layers + index), or by module for the
// embedding and the loss.
std::map<std::string, Gather> GatheredWeights(const graph::Config& c, const CostModel& cost,
                                              const graph::Stage& stage) {
  std::map<std::string, Gather> out;
  if (!ProfilesDependOnZero(c)) return out;
  for (const graph::Slot& slot : stage.slots) {
    int64_t dense = 0, expert = 0;
    for (const graph::ParamEntry& e : graph::SlotParams(c, stage, slot)) {
      (e.group == graph::ShardGroup::kExpert ? expert : dense) += e.device;
    }
    const int64_t dense_missing =
        Mul(Sub(dense, CeilDiv(dense, c.parallel.dense_dp())), c.precision.weight);
    const int64_t expert_missing =
        Mul(Sub(expert, CeilDiv(expert, c.parallel.edp)), c.precision.weight);
    std::string key;
    switch (slot.kind) {
      case graph::SlotKind::kEmbedding: key = "embedding"; break;
      case graph::SlotKind::kLoss: key = "loss"; break;
      case graph::SlotKind::kDecoder: key = std::to_string(slot.index); break;
      case graph::SlotKind::kMtp: key = std::to_string(c.model.layers + slot.index); break;
    }
    out[key] = {Add(dense_missing, expert_missing),
                cost.GatherSeconds(dense_missing, expert_missing)};
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
StepProfile Build(const graph::StageDag& dag, const std::vector<int>& order,
                  const std::vector<double>& seconds, const std::vector<double>& all_to_all,
                  double fixed, const std::map<std::string, Gather>& gathered) {
  StepProfile p;
  double modelled = 0;
  for (int o : order) modelled += seconds[o];
  const double even = fixed >= 0 && modelled <= 0 && !order.empty()
                          ? fixed / static_cast<double>(order.size())
                          : 0.0;
  const std::vector<GatherRun> runs = GatherRuns(dag, order, gathered);
  size_t run = 0;          // the next run to start
  double gather_end = 0;   // when its gather completes, once issued
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
      p.comm_seconds += (ph.end - ph.start - wait) * (all_to_all[o] / seconds[o]);
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
      const graph::StageDag& d = sp.dag;
      sp.forward = Build(d, d.forward, seconds, all_to_all, Fixed(c.timing.forward_us(), stage.stage),
                         gathered);
      const double fixed_b = Fixed(c.timing.backward_input_us(), stage.stage);
      const double fixed_w = Fixed(c.timing.backward_weight_us(), stage.stage);
      sp.backward = Build(d, d.backward, seconds, all_to_all, fixed_b, gathered);
      sp.weight = Build(d, d.weight, seconds, all_to_all, fixed_w, gathered);
      // BW: B's and W's ops interleaved; fixed times add up.
      double fixed_bw = -1;
      if (fixed_b >= 0 || fixed_w >= 0) {
        fixed_bw = (fixed_b >= 0 ? fixed_b : sp.backward.duration) +
                   (fixed_w >= 0 ? fixed_w : sp.weight.duration);
      }
      sp.backward_weight = Build(d, d.backward_fused, seconds, all_to_all, fixed_bw, gathered);
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
