#include "traces/run_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "sim/step_profile.h"
#include "traces/format.h"
#include "traces/table.h"

namespace stepsim::traces {
namespace {

using graph::Category;

// Microseconds rounded to whole nanoseconds: reports do not carry the
// floating-point noise of summed durations.
double Us(double seconds) { return std::round(seconds * 1e9) / 1e3; }

// (micro-batch, chunk) pairs whose forward started at or before `time` and
// whose input gradient had not finished by then.
// Times compared in whole nanoseconds, so a step ending exactly at `time`
// counts as ended despite rounding in summed durations.
int64_t InFlight(const sim::RankRun& run, double time) {
  const int64_t at = std::llround(time * 1e9);
  int64_t started = 0, finished = 0;
  for (const sim::StepRecord& r : run.ledger.steps()) {
    const int64_t start = std::llround(r.start * 1e9);
    const int64_t end = std::llround(r.End() * 1e9);
    if (r.step.kind == sim::StepKind::kForward && start <= at) ++started;
    const bool backward = r.step.kind == sim::StepKind::kBackward ||
                          r.step.kind == sim::StepKind::kBackwardWeight;
    if (backward && end <= at) ++finished;
  }
  return started - finished;
}

}  // namespace

RunReport BuildRunReport(const graph::Config& c, const sim::SimResult& s,
                         const std::vector<sim::AllocatorRun>* allocators) {
  RunReport r;
  r.set_scenario(c.name);
  r.set_model(c.model.name);
  r.set_schedule(s.schedule.name);
  r.set_pp(s.schedule.pp);
  r.set_vpp(s.schedule.chunks);
  r.set_microbatches(s.schedule.microbatches);
  r.set_step_time_us(Us(s.step_time));
  r.set_compute_time_us(Us(s.compute_end));
  r.set_transfers(static_cast<int64_t>(s.transfers.size()));
  r.set_gradients_reduced_per_microbatch(sim::ReducesPerMicrobatch(c) &&
                                         (c.parallel.dense_dp() > 1 || c.parallel.edp > 1));
  int64_t events = 0;
  const bool modelled = allocators != nullptr && allocators->size() == s.ranks.size();
  for (size_t i = 0; i < s.ranks.size(); ++i) {
    const sim::RankRun& run = s.ranks[i];
    const sim::Peak& peak = run.memory.peak;
    RankReport* out = r.add_ranks();
    out->set_pp_rank(run.rank);
    out->set_peak_bytes(peak.total);
    out->set_peak_time_us(Us(peak.time));
    out->set_peak_op(peak.op);
    out->set_peak_microbatch(peak.microbatch);
    out->set_peak_layer(peak.layer);
    out->set_peak_step(peak.step);
    for (int k = 0; k < graph::kNumCategories; ++k) {
      (*out->mutable_peak_breakdown())[graph::CategoryName(static_cast<Category>(k))] =
          peak.breakdown[k];
    }
    out->set_static_bytes(sim::Total(run.static_bytes));
    for (const auto& [name, bytes] : run.buffers) (*out->mutable_static_breakdown())[name] += bytes;
    out->set_end_bytes(sim::Total(run.memory.end));
    out->set_capacity_bytes(c.hardware.hbm_bytes);
    const int64_t overhead = c.hardware.runtime_overhead_bytes;
    out->set_runtime_overhead_bytes(overhead);
    if (modelled) {
      const sim::AllocatorRun& a = (*allocators)[i];
      out->set_reserved_peak_bytes(a.reserved_peak);
      out->set_reserved_peak_time_us(Us(a.reserved_peak_time));
      out->set_fragmentation_bytes(a.reserved_peak - peak.total);
      out->set_cuda_mallocs(a.end.device_allocs);
      out->set_largest_free_block_bytes(a.oom ? a.oom_largest_free : a.largest_free_at_peak);
      out->set_oom_op(a.oom_op);
      out->set_oom_request_bytes(a.oom_request);
      out->set_reserved_peak_live_bytes(a.live_at_peak);
    } else {
      out->set_reserved_peak_bytes(peak.total);
      out->set_reserved_peak_time_us(Us(peak.time));
      out->set_reserved_peak_live_bytes(peak.total);
    }
    out->set_fits(out->oom_op().empty() &&
                  out->reserved_peak_bytes() <= c.hardware.hbm_bytes - overhead);
    out->set_headroom_bytes(c.hardware.hbm_bytes - overhead - out->reserved_peak_bytes());
    if (modelled) out->set_alloc_retries((*allocators)[i].end.retries);
    out->set_busy_us(Us(run.busy));
    const double bubble = s.compute_end - run.busy;
    out->set_bubble_us(Us(bubble));
    out->set_bubble_fraction(s.compute_end > 0 ? bubble / s.compute_end : 0);
    out->set_compute_end_us(Us(run.compute_end));
    out->set_grad_sync_us(Us(run.grad_sync_seconds));
    out->set_optimizer_step_us(Us(run.optimizer_step));
    out->set_optimizer_us(Us(run.optimizer_seconds));
    out->set_param_gather_us(Us(run.param_gather_seconds));
    out->set_steps(static_cast<int64_t>(run.ledger.steps().size()));
    const int64_t inflight = InFlight(run, peak.time);
    out->set_inflight_at_peak(inflight);
    out->set_inflight_stage_equivalents(static_cast<double>(inflight * s.schedule.pp) /
                                        static_cast<double>(s.stages.size()));
    events += run.memory.events;
  }
  r.set_memory_events(events);
  return r;
}

StatusOr<RunReport> ReportRun(const graph::Config& c, const sim::SimResult& s) {
  StatusOr<std::vector<sim::AllocatorRun>> allocators = sim::ReplayAllocators(c, s);
  if (!allocators.ok()) return allocators.status();
  return BuildRunReport(c, s, &*allocators);
}

std::string FormatRunSummary(const RunReport& r) {
  std::string out = r.model() + " (" + r.scenario() + "): " + r.schedule() + ", PP" +
                    std::to_string(r.pp()) +
                    (r.vpp() > 1 ? " VPP" + std::to_string(r.vpp()) : "") + ", " +
                    std::to_string(r.microbatches()) + " micro-batches\n";
  const bool gathers = std::any_of(r.ranks().begin(), r.ranks().end(),
                                  [](const RankReport& k) { return k.param_gather_us() > 0; });
  // What follows the last step: "then A, B and C".
  std::vector<std::string> after;
  if (!r.gradients_reduced_per_microbatch()) after.push_back("the DP gradient reduction");
  after.push_back("the optimizer step");
  if (gathers) after.push_back("the weights' all-gather");
  std::string then = "then ";
  for (size_t i = 0; i < after.size(); ++i) {
    then += (i == 0 ? "" : i + 1 == after.size() ? " and " : ", ") + after[i];
  }
  out += "step time " + Fixed(r.step_time_us() / 1000, 3) + " ms (last step ends at " +
         Fixed(r.compute_time_us() / 1000, 3) +
         (r.gradients_reduced_per_microbatch()
              ? " ms; each backward reduce-scatters its gradients; " + then
              : " ms, " + then) +
         ")\n\n";
  Table table({"rank", "peak GiB", "reserved", "frag", "fits", "at ms", "<during", "mb",
               "weights", "grads", "optim", "activ", "recomp", "dy", "comm", "work",
               "frame", "in flight", "bubble"});
  for (const RankReport& k : r.ranks()) {
    auto gib = [&](const char* cat) { return Gib(k.peak_breakdown().at(cat)); };
    table.AddRow({std::to_string(k.pp_rank()), Gib(k.peak_bytes()), Gib(k.reserved_peak_bytes()),
                  Gib(k.fragmentation_bytes()),
                  k.fits()                  ? "yes, " + Gib(k.headroom_bytes()) + " left"
                  : k.headroom_bytes() < 0  ? "NO, " + Gib(-k.headroom_bytes()) + " over"
                                            : std::string("NO, out of memory"),
                  Fixed(k.peak_time_us() / 1000, 3),
                  k.peak_step().empty() ? k.peak_op() : k.peak_step() + " " + k.peak_op(),
                  k.peak_microbatch() < 0 ? "-" : std::to_string(k.peak_microbatch()),
                  gib("weights"), gib("gradients"), gib("optimizer"), gib("activations"),
                  gib("recompute"), gib("output_grads"), gib("comm"), gib("workspace"),
                  gib("framework"),
                  Fixed(k.inflight_stage_equivalents(), 1),
                  Fixed(100 * k.bubble_fraction(), 1) + "%"});
  }
  out += table.Render();
  const bool none = r.ranks().empty();
  out += "(GiB = 2^30 bytes; breakdown at each rank's peak; reserved: the caching allocator's "
         "peak, frag: reserved minus peak; fits: reserved against " +
         (none ? std::string("?") : Gib(r.ranks(0).capacity_bytes())) + " GiB of device memory less " +
         (none ? std::string("?") : Gib(r.ranks(0).runtime_overhead_bytes())) +
         " GiB of CUDA context)\n";
  for (const RankReport& k : r.ranks()) {
    if (!k.fits() || k.alloc_retries() == 0) continue;
    out += "rank " + std::to_string(k.pp_rank()) + ": at its limit: the allocator freed its "
           "cache " + std::to_string(k.alloc_retries()) + " time" +
           (k.alloc_retries() == 1 ? "" : "s") + " to stay within " +
           Gib(k.capacity_bytes() - k.runtime_overhead_bytes()) +
           " GiB (PyTorch's num_alloc_retries)\n";
  }
  for (const RankReport& k : r.ranks()) {
    if (k.oom_op().empty()) continue;
    out += "rank " + std::to_string(k.pp_rank()) + ": out of memory at " + k.oom_op() +
           ": a request of " + Gib(k.oom_request_bytes()) + " GiB, the largest free block " +
           Gib(k.largest_free_block_bytes()) + " GiB\n";
  }
  return out;
}

}  // namespace stepsim::traces
