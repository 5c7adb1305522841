#include "sim/engine.h"

#include <simgrid/s4u.hpp>
#include <spdlog/spdlog.h>
#include <xbt/log.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <stdexcept>

#include "graph/checked.h"
#include "graph/params.h"
#include "graph/static_memory.h"
#include "sim/cost_model.h"

namespace stepsim::sim {
namespace {

namespace sg4 = simgrid::s4u;
using graph::Category;

constexpr int kComm = static_cast<int>(Category::kComm);

// Everything the rank actors share. SimGrid runs actors one at a time, so
// plain containers are safe.
struct World {
  const graph::Config& config;
  const Schedule& schedule;
  const std::vector<StageProfile>& stages;
  const CostModel& cost;
  std::vector<RankRun>& ranks;
  std::vector<Transfer> transfers{};
  std::vector<sg4::CommPtr> comms{};  // parallel to transfers (null for a local hand-off)
  std::deque<int> payloads{};         // stable addresses of transfer indices
  std::vector<std::string> waiting{}; // per rank: what it is blocked on
  std::vector<bool> done{};
  std::vector<std::string> errors{};
  bool fixed_p2p = false;
  bool verbose = false;
  int64_t num_stages = 0;
  std::vector<std::vector<int64_t>> stage_of{};  // [rank][chunk] -> stage
  // Hand-offs between two chunks of one rank (DualPipeV's turn): no wire.
  std::map<std::pair<int64_t, int32_t>, int> local{};  // (receiving stage, mb) -> transfer
  // Input batches the training loop keeps (conventions.retain_batches).
  int64_t batch_bytes = 0;
  std::vector<bool> loads_batches{};
  std::vector<std::set<int32_t>> batches_loaded{};
};

std::string MailboxName(bool gradient, int64_t stage, int32_t microbatch) {
  return std::string(gradient ? "g" : "a") + std::to_string(stage) + "." +
         std::to_string(microbatch);
}

double Micros(double seconds) { return seconds * 1e6; }

void RunRank(World& w, int64_t rank) {
  RankRun& run = w.ranks[rank];
  const int64_t chunks = w.schedule.chunks;
  std::vector<sg4::CommPtr> mine;
  for (const Step& step : w.schedule.ranks[rank]) {
    const int64_t stage = w.stage_of[rank][step.chunk];
    const std::vector<graph::Hop>& route = w.schedule.routes[w.schedule.RouteOf(step.microbatch)];
    const StageProfile& profile = w.stages[stage];
    const bool first = stage == 0, last = stage == w.num_stages - 1;
    const bool forward = step.kind == StepKind::kForward;
    const bool backward = step.kind == StepKind::kBackward ||
                          step.kind == StepKind::kBackwardWeight;
    const std::string name = StepName(step, chunks);
    if ((forward && !first) || (backward && !last)) {
      const int64_t from = forward ? stage - 1 : stage + 1;
      const int64_t from_rank = route[from].rank;
      int id = -1;
      if (from_rank == rank) {
        // Handed over by another chunk of this rank, earlier in its list.
        auto it = w.local.find({forward ? stage : -1 - stage, step.microbatch});
        if (it == w.local.end()) {
          throw std::runtime_error(name + " needs its input from this rank's own stage " +
                                   std::to_string(from) + ", which has not run yet");
        }
        id = it->second;
      } else {
        w.waiting[rank] = name + " waits for the " +
                          std::string(forward ? "activation" : "gradient") + " of micro-batch " +
                          std::to_string(step.microbatch) + " from stage " + std::to_string(from) +
                          " (rank " + std::to_string(from_rank) + ")";
        id = *sg4::Mailbox::by_name(MailboxName(backward, stage, step.microbatch))->get<int>();
        w.waiting[rank].clear();
      }
      // An activation becomes the first op's kept input when the forward
      // starts; a gradient is read by the backward until it ends.
      Transfer& t = w.transfers[id];
      t.consumed = sg4::Engine::get_clock() + (forward ? 0 : profile.For(step.kind).duration);
      run.ledger.AddDelta({t.consumed, Category::kComm, -t.bytes,
                           std::string(forward ? "recv activation " : "recv gradient ") +
                               std::to_string(step.microbatch),
                           step.microbatch, 1});
    }
    const StepProfile& p = profile.For(step.kind);
    const double start = sg4::Engine::get_clock();
    if (forward && w.batch_bytes > 0 && w.loads_batches[rank] &&
        w.batches_loaded[rank].insert(step.microbatch).second) {
      // The training loop keeps this micro-batch's input batch until the
      // next iteration (conventions.retain_batches).
      run.ledger.AddDelta({start, Category::kFramework, w.batch_bytes,
                           "input batch " + std::to_string(step.microbatch), step.microbatch, 1});
      run.retained_bytes += w.batch_bytes;
    }
    run.ledger.AddStep({start, &profile, step, chunks});
    if (w.verbose) {
      spdlog::info("[{:.3f} us] rank {} runs {} on stage {} for {:.3f} us", Micros(start), rank,
                   name, stage, Micros(p.duration));
    }
    sg4::this_actor::sleep_for(p.duration);
    run.busy += p.duration;
    if ((forward && !last) || (backward && !first)) {
      Transfer t;
      t.from_rank = rank;
      t.from_stage = stage;
      t.to_stage = forward ? stage + 1 : stage - 1;
      t.to_rank = route[t.to_stage].rank;
      t.gradient = backward;
      t.microbatch = step.microbatch;
      t.bytes = forward ? profile.activation_bytes : profile.gradient_bytes;
      const int id = static_cast<int>(w.transfers.size());
      if (t.to_rank == rank) {
        t.start = t.end = sg4::Engine::get_clock();
        w.transfers.push_back(t);
        w.comms.push_back(nullptr);
        w.local[{forward ? t.to_stage : -1 - t.to_stage, t.microbatch}] = id;
        continue;
      }
      // Every per-transfer slot is filled before the simcall: put_async may
      // let other actors run, and their transfers must not interleave.
      w.transfers.push_back(t);
      w.comms.push_back(nullptr);  // set once put_async returns
      w.payloads.push_back(id);
      int* payload = &w.payloads.back();
      sg4::Mailbox* box = sg4::Mailbox::by_name(MailboxName(backward, t.to_stage, t.microbatch));
      const uint64_t size = w.fixed_p2p ? 0 : static_cast<uint64_t>(t.bytes);
      sg4::CommPtr comm = box->put_async(payload, size);
      w.comms[id] = comm;
      mine.push_back(comm);
    }
  }
  run.compute_end = sg4::Engine::get_clock();
  // Data-parallel gradient reduction, one bucket at a time.
  const int64_t grads = run.static_bytes[static_cast<int>(Category::kGradients)];
  const double seconds =
      w.cost.GradientSyncSeconds(Mul(run.dense_params, w.config.precision.gradient),
                                 Mul(run.expert_params, w.config.precision.gradient));
  if (seconds > 0) {
    constexpr int64_t kBucketParams = 40'000'000;  // Megatron's default bucket size
    const int64_t bucket =
        std::min(grads, Mul(kBucketParams, w.config.precision.gradient));
    const double now = sg4::Engine::get_clock();
    run.ledger.AddDelta({now, Category::kComm, bucket, "DP gradient bucket", -1, 2});
    sg4::this_actor::sleep_for(seconds);
    run.ledger.AddDelta({now + seconds, Category::kComm, -bucket, "DP gradient bucket", -1, 2});
    run.grad_sync_seconds = seconds;
  }
  w.waiting[rank] = "waits for its sends to be delivered";
  sg4::Comm::wait_all(mine);
  w.waiting[rank].clear();
  run.end = sg4::Engine::get_clock();
  if (run.gradient_copy_bytes > 0) {
    // The optimizer step's copies of the gradients in the master weights'
    // precision, kept until the next iteration's zero_grad.
    run.ledger.AddDelta({run.end, Category::kOptimizer, run.gradient_copy_bytes,
                         "optimizer step: gradient copies", -1, 2});
  }
  w.done[rank] = true;
}

int64_t CountEvents(const Schedule& s, const std::vector<std::vector<int64_t>>& stage_of,
                    const std::vector<StageProfile>& stages) {
  int64_t events = 0;
  for (int64_t r = 0; r < s.pp; ++r) {
    for (const Step& step : s.ranks[r]) {
      const StageProfile& p = stages[stage_of[r][step.chunk]];
      events += 2 * static_cast<int64_t>(p.For(step.kind).phases.size()) + 2;
      if (events < 0) return INT64_MAX;
    }
  }
  return events;
}

std::string Describe(const Bytes& b) {
  std::string out;
  for (int k = 0; k < graph::kNumCategories; ++k) {
    if (b[k] == 0) continue;
    out += std::string(out.empty() ? "" : ", ") + graph::CategoryName(static_cast<Category>(k)) +
           " " + (b[k] > 0 ? "+" : "") + std::to_string(b[k]) + " B";
  }
  return out;
}

}  // namespace

StatusOr<SimResult> Simulate(const graph::Config& c, const Schedule& given,
                             const SimOptions& options) {
  StatusOr<std::vector<StageProfile>> stages = BuildStageProfiles(c, CostModel(c));
  if (!stages.ok()) return stages.status();
  return Simulate(c, given, options, std::move(*stages));
}

StatusOr<SimResult> Simulate(const graph::Config& c, const Schedule& given,
                             const SimOptions& options, std::vector<StageProfile> stages) {
  SimResult result;
  result.schedule = given;
  if (result.schedule.routes.empty()) result.schedule.routes = c.layout.routes;
  const Schedule& schedule = result.schedule;
  const CostModel cost(c);
  result.stages = std::move(stages);
  const int64_t num_stages = static_cast<int64_t>(result.stages.size());
  // Which stage each (rank, chunk) runs, from the schedule's routes.
  std::vector<std::vector<int64_t>> stage_of(schedule.pp,
                                             std::vector<int64_t>(schedule.chunks, -1));
  for (const auto& route : schedule.routes) {
    if (static_cast<int64_t>(route.size()) != num_stages) {
      return stepsim::Status::Invalid("schedule: a route of " + std::to_string(route.size()) +
                                      " stages does not match the " + std::to_string(num_stages) +
                                      " stages of the layout");
    }
    for (int64_t st = 0; st < num_stages; ++st) {
      const graph::Hop& hop = route[st];
      if (hop.rank < 0 || hop.rank >= schedule.pp || hop.chunk < 0 || hop.chunk >= schedule.chunks) {
        return stepsim::Status::Invalid("schedule: stage " + std::to_string(st) +
                                        " is placed outside the ranks and chunks");
      }
      stage_of[hop.rank][hop.chunk] = st;
    }
  }
  for (int64_t r = 0; r < schedule.pp; ++r) {
    for (const Step& step : schedule.ranks[r]) {
      if (stage_of[r][step.chunk] < 0) {
        return stepsim::Status::Invalid("schedule: rank " + std::to_string(r) + " runs chunk " +
                                        std::to_string(step.chunk) + ", which holds no stage");
      }
    }
  }
  const int64_t events = CountEvents(schedule, stage_of, result.stages);
  if (events > options.max_events) {
    return stepsim::Status::Invalid(
        "batch.num_microbatches: the simulation would record " + std::to_string(events) +
        " memory events, more than the budget of " + std::to_string(options.max_events) +
        "; use fewer micro-batches or pipeline stages");
  }

  // Static state per rank: the stages it holds.
  StatusOr<graph::ModelParams> params = graph::CountParams(c);
  if (!params.ok()) return params.status();
  graph::Config placed = c;
  placed.layout.rank_stages = stage_of;
  StatusOr<std::vector<graph::RankStatic>> statics = graph::StaticMemoryPerRank(placed, *params);
  if (!statics.ok()) return statics.status();
  for (int64_t r = 0; r < schedule.pp; ++r) {
    const graph::StaticMemory& m = (*statics)[r].memory;
    Bytes initial{};
    initial[static_cast<int>(Category::kWeights)] = m.weights_bytes;
    initial[static_cast<int>(Category::kGradients)] = m.gradients_bytes;
    initial[static_cast<int>(Category::kOptimizer)] = m.optimizer_bytes;
    initial[kComm] = c.hardware.comm_workspace_bytes;
    std::vector<std::pair<std::string, int64_t>> buffers = graph::StaticBufferNames(c, m);
    if (c.hardware.comm_workspace_bytes > 0) {
      buffers.emplace_back("comm_workspace", c.hardware.comm_workspace_bytes);
    }
    for (const graph::NamedBytes& b : graph::FrameworkBuffers(c, stage_of[r])) {
      initial[static_cast<int>(Category::kFramework)] += b.bytes;
      buffers.emplace_back(b.name, b.bytes);
    }
    try {
      Add(m.total_bytes(), c.hardware.comm_workspace_bytes);
    } catch (const Overflow&) {
      return stepsim::Status::Invalid("hardware.comm_workspace_bytes: static memory plus the "
                                      "workspace overflows 64-bit byte counts");
    }
    RankRun run{r, Ledger(initial), initial, std::move(buffers), 0, 0, m.dense_params,
                m.expert_params, 0, 0, 0, 0, LedgerResult{}};
    try {
      run.gradient_copy_bytes = graph::OptimizerGradientCopyBytes(c, m.optimizer_bytes);
    } catch (const Overflow&) {
      return stepsim::Status::Invalid("precision: the optimizer's gradient copies overflow "
                                      "64-bit byte counts");
    }
    result.ranks.push_back(std::move(run));
  }

  // SimGrid: quiet unless verbose; CM02 without cross-traffic or TCP window
  // limits, so a transfer takes exactly latency + size / bandwidth.
  char program[] = "stepsim";
  char quiet_config[] = "--log=xbt_cfg.thresh:warning";
#if defined(__SANITIZE_ADDRESS__) || STEPSIM_SANITIZE
  // AddressSanitizer cannot follow SimGrid's hand-made stack switches: use
  // threads. The context factory must be chosen when the engine starts.
  char contexts[] = "--cfg=contexts/factory:thread";
  int argc = 3;
  char* argv[] = {program, quiet_config, contexts, nullptr};
#else
  int argc = 2;
  char* argv[] = {program, quiet_config, nullptr};
#endif
  sg4::Engine engine(&argc, argv);
  if (!options.verbose) {
    xbt_log_control_set("root.thresh:critical");
    xbt_log_control_set("root.app:file:/dev/null");
  }
  engine.set_config("network/model:CM02");
  engine.set_config("network/crosstraffic:0");
  engine.set_config("network/TCP-gamma:0");

  const bool fixed_p2p = !c.timing.p2p_us().empty();
  auto* zone = sg4::create_full_zone("cluster");
  std::vector<sg4::Host*> hosts;
  for (int64_t r = 0; r < schedule.pp; ++r) {
    hosts.push_back(zone->create_host("rank" + std::to_string(r),
                                      c.hardware.flops * c.hardware.efficiency));
  }
  // A link for every pair of ranks some route hands a micro-batch between.
  std::set<std::pair<int64_t, int64_t>> pairs;
  for (const auto& route : schedule.routes) {
    for (size_t st = 0; st + 1 < route.size(); ++st) {
      const int64_t x = route[st].rank, y = route[st + 1].rank;
      if (x != y) pairs.insert({std::min(x, y), std::max(x, y)});
    }
  }
  for (const auto& [a, b] : pairs) {
    {
      double latency = cost.PipelineLatency();
      if (fixed_p2p) {
        // One value for every hop, or the value of the sending stage: links
        // between neighbours carry the hop from the lower rank.
        const auto& v = c.timing.p2p_us();
        latency = (v.size() == 1 ? v[0] : v[static_cast<int>(a)]) * 1e-6;
      }
      const double bandwidth = cost.SameNode(a, b) ? c.hardware.nvlink_bandwidth
                                                   : c.hardware.network_bandwidth;
      sg4::Link* link = zone->create_split_duplex_link(
                                "link" + std::to_string(a) + "-" + std::to_string(b), bandwidth)
                            ->set_latency(latency);
      link->seal();
      zone->add_route(hosts[a]->get_netpoint(), hosts[b]->get_netpoint(), nullptr, nullptr,
                      {sg4::LinkInRoute(link, sg4::LinkInRoute::Direction::UP)}, true);
    }
  }
  zone->seal();

  World world{c, schedule, result.stages, cost, result.ranks};
  world.waiting.assign(schedule.pp, "");
  world.done.assign(schedule.pp, false);
  world.fixed_p2p = fixed_p2p;
  world.verbose = options.verbose;
  world.num_stages = num_stages;
  world.stage_of = stage_of;
  world.transfers.reserve(static_cast<size_t>(2 * num_stages * schedule.microbatches));
  try {
    world.batch_bytes = graph::RetainedBatchBytes(c);
  } catch (const Overflow&) {
    return stepsim::Status::Invalid("batch: the input batch's bytes overflow 64-bit counts");
  }
  world.batches_loaded.resize(schedule.pp);
  for (int64_t r = 0; r < schedule.pp; ++r) {
    world.loads_batches.push_back(graph::LoadsBatches(c, stage_of[r]));
  }

  std::vector<sg4::ActorPtr> actors;
  for (int64_t r = 0; r < schedule.pp; ++r) {
    actors.push_back(sg4::Actor::create("rank" + std::to_string(r), hosts[r], [&world, r] {
      try {
        RunRank(world, r);
      } catch (const std::exception& e) {
        world.errors.push_back("rank " + std::to_string(r) + ": " + e.what());
      }
    }));
  }
  // Eager delivery: each stage's mailboxes belong to the rank that runs it,
  // so a transfer starts when it is sent, not when it is awaited.
  for (int32_t m = 0; m < schedule.microbatches; ++m) {
    const auto& route = schedule.routes[schedule.RouteOf(m)];
    for (int64_t stage = 0; stage < num_stages; ++stage) {
      for (bool gradient : {false, true}) {
        sg4::Mailbox::by_name(MailboxName(gradient, stage, m))
            ->set_receiver(actors[route[stage].rank]);
      }
    }
  }
  bool deadlock = false;
  sg4::Engine::on_deadlock_cb([&deadlock] { deadlock = true; });
  engine.run();

  if (deadlock) {
    std::string message = "deadlock: the schedule cannot complete at " +
                          std::to_string(Micros(sg4::Engine::get_clock())) + " us";
    for (const std::string& e : world.errors) message += "\n  " + e;
    for (int64_t r = 0; r < schedule.pp; ++r) {
      message += "\n  rank " + std::to_string(r) + ": " +
                 (world.done[r] ? std::string("finished")
                                : (world.waiting[r].empty() ? std::string("blocked")
                                                            : world.waiting[r]));
    }
    return options.schedule_from_file ? stepsim::Status::Invalid(message)
                                      : stepsim::Status::Failed(message);
  }
  if (!world.errors.empty()) {
    std::string message = "simulation failed:";
    for (const std::string& e : world.errors) message += "\n  " + e;
    return options.schedule_from_file ? stepsim::Status::Invalid(message)
                                      : stepsim::Status::Failed(message);
  }

  // Pipeline buffers: the sender's from transfer start to delivery; the
  // receiver's from transfer start until the step that consumes it.
  for (size_t i = 0; i < world.transfers.size(); ++i) {
    Transfer& t = world.transfers[i];
    const bool wire = world.comms[i] != nullptr;
    if (wire) {
      t.start = world.comms[i]->get_start_time();
      t.end = world.comms[i]->get_finish_time();
    }
    const std::string what = std::string(t.gradient ? "gradient " : "activation ") +
                              std::to_string(t.microbatch);
    if (wire) {  // a hand-off inside one rank has no send buffer
      result.ranks[t.from_rank].ledger.AddDelta(
          {t.start, Category::kComm, t.bytes, "send " + what, t.microbatch, 0});
      result.ranks[t.from_rank].ledger.AddDelta(
          {t.end, Category::kComm, -t.bytes, "send " + what, t.microbatch, 2});
    }
    result.ranks[t.to_rank].ledger.AddDelta(
        {t.start, Category::kComm, t.bytes, "recv " + what, t.microbatch, 0});
  }
  result.transfers = std::move(world.transfers);

  std::string leaks;
  for (RankRun& run : result.ranks) {
    result.step_time = std::max(result.step_time, run.end);
    result.compute_end = std::max(result.compute_end, run.compute_end);
    run.memory = run.ledger.Replay();
    Bytes diff{};
    for (int k = 0; k < graph::kNumCategories; ++k) diff[k] = run.memory.end[k] - run.static_bytes[k];
    // What the step leaves behind on purpose: the retained input batches.
    diff[static_cast<int>(Category::kFramework)] -= run.retained_bytes;
    diff[static_cast<int>(Category::kOptimizer)] -= run.gradient_copy_bytes;
    if (run.retained_bytes > 0) run.buffers.emplace_back("retained_batches", run.retained_bytes);
    if (run.gradient_copy_bytes > 0) {
      run.buffers.emplace_back("optimizer_gradient_copies", run.gradient_copy_bytes);
    }
    if (diff != Bytes{}) {
      leaks += "\n  rank " + std::to_string(run.rank) + ": " + Describe(diff);
    }
  }
  if (!leaks.empty()) {
    return stepsim::Status::Failed("the ledger did not return to its static state after the "
                                   "step (a stepsim bug):" + leaks);
  }
  return result;
}

}  // namespace stepsim::sim
