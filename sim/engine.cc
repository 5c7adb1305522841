#include "sim/engine.h"

#include <simgrid/s4u.hpp>
#include <spdlog/spdlog.h>
#include <xbt/log.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include "sim/cost_model.h"
#include "sim/plan.h"
#include "sim/platform.h"

namespace stepsim::sim {
namespace {

namespace sg4 = simgrid::s4u;
using graph::Category;

// Everything the rank actors share. SimGrid runs actors one at a time, so
// plain containers are safe.
struct World {
  const Plan& plan;
  const std::vector<StageProfile>& stages;
  std::vector<RankRun>& ranks;
  int64_t chunks = 1;
  bool verbose = false;
  std::vector<Transfer> transfers{};
  std::deque<int> payloads{};  // stable addresses of transfer indices
  std::vector<sg4::Mailbox*> mailboxes{};  // per channel, for transfers on a wire
  std::vector<std::pair<int, sg4::CommPtr>> unfinished{};  // received before their end
  std::vector<int> local{};    // per channel: the transfer handed over inside a rank, or -1
  std::vector<int64_t> waiting{};  // per rank: the step blocked on its input, or -1
  std::vector<std::set<int32_t>> batches_loaded{};  // per rank: input batches kept
  std::vector<bool> done{};
  std::vector<std::string> errors{};
  // Every rank meets every other before its optimizer step (RunRank): the
  // ranks there so far, suspended until the last arrives. (Not an
  // s4u::Barrier: the World dies before the engine kills a deadlocked run's
  // actors, which must not be inside an object that died with it.)
  std::vector<sg4::ActorPtr> parked{};
  std::vector<bool> at_optimizer_step{};  // per rank: waiting there
};

double Micros(double seconds) { return seconds * 1e6; }

// "BW0 waits for the gradient of micro-batch 0 from stage 3 (rank 3)".
std::string Waiting(const World& w, const PlanStep& ps) {
  const bool forward = ps.step.kind == StepKind::kForward;
  return StepName(ps.step, w.chunks) + " waits for the " +
         (forward ? "activation" : "gradient") + " of micro-batch " +
         std::to_string(ps.step.microbatch) + " from stage " +
         std::to_string(forward ? ps.stage - 1 : ps.stage + 1) + " (rank " +
         std::to_string(ps.input_from) + ")";
}

void RunRank(World& w, int64_t rank) {
  RankRun& run = w.ranks[rank];
  const RankPlan& plan = w.plan.ranks[rank];
  // Waits for step i's input and returns its transfer.
  auto receive = [&](size_t i) {
    const PlanStep& ps = plan.steps[i];
    const bool forward = ps.step.kind == StepKind::kForward;
    if (ps.input_from == rank) {
      // Handed over by another chunk of this rank, earlier in its list.
      const int id = w.local[ps.input];
      if (id < 0) {
        throw std::runtime_error(StepName(ps.step, w.chunks) +
                                 " needs its input from this rank's own stage " +
                                 std::to_string(forward ? ps.stage - 1 : ps.stage + 1) +
                                 ", which has not run yet");
      }
      return id;
    }
    w.waiting[rank] = static_cast<int64_t>(i);
    // The receiving side reads the transfer's times: sends are detached,
    // so that no rank keeps a growing list of pending activities (SimGrid
    // scans an actor's list whenever one of them completes).
    int* payload = nullptr;
    const sg4::CommPtr comm = w.mailboxes[ps.input]->get_async<int>(&payload);
    comm->wait();
    const int id = *payload;
    w.transfers[id].start = comm->get_start_time();
    w.transfers[id].end = comm->get_finish_time();
    // A payload of no bytes (fixed hop times) is handed over at once, before
    // its latency has elapsed: its end is known after the run.
    if (w.transfers[id].end < 0) w.unfinished.emplace_back(id, comm);
    w.waiting[rank] = -1;
    return id;
  };
  // Hands step ps's result on.
  auto send = [&](const PlanStep& ps) {
    if (ps.output < 0) return;
    const bool forward = ps.step.kind == StepKind::kForward;
    Transfer t;
    t.from_rank = rank;
    t.from_stage = ps.stage;
    t.to_stage = forward ? ps.stage + 1 : ps.stage - 1;
    t.to_rank = ps.output_to;
    t.gradient = !forward;
    t.microbatch = ps.step.microbatch;
    t.bytes = ps.output_bytes;
    const int id = static_cast<int>(w.transfers.size());
    if (t.to_rank == rank) {
      t.start = t.end = sg4::Engine::get_clock();
      w.transfers.push_back(t);
      w.local[ps.output] = id;
      return;
    }
    // Every per-transfer slot is filled before the simcall: starting the
    // send may let other actors run, and their transfers must not
    // interleave. The receiver fills in the times on the wire.
    t.start = t.end = -1;
    w.transfers.push_back(t);
    w.payloads.push_back(id);
    const uint64_t size = w.plan.fixed_p2p ? 0 : static_cast<uint64_t>(t.bytes);
    w.mailboxes[ps.output]->put_init(&w.payloads.back(), size)->detach();
  };
  // Received gradients a split B leaves for its W, by micro-batch and chunk.
  std::map<int64_t, int> held_for_weight;
  int paired_input = -1;        // the pair's backward input, received with the forward
  const PlanStep* paired_output = nullptr;  // the pair's forward result, sent at its end
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const PlanStep& ps = plan.steps[i];
    const Step& step = ps.step;
    const StageProfile& profile = w.stages[ps.stage];
    const bool forward = step.kind == StepKind::kForward;
    int id = -1;
    if (ps.input >= 0) id = ps.pair == PlanStep::Pair::kSecond ? paired_input : receive(i);
    // An overlapped pair starts when both of its inputs are there.
    if (ps.pair == PlanStep::Pair::kFirst && plan.steps[i + 1].input >= 0) {
      paired_input = receive(i + 1);
    }
    const int64_t key = static_cast<int64_t>(step.microbatch) * w.chunks + step.chunk;
    auto consume = [&](int transfer, double at) {
      Transfer& t = w.transfers[transfer];
      t.consumed = at;
      run.ledger.AddDelta({t.consumed, Category::kComm, -t.bytes,
                           std::string(t.gradient ? "recv gradient " : "recv activation ") +
                               std::to_string(step.microbatch),
                           step.microbatch, 1});
    };
    if (id >= 0) {
      // An activation becomes the first op's kept input when the forward
      // starts; a gradient is read by the backward until it ends, or until
      // a W apart from it ends when that W reads it too.
      if (step.kind == StepKind::kBackward && profile.dag.weight_reads_received_gradient) {
        held_for_weight[key] = id;
      } else {
        consume(id, sg4::Engine::get_clock() + (forward ? 0 : ps.duration));
      }
    }
    if (step.kind == StepKind::kWeight) {
      if (auto it = held_for_weight.find(key); it != held_for_weight.end()) {
        consume(it->second, sg4::Engine::get_clock() + ps.duration);
        held_for_weight.erase(it);
      }
    }
    const double start = sg4::Engine::get_clock();
    if (forward && w.plan.batch_bytes > 0 && plan.loads_batches &&
        w.batches_loaded[rank].insert(step.microbatch).second) {
      // The training loop keeps this micro-batch's input batch until the
      // next iteration (conventions.retain_batches).
      run.ledger.AddDelta({start, Category::kFramework, w.plan.batch_bytes,
                           "input batch " + std::to_string(step.microbatch), step.microbatch, 1});
      run.retained_bytes += w.plan.batch_bytes;
    }
    run.ledger.AddStep({start, &profile, step, w.chunks, ps.scale});
    if (w.verbose) {
      spdlog::info("[{:.3f} us] rank {} runs {} on stage {} for {:.3f} us", Micros(start), rank,
                   StepName(step, w.chunks), ps.stage, Micros(ps.duration));
    }
    sg4::this_actor::sleep_for(ps.duration);
    run.busy += ps.duration;
    if (ps.pair == PlanStep::Pair::kFirst) {
      paired_output = &ps;  // the pair's results leave together, forward first
      continue;
    }
    if (paired_output != nullptr) send(*paired_output);
    paired_output = nullptr;
    send(ps);
  }
  run.compute_end = sg4::Engine::get_clock();
  // Data-parallel gradient reduction, one bucket at a time.
  if (plan.grad_sync_seconds > 0) {
    const double now = sg4::Engine::get_clock();
    run.ledger.AddDelta(
        {now, Category::kComm, plan.grad_bucket_bytes, "DP gradient bucket", -1, 2});
    sg4::this_actor::sleep_for(plan.grad_sync_seconds);
    run.ledger.AddDelta({now + plan.grad_sync_seconds, Category::kComm,
                         -plan.grad_bucket_bytes, "DP gradient bucket", -1, 2});
    run.grad_sync_seconds = plan.grad_sync_seconds;
  }
  // The optimizer step begins with the norm of the gradients for clipping
  // (Megatron's clip_grad, 1.0 by default; torch's clip_grad_norm_),
  // all-reduced over every rank (Megatron's get_grad_stats_parallel_group:
  // the whole world under the distributed optimizer, the model-parallel
  // group otherwise), so no rank steps before the slowest has reduced its
  // gradients (the scalar all-reduce itself is not timed). Then the step
  // (memory-bound: plan.optimizer_seconds), and under ZeRO-1/2 the
  // all-gather of the weights it updated.
  w.at_optimizer_step[rank] = true;
  if (w.parked.size() + 1 < w.ranks.size()) {
    w.parked.push_back(sg4::Actor::self());
    sg4::this_actor::suspend();
  } else {
    for (const sg4::ActorPtr& a : w.parked) a->resume();
    w.parked.clear();
  }
  w.at_optimizer_step[rank] = false;
  const double optimizer_step = sg4::Engine::get_clock();
  run.optimizer_step = optimizer_step;
  if (plan.optimizer_seconds > 0) {
    sg4::this_actor::sleep_for(plan.optimizer_seconds);
    run.optimizer_seconds = plan.optimizer_seconds;
  }
  if (plan.param_gather_seconds > 0) {
    sg4::this_actor::sleep_for(plan.param_gather_seconds);
    run.param_gather_seconds = plan.param_gather_seconds;
  }
  // The rank's end also waits for its last send's delivery (filled in
  // once every transfer's times are known).
  run.end = sg4::Engine::get_clock();
  if (run.gradient_copy_bytes > 0) {
    // The optimizer step's copies of the gradients in the master weights'
    // precision, kept until the next iteration's zero_grad.
    run.ledger.AddDelta({optimizer_step, Category::kOptimizer, run.gradient_copy_bytes,
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

// `stages`: the stages' profiles for `c`, or null to build them here.
StatusOr<SimResult> SimulateOnSimGrid(const graph::Config& c, const Schedule& given,
                                      const SimOptions& options,
                                      std::vector<StageProfile>* stages) {
  SimResult result;
  result.schedule = given;
  if (result.schedule.routes.empty()) result.schedule.routes = c.layout.routes;
  const Schedule& schedule = result.schedule;
  const CostModel cost(c);
  if (stages != nullptr) {
    result.stages = std::move(*stages);
  } else {
    StatusOr<std::vector<StageProfile>> built = BuildStageProfiles(c, cost);
    if (!built.ok()) return built.status();
    result.stages = std::move(*built);
  }
  const int64_t num_stages = static_cast<int64_t>(result.stages.size());
  StatusOr<std::vector<std::vector<int64_t>>> stage_of = PlaceStages(schedule, num_stages);
  if (!stage_of.ok()) return stage_of.status();
  const int64_t events = CountEvents(schedule, *stage_of, result.stages);
  if (events > options.max_events) {
    return stepsim::Status::Invalid(
        "batch.num_microbatches: the simulation would record " + std::to_string(events) +
        " memory events, more than the budget of " + std::to_string(options.max_events) +
        "; use fewer micro-batches or pipeline stages");
  }
  StatusOr<Plan> plan = BuildPlan(c, schedule, result.stages, cost);
  if (!plan.ok()) return plan.status();
  for (int64_t r = 0; r < schedule.pp; ++r) {
    const RankPlan& p = plan->ranks[r];
    RankRun run{r, Ledger(p.static_bytes), p.static_bytes, p.buffers, 0, p.gradient_copy_bytes,
                p.dense_params, p.expert_params, 0, 0, 0, 0, 0, 0, 0, LedgerResult{}};
    result.ranks.push_back(std::move(run));
  }

  const std::unique_ptr<sg4::Engine> engine = StartEngine(options.verbose);
  const std::vector<sg4::Host*> hosts = BuildPlatform(schedule.pp, plan->host_speed, plan->links);

  World world{*plan, result.stages, result.ranks};
  world.chunks = schedule.chunks;
  world.verbose = options.verbose;
  world.waiting.assign(schedule.pp, -1);
  world.batches_loaded.resize(schedule.pp);
  world.done.assign(schedule.pp, false);
  world.at_optimizer_step.assign(schedule.pp, false);
  world.local.assign(plan->wire_receiver.size(), -1);
  world.mailboxes.assign(plan->wire_receiver.size(), nullptr);
  world.transfers.reserve(static_cast<size_t>(2 * num_stages * schedule.microbatches));

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
  // Eager delivery: each channel's mailbox belongs to the rank that
  // receives it, so a transfer starts when it is sent, not when it is awaited.
  for (size_t ch = 0; ch < plan->wire_receiver.size(); ++ch) {
    if (plan->wire_receiver[ch] < 0) continue;
    world.mailboxes[ch] = sg4::Mailbox::by_name(plan->ChannelName(static_cast<int64_t>(ch)));
    world.mailboxes[ch]->set_receiver(actors[plan->wire_receiver[ch]]);
  }
  bool deadlock = false;
  sg4::Engine::on_deadlock_cb([&deadlock] { deadlock = true; });
  engine->run();

  if (deadlock) {
    std::string message = "deadlock: the schedule cannot complete at " +
                          std::to_string(Micros(sg4::Engine::get_clock())) + " us";
    for (const std::string& e : world.errors) message += "\n  " + e;
    for (int64_t r = 0; r < schedule.pp; ++r) {
      message += "\n  rank " + std::to_string(r) + ": " +
                 (world.done[r]                ? std::string("finished")
                  : world.at_optimizer_step[r] ? std::string("waits for every rank's gradients "
                                                             "before the optimizer step")
                  : world.waiting[r] < 0
                      ? std::string("blocked")
                      : Waiting(world, plan->ranks[r].steps[world.waiting[r]]));
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

  for (const auto& [id, comm] : world.unfinished) world.transfers[id].end = comm->get_finish_time();
  // Pipeline buffers: the sender's from transfer start to delivery; the
  // receiver's from transfer start until the step that consumes it.
  for (size_t i = 0; i < world.transfers.size(); ++i) {
    Transfer& t = world.transfers[i];
    const bool wire = t.from_rank != t.to_rank;
    if (wire && t.end < 0) {
      return stepsim::Status::Failed("simulation failed: the " +
                                     std::string(t.gradient ? "gradient" : "activation") +
                                     " of micro-batch " + std::to_string(t.microbatch) +
                                     " from stage " + std::to_string(t.from_stage) +
                                     " was never received (a stepsim bug)");
    }
    if (wire) {
      RankRun& sender = result.ranks[t.from_rank];
      sender.end = std::max(sender.end, t.end);
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

}  // namespace

#ifdef STEPSIM_ENGINE_MODULE
// The module's one entry point, found by engine_loader.cc with dlsym;
// `stages` may be null.
extern "C" void stepsim_engine_simulate(const graph::Config* config, const Schedule* schedule,
                                        const SimOptions* options,
                                        std::vector<StageProfile>* stages,
                                        StatusOr<SimResult>* result) {
  *result = SimulateOnSimGrid(*config, *schedule, *options, stages);
}
#else
StatusOr<SimResult> Simulate(const graph::Config& config, const Schedule& schedule,
                             const SimOptions& options) {
  return SimulateOnSimGrid(config, schedule, options, nullptr);
}

StatusOr<SimResult> Simulate(const graph::Config& config, const Schedule& schedule,
                             const SimOptions& options, std::vector<StageProfile> stages) {
  return SimulateOnSimGrid(config, schedule, options, &stages);
}

Status LoadEngine() { return Status::Ok(); }
#endif

}  // namespace stepsim::sim
