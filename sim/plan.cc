#include "sim/plan.h"

#include <algorithm>
#include <set>
#include <utility>

#include "graph/checked.h"
#include "graph/framework_memory.h"
#include "graph/params.h"
#include "graph/static_memory.h"

namespace stepsim::sim {
namespace {

using graph::Category;

// A link for every pair of ranks some route hands a micro-batch between.
std::vector<PlatformLink> Links(const graph::Config& c, const Schedule& schedule,
                            const CostModel& cost, bool fixed_p2p) {
  std::set<std::pair<int64_t, int64_t>> pairs;
  for (const auto& route : schedule.routes) {
    for (size_t st = 0; st + 1 < route.size(); ++st) {
      const int64_t x = route[st].rank, y = route[st + 1].rank;
      if (x != y) pairs.insert({std::min(x, y), std::max(x, y)});
    }
  }
  std::vector<PlatformLink> links;
  for (const auto& [a, b] : pairs) {
    PlatformLink link{a, b, 0, cost.PipelineLatency()};
    if (fixed_p2p) {
      // One value for every hop, or the value of the sending stage: links
      // between neighbours carry the hop from the lower rank.
      const auto& v = c.timing.p2p_us();
      link.latency = (v.size() == 1 ? v[0] : v[static_cast<int>(a)]) * 1e-6;
    }
    link.bandwidth =
        cost.SameNode(a, b) ? c.hardware.nvlink_bandwidth : c.hardware.network_bandwidth;
    links.push_back(link);
  }
  return links;
}

// Static memory, the final gradient reduction, the optimizer step and the
// weights' all-gather after it of one rank.
Status FillStatic(const graph::Config& c, const CostModel& cost, int64_t rank,
                  const graph::StaticMemory& m, const std::vector<int64_t>& stages,
                  RankPlan& out) {
  out.static_bytes[static_cast<int>(Category::kWeights)] = m.weights_bytes;
  out.static_bytes[static_cast<int>(Category::kGradients)] = m.gradients_bytes;
  out.static_bytes[static_cast<int>(Category::kOptimizer)] = m.optimizer_bytes;
  out.static_bytes[static_cast<int>(Category::kComm)] = c.hardware.comm_workspace_bytes;
  out.buffers = graph::StaticBufferNames(c, m);
  if (c.hardware.comm_workspace_bytes > 0) {
    out.buffers.emplace_back("comm_workspace", c.hardware.comm_workspace_bytes);
  }
  for (const graph::NamedBytes& b : graph::FrameworkBuffers(c, stages)) {
    out.static_bytes[static_cast<int>(Category::kFramework)] += b.bytes;
    out.buffers.emplace_back(b.name, b.bytes);
  }
  out.loads_batches = graph::LoadsBatches(c, stages);
  out.dense_params = m.dense_params;
  out.expert_params = m.expert_params;
  try {
    Add(m.total_bytes(), c.hardware.comm_workspace_bytes);
  } catch (const Overflow&) {
    return Status::Invalid("hardware.comm_workspace_bytes: static memory plus the "
                           "workspace overflows 64-bit byte counts");
  }
  try {
    out.gradient_copy_bytes = graph::OptimizerGradientCopyBytes(c, m.optimizer_bytes);
  } catch (const Overflow&) {
    return Status::Invalid("precision: the optimizer's gradient copies overflow "
                           "64-bit byte counts");
  }
  try {
    // ZeRO-2/3 reduce-scatter inside each backward (step profiles); the
    // others once, after the step.
    out.grad_sync_seconds =
        ReducesPerMicrobatch(c)
            ? 0.0
            : cost.GradientSyncSeconds(Mul(m.dense_params, c.precision.gradient),
                                       Mul(m.expert_params, c.precision.gradient));
    if (out.grad_sync_seconds > 0) {
      constexpr int64_t kBucketParams = 40'000'000;  // Megatron's default bucket size
      out.grad_bucket_bytes =
          std::min(m.gradients_bytes, Mul(kBucketParams, c.precision.gradient));
    }
  } catch (const Overflow&) {
    return Status::Invalid("precision.gradient: the gradients of rank " + std::to_string(rank) +
                           " overflow 64-bit byte counts");
  }
  try {
    out.optimizer_seconds = cost.OptimizerStepSeconds(m.dense_params, m.expert_params);
  } catch (const Overflow&) {
    return Status::Invalid("precision: the optimizer step of rank " + std::to_string(rank) +
                           " overflows 64-bit byte counts");
  }
  try {
    if (GathersWeightsAfterStep(c)) {
      out.param_gather_seconds = cost.ParamGatherSeconds(Mul(m.dense_params, c.precision.weight),
                                                         Mul(m.expert_params, c.precision.weight));
    }
  } catch (const Overflow&) {
    return Status::Invalid("precision.weight: the weights of rank " + std::to_string(rank) +
                           " overflow 64-bit byte counts");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<std::vector<int64_t>>> PlaceStages(const Schedule& schedule,
                                                        int64_t num_stages) {
  std::vector<std::vector<int64_t>> stage_of(schedule.pp,
                                             std::vector<int64_t>(schedule.chunks, -1));
  for (const auto& route : schedule.routes) {
    if (static_cast<int64_t>(route.size()) != num_stages) {
      return Status::Invalid("schedule: a route of " + std::to_string(route.size()) +
                             " stages does not match the " + std::to_string(num_stages) +
                             " stages of the layout");
    }
    for (int64_t st = 0; st < num_stages; ++st) {
      const graph::Hop& hop = route[st];
      if (hop.rank < 0 || hop.rank >= schedule.pp || hop.chunk < 0 ||
          hop.chunk >= schedule.chunks) {
        return Status::Invalid("schedule: stage " + std::to_string(st) +
                               " is placed outside the ranks and chunks");
      }
      stage_of[hop.rank][hop.chunk] = st;
    }
  }
  for (int64_t r = 0; r < schedule.pp; ++r) {
    for (const Step& step : schedule.ranks[r]) {
      if (stage_of[r][step.chunk] < 0) {
        return Status::Invalid("schedule: rank " + std::to_string(r) + " runs chunk " +
                               std::to_string(step.chunk) + ", which holds no stage");
      }
    }
  }
  return stage_of;
}

std::string Plan::ChannelName(int64_t channel) const {
  const int64_t per_direction = stages * microbatches;
  const bool gradient = channel >= per_direction;
  const int64_t rest = channel % per_direction;
  return std::string(gradient ? "g" : "a") + std::to_string(rest / microbatches) + "." +
         std::to_string(rest % microbatches);
}

double OverlapSlowdown(int64_t sm_count, int64_t communication_sms) {
  return sm_count > communication_sms && communication_sms > 0
             ? static_cast<double>(sm_count) / static_cast<double>(sm_count - communication_sms)
             : 1.0;
}

double OverlappedPairSeconds(const StepProfile& forward, const StepProfile& backward,
                             int64_t sm_count, int64_t communication_sms) {
  const double compute =
      (forward.duration - forward.comm_seconds - forward.gather_seconds - forward.reduce_seconds) +
      (backward.duration - backward.comm_seconds - backward.gather_seconds -
       backward.reduce_seconds);
  const double slowdown = OverlapSlowdown(sm_count, communication_sms);
  // Waits for ZeRO-3's gathered weights and ZeRO-2/3's reduce-scatters are
  // not hidden by the other step.
  return std::max(compute * slowdown, forward.comm_seconds + backward.comm_seconds) +
         forward.gather_seconds + backward.gather_seconds + forward.reduce_seconds +
         backward.reduce_seconds;
}

StatusOr<Plan> BuildPlan(const graph::Config& c, const Schedule& schedule,
                         const std::vector<StageProfile>& stages, const CostModel& cost) {
  Plan plan;
  plan.stages = static_cast<int64_t>(stages.size());
  plan.microbatches = schedule.microbatches;
  plan.host_speed = c.hardware.flops * c.hardware.efficiency;
  plan.fixed_p2p = !c.timing.p2p_us().empty();
  StatusOr<std::vector<std::vector<int64_t>>> stage_of = PlaceStages(schedule, plan.stages);
  if (!stage_of.ok()) return stage_of.status();
  plan.stage_of = std::move(*stage_of);
  plan.links = Links(c, schedule, cost, plan.fixed_p2p);
  try {
    plan.batch_bytes = graph::RetainedBatchBytes(c);
  } catch (const Overflow&) {
    return Status::Invalid("batch: the input batch's bytes overflow 64-bit counts");
  }

  // Static state per rank: the stages it holds.
  StatusOr<graph::ModelParams> params = graph::CountParams(c);
  if (!params.ok()) return params.status();
  graph::Config placed = c;
  placed.layout.rank_stages = plan.stage_of;
  StatusOr<std::vector<graph::RankStatic>> statics = graph::StaticMemoryPerRank(placed, *params);
  if (!statics.ok()) return statics.status();

  plan.wire_receiver.assign(static_cast<size_t>(2 * plan.stages * plan.microbatches), -1);
  const int64_t last = plan.stages - 1;
  for (int64_t r = 0; r < schedule.pp; ++r) {
    RankPlan rank;
    Status filled = FillStatic(c, cost, r, (*statics)[r].memory, plan.stage_of[r], rank);
    if (!filled.ok()) return filled;
    rank.steps.reserve(schedule.ranks[r].size());
    for (const Step& step : schedule.ranks[r]) {
      PlanStep ps;
      ps.step = step;
      ps.stage = plan.stage_of[r][step.chunk];
      const StageProfile& profile = stages[ps.stage];
      ps.duration = profile.For(step.kind).duration;
      const std::vector<graph::Hop>& route = schedule.routes[schedule.RouteOf(step.microbatch)];
      const bool forward = step.kind == StepKind::kForward;
      const bool backward =
          step.kind == StepKind::kBackward || step.kind == StepKind::kBackwardWeight;
      if ((forward && ps.stage > 0) || (backward && ps.stage < last)) {
        ps.input = plan.Channel(backward, ps.stage, step.microbatch);
        ps.input_from = route[forward ? ps.stage - 1 : ps.stage + 1].rank;
      }
      if ((forward && ps.stage < last) || (backward && ps.stage > 0)) {
        const int64_t to_stage = forward ? ps.stage + 1 : ps.stage - 1;
        ps.output = plan.Channel(backward, to_stage, step.microbatch);
        ps.output_to = route[to_stage].rank;
        ps.output_bytes = forward ? profile.activation_bytes : profile.gradient_bytes;
        if (ps.output_to != r) plan.wire_receiver[ps.output] = ps.output_to;
      }
      rank.steps.push_back(ps);
    }
    if (c.overlap_forward_backward) {
      std::vector<PlanStep>& steps = rank.steps;
      for (size_t i = 0; i + 1 < steps.size(); ++i) {
        PlanStep& f = steps[i];
        PlanStep& b = steps[i + 1];
        if (!FormsOverlappedPair(f.step, b.step)) continue;
        const StepProfile& fp = stages[f.stage].forward;
        const StepProfile& bp = stages[b.stage].For(b.step.kind);
        const double alone = fp.duration + bp.duration;
        if (alone <= 0) continue;
        const double scale =
            OverlappedPairSeconds(fp, bp, c.hardware.sm_count, c.communication_sms) / alone;
        f.pair = PlanStep::Pair::kFirst;
        b.pair = PlanStep::Pair::kSecond;
        f.scale = b.scale = scale;
        f.duration = fp.duration * scale;
        b.duration = bp.duration * scale;
        ++i;
      }
    }
    plan.ranks.push_back(std::move(rank));
  }
  return plan;
}

}  // namespace stepsim::sim
