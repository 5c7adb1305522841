#include "sim/memory_stream.h"

#include <atomic>
#include <deque>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>

namespace stepsim::sim {
namespace {

using graph::Category;
using Handle = CachingAllocator::Handle;

constexpr int kCompute = static_cast<int>(CudaStream::kCompute);
constexpr int kPipeline = static_cast<int>(CudaStream::kPipeline);
constexpr int kEpComm = static_cast<int>(CudaStream::kEpComm);
constexpr int kDpComm = static_cast<int>(CudaStream::kDpComm);

// The stream of a buffer's delta: the DP gradient bucket's on the DP
// stream, pipeline sends and receives on the pipeline stream.
int BufferStream(const Delta& d) { return d.what.starts_with("DP ") ? kDpComm : kPipeline; }

class StreamReplayer {
 public:
  StreamReplayer(const AllocatorOptions& options, const RankRun& run, bool labels,
                 int64_t capture_at, const MemoryStreamOptions& stream)
      : allocator_(options), ledger_(run.ledger), labels_(labels), capture_at_(capture_at),
        on_change_(stream.on_change) {
    out_.rank = run.rank;
    // Static state and the workspace, live from time 0.
    const Bytes& initial = run.ledger.initial();
    for (Category c : {Category::kWeights, Category::kGradients, Category::kOptimizer}) {
      const std::string name = graph::CategoryName(c);
      Allocate(initial[static_cast<int>(c)], kCompute, 0, {&name, c});
    }
    const int64_t other = Total(initial) - initial[static_cast<int>(Category::kWeights)] -
                          initial[static_cast<int>(Category::kGradients)] -
                          initial[static_cast<int>(Category::kOptimizer)];
    const std::string workspace = "communication workspace";
    Allocate(other, kDpComm, 0, {&workspace, Category::kComm});
    out_.reserved.push_back({0, allocator_.stats().reserved, -1});
  }

  // Replays the whole ledger (Ledger::Walk's order).
  void Run() {
    ledger_.Walk([this](const Delta& d) { OnDelta(d); },
                 [this](const StepRecord& r) { BeginStep(r); },
                 [this](const StepRecord& r, const Phase& ph, bool free, double time) {
                   OnPhase(r, ph, free, time);
                 });
  }

  StatusOr<AllocatorRun> Finish() {
    if (!status_.ok()) return status_;
    out_.end = allocator_.stats();
    if (labels_) {
      // A snapshot taken at the peak holds the events up to it.
      for (const TraceEntry& e : allocator_.trace()) {
        if (capture_at_ < 0 || e.event <= capture_at_) out_.trace.push_back(e);
      }
      out_.labels = std::move(labels_list_);
      out_.event_times = std::move(event_times_);
    }
    return std::move(out_);
  }

 private:
  void OnDelta(const Delta& d) {
    if (!status_.ok()) return;
    const int stream = BufferStream(d);
    // A buffer is freed by the delta of the same name (which names its
    // micro-batch); the oldest first.
    auto it = buffers_.find(d.what);
    if (it == buffers_.end()) it = buffers_.emplace(d.what, std::vector<Handle>{}).first;
    std::vector<Handle>& queue = it->second;
    if (d.bytes > 0) {
      queue.push_back(
          Allocate(d.bytes, stream, d.time, {&d.what, d.category, d.microbatch, nullptr, nullptr, &d}));
    } else if (d.bytes < 0) {
      if (queue.empty()) return Fail("a free of \"" + d.what + "\" without its allocation");
      Free(queue.front(), d.time);
      queue.erase(queue.begin());
    }
    ++change_;  // every delta is a change of the ledger
    Notify(d.time);
  }

  // A step's DAG tables and its micro-batch's tensors, for its phases.
  void BeginStep(const StepRecord& r) {
    step_table_ = &TableOf(r.stage->dag);
    step_slots_ = &SlotsOf(r);
  }

  void OnPhase(const StepRecord& r, const Phase& ph, bool free, double time) {
    if (!status_.ok()) return;
    const graph::StageDag& dag = r.stage->dag;
    const graph::Op& op = dag.ops[ph.op];
    const OpTable& table = *step_table_;
    std::vector<Handle>& slots = *step_slots_;
    bool moves = false;  // whether the phase moves bytes (a change of the ledger)
    if (!free) {
      // ZeRO-3: the phase allocates more than its op's tensors (its group's
      // gathered weights, then the next group's).
      for (const int64_t gathered : ph.gathered_alloc) {
        if (gathered <= 0) continue;
        moves = true;
        static const std::string kGathered = "gathered weights";
        gathered_.push_back(
            {Allocate(gathered, kDpComm, time, {&kGathered, Category::kComm, -1, &r, &op}),
             gathered});
      }
      if (ph.reduced_alloc > 0) {
        // ZeRO-2/3: its group's unsharded gradients, held on the DP
        // stream until their reduce-scatter completes (FSDP2 copies them
        // into a reduce-scatter input allocated on that stream).
        moves = true;
        static const std::string kReduced = "unsharded gradients";
        reduced_.push_back(
            {Allocate(ph.reduced_alloc, kDpComm, time, {&kReduced, Category::kComm, -1, &r, &op}),
             ph.reduced_alloc});
      }
      const OpTable::Range range = table.allocs[ph.op];
      for (int32_t i = range.begin; i < range.end; ++i) {
        const OpTable::Event& e = table.events[i];
        const graph::Tensor& t = dag.tensors[e.tensor];
        if (slots[e.tensor] != kUnset) return Fail("tensor " + t.name + " allocated twice");
        slots[e.tensor] = Allocate(t.bytes, e.stream, time, {&t.name, t.category, -1, &r, &op});
      }
      moves = moves || range.moves;
    } else {
      const OpTable::Range range = table.frees[ph.op];
      for (int32_t i = range.begin; i < range.end; ++i) {
        const int32_t tensor = table.events[i].tensor;
        if (slots[tensor] == kUnset) {
          return Fail("tensor " + dag.tensors[tensor].name + " freed unallocated");
        }
        Free(slots[tensor], time);
        slots[tensor] = kUnset;
      }
      moves = range.moves || ph.gathered_free != 0 || ph.reduced_free != 0;
      if (!FreeOldest(gathered_, ph.gathered_free, time)) {
        return Fail("gathered weights freed that were not gathered");
      }
      if (!FreeOldest(reduced_, ph.reduced_free, time)) {
        return Fail("unsharded gradients freed that were not allocated");
      }
    }
    // A change of the ledger when the phase moves bytes (ReplayChanges).
    if (moves) ++change_;
    Notify(time);
  }

  static constexpr Handle kUnset = -3;

  // Where a request comes from: a tensor or buffer, and the step and op
  // for DAG tensors.
  struct Source {
    const std::string* name;
    Category category;
    int32_t microbatch = -1;
    const StepRecord* step = nullptr;
    const graph::Op* op = nullptr;
    const Delta* delta = nullptr;  // a buffer's delta
  };

  static AllocationLabel LabelOf(const Source& s) {
    AllocationLabel l;
    l.tensor = *s.name;
    l.category = graph::CategoryName(s.category);
    l.microbatch = s.microbatch;
    if (s.step != nullptr) {
      l.op = std::string(graph::OpKindName(s.op->kind)) + " " + s.op->name;
      l.step = StepName(s.step->step, s.step->chunks);
      l.layer = s.op->layer;
      l.microbatch = s.step->step.microbatch;
      l.stage = s.step->stage->stage;
    }
    return l;
  }

  // A DAG's ops' allocations and frees, each in the op's order, apart:
  // what OnPhase walks.
  struct OpTable {
    struct Event {
      int32_t tensor;
      int32_t stream;
    };
    struct Range {
      int32_t begin = 0, end = 0;
      bool moves = false;  // a tensor of non-zero bytes
    };
    std::vector<Event> events;
    std::vector<Range> allocs, frees;  // by op
  };

  const OpTable& TableOf(const graph::StageDag& dag) {
    auto it = tables_.find(&dag);
    if (it == tables_.end()) {
      OpTable t;
      t.allocs.resize(dag.ops.size());
      t.frees.resize(dag.ops.size());
      for (size_t o = 0; o < dag.ops.size(); ++o) {
        const graph::Op& op = dag.ops[o];
        for (bool allocate : {true, false}) {
          OpTable::Range& range = allocate ? t.allocs[o] : t.frees[o];
          range.begin = static_cast<int32_t>(t.events.size());
          for (const graph::TensorEvent& e : op.events) {
            if (e.allocate != allocate) continue;
            const graph::Tensor& tensor = dag.tensors[e.tensor];
            // EP dispatch/combine buffers on the EP stream.
            const bool ep = tensor.category == Category::kComm && op.comm_bytes > 0;
            t.events.push_back({e.tensor, ep ? kEpComm : kCompute});
            range.moves = range.moves || tensor.bytes != 0;
          }
          range.end = static_cast<int32_t>(t.events.size());
        }
      }
      it = tables_.emplace(&dag, std::move(t)).first;
    }
    return it->second;
  }

  // The handles of one (stage, micro-batch)'s DAG tensors.
  std::vector<Handle>& SlotsOf(const StepRecord& r) {
    const uint64_t key = (static_cast<uint64_t>(r.stage->stage) << 32) |
                         static_cast<uint32_t>(r.step.microbatch);
    std::vector<Handle>& slots = slots_[key];
    if (slots.empty()) slots.assign(r.stage->dag.tensors.size(), kUnset);
    return slots;
  }

  // Serves a request; the first OOM is recorded and the capacity lifted so
  // the rest of the step shows what it would need.
  Handle Allocate(int64_t bytes, int stream, double time, const Source& source) {
    int64_t tag = -1;
    if (labels_) {
      tag = static_cast<int64_t>(labels_list_.size());
      labels_list_.push_back(LabelOf(source));
    }
    Handle h = allocator_.Allocate(bytes, stream, tag);
    Stamp(time);
    if (h == CachingAllocator::kOutOfMemory) {
      if (!out_.oom) {
        out_.oom = true;
        const StepRecord* r = source.step;
        out_.oom_op = r != nullptr ? StepName(r->step, r->chunks) + " " +
                                         graph::OpKindName(source.op->kind) + " " + source.op->name
                                   : *source.name;
        out_.oom_request = bytes;
        out_.oom_largest_free = allocator_.LargestFreeBlock();
        // The step and delta are the ledger's own (Ledger::Walk hands them).
        if (r != nullptr) out_.oom_step = r - ledger_.steps().data();
        if (source.delta != nullptr) out_.oom_delta = source.delta - ledger_.deltas().data();
      }
      allocator_.LiftCapacity();
      h = allocator_.Allocate(bytes, stream, tag);
      Stamp(time);
      if (h == CachingAllocator::kOutOfMemory && status_.ok()) {
        status_ = Status::Invalid("model: rank " + std::to_string(out_.rank) + " needs a block of " +
                                  std::to_string(bytes) + " B (" + *source.name +
                                  "), beyond what a caching allocator can serve");
      }
      if (h == CachingAllocator::kOutOfMemory) return CachingAllocator::kNoBlock;
    }
    const int64_t reserved = allocator_.stats().reserved;
    if (reserved > out_.reserved_peak) {
      out_.reserved_peak = reserved;
      out_.reserved_peak_time = time;
      out_.live_at_peak = allocator_.stats().requested;
      out_.largest_free_at_peak = allocator_.LargestFreeBlock();
      out_.peak_event = allocator_.events() - 1;
    }
    if (capture_at_ >= 0 && allocator_.events() - 1 == capture_at_) {
      out_.segments_at_peak = allocator_.Snapshot();
    }
    return h;
  }

  void Free(Handle h, double time) {
    allocator_.Free(h);
    Stamp(time);
  }

  void Stamp(double time) {
    if (labels_) event_times_.push_back(time);
  }

  // After each ledger event: the reserved curve and the caller's check.
  void Notify(double time) {
    RecordReserved(time);
    if (on_change_) on_change_(time, allocator_.stats().requested);
  }

  void RecordReserved(double time) {
    const int64_t reserved = allocator_.stats().reserved;
    if (out_.reserved.back().bytes == reserved) return;
    if (out_.reserved.size() > 1 && out_.reserved.back().change == change_) {
      out_.reserved.back().bytes = reserved;  // an event that is no change
    } else {
      out_.reserved.push_back({time, reserved, change_});
    }
  }

  // Frees `bytes` of `held`'s blocks, oldest first; false unless they make
  // up exactly that.
  bool FreeOldest(std::deque<std::pair<Handle, int64_t>>& held, int64_t bytes, double time) {
    while (bytes > 0) {
      if (held.empty() || held.front().second > bytes) return false;
      bytes -= held.front().second;
      Free(held.front().first, time);
      held.pop_front();
    }
    return true;
  }

  void Fail(const std::string& message) {
    if (status_.ok()) {
      status_ = Status::Failed("rank " + std::to_string(out_.rank) +
                               ": the allocation stream is inconsistent (a stepsim bug): " +
                               message);
    }
  }

  CachingAllocator allocator_;
  const Ledger& ledger_;
  int64_t change_ = -1;  // the ledger's changes so far, less one
  bool labels_;
  int64_t capture_at_;
  std::function<void(double, int64_t)> on_change_;
  AllocatorRun out_;
  Status status_;
  std::vector<AllocationLabel> labels_list_;
  std::vector<double> event_times_;
  std::unordered_map<uint64_t, std::vector<Handle>> slots_;
  std::unordered_map<const graph::StageDag*, OpTable> tables_;
  const OpTable* step_table_ = nullptr;      // the current step's (BeginStep)
  std::vector<Handle>* step_slots_ = nullptr;
  std::unordered_map<std::string, std::vector<Handle>> buffers_;
  std::deque<std::pair<Handle, int64_t>> gathered_;  // (block, bytes), oldest first
  std::deque<std::pair<Handle, int64_t>> reduced_;   // unsharded gradients, likewise
};

// A one-to-one correspondence of keys, built pair by pair.
template <typename Key>
class Correspondence {
 public:
  // Whether x and y may correspond given the pairs so far (and pairs them).
  bool Pair(const Key& x, const Key& y) {
    const auto [to, added] = forward_.try_emplace(x, y);
    if (!added) return to->second == y;
    return backward_.try_emplace(y, x).second;
  }

 private:
  std::unordered_map<Key, Key> forward_, backward_;
};

// The op of `run`'s OOM, made replaying ledger `a`, as it is named in the
// alike ledger `b`: after b's own step (its micro-batch and chunk) or
// buffer at the same place. Alike ledgers correspond step by step and
// delta by delta, and a step's OOM op is its step's name, then the op's.
std::string OomOpOf(const AllocatorRun& run, const Ledger& a, const Ledger& b) {
  if (run.oom_delta >= 0) return b.deltas()[run.oom_delta].what;
  if (run.oom_step < 0) return run.oom_op;  // the static state, named alike
  const StepRecord& x = a.steps()[run.oom_step];
  const StepRecord& y = b.steps()[run.oom_step];
  return StepName(y.step, y.chunks) + run.oom_op.substr(StepName(x.step, x.chunks).size());
}

}  // namespace

const char* CudaStreamName(int stream) {
  switch (stream) {
    case kCompute: return "compute";
    case kPipeline: return "pipeline";
    case kEpComm: return "ep";
    case kDpComm: return "dp";
  }
  return "?";
}

bool ReplaysAlike(const Ledger& a, const Ledger& b) {
  if (a.initial() != b.initial() || a.steps().size() != b.steps().size() ||
      a.deltas().size() != b.deltas().size()) {
    return false;
  }
  Correspondence<uint64_t> microbatches;
  for (size_t i = 0; i < a.steps().size(); ++i) {
    const StepRecord& x = a.steps()[i];
    const StepRecord& y = b.steps()[i];
    if (x.start != y.start || x.stage != y.stage || x.step.kind != y.step.kind ||
        x.scale != y.scale) {
      return false;
    }
    const uint64_t stage = static_cast<uint64_t>(x.stage->stage) << 32;
    if (!microbatches.Pair(stage | static_cast<uint32_t>(x.step.microbatch),
                           stage | static_cast<uint32_t>(y.step.microbatch))) {
      return false;
    }
  }
  Correspondence<std::string_view> names;
  for (size_t i = 0; i < a.deltas().size(); ++i) {
    const Delta& x = a.deltas()[i];
    const Delta& y = b.deltas()[i];
    if (x.time != y.time || x.bytes != y.bytes || x.tie != y.tie ||
        BufferStream(x) != BufferStream(y) || !names.Pair(x.what, y.what)) {
      return false;
    }
  }
  return true;
}

AllocatorOptions AllocatorOptionsFor(const graph::Config& c) {
  AllocatorOptions o;
  o.capacity = std::max<int64_t>(0, c.hardware.hbm_bytes - c.hardware.runtime_overhead_bytes);
  if (c.allocator.max_split_size_mb > 0) o.max_split_size = c.allocator.max_split_size_mb << 20;
  o.max_non_split_rounding = c.allocator.max_non_split_rounding_mb << 20;
  o.roundup_power2_divisions = c.allocator.roundup_power2_divisions;
  o.expandable_segments = c.allocator.expandable_segments;
  // PyTorch reserves 9/8 of the device's memory for an expandable segment.
  o.expandable_address_space = c.hardware.hbm_bytes + c.hardware.hbm_bytes / 8;
  return o;
}

StatusOr<AllocatorRun> ReplayAllocator(const AllocatorOptions& allocator, const RankRun& run,
                                       const MemoryStreamOptions& options) {
  if (!options.snapshot) {
    StreamReplayer replay(allocator, run, false, -1, options);
    replay.Run();
    return replay.Finish();
  }
  // Find the peak first, then replay again recording everything and
  // capture the segments right after the peak's event.
  int64_t peak_event = -1;
  {
    StreamReplayer first(allocator, run, false, -1, MemoryStreamOptions{});
    first.Run();
    StatusOr<AllocatorRun> r = first.Finish();
    if (!r.ok()) return r.status();
    peak_event = r->peak_event;
  }
  AllocatorOptions recording = allocator;
  recording.record_trace = true;
  StreamReplayer replay(recording, run, true, peak_event, options);
  replay.Run();
  return replay.Finish();
}

StatusOr<std::vector<AllocatorRun>> ReplayAllocators(const graph::Config& config,
                                                     const SimResult& result,
                                                     int64_t snapshot_rank, int threads) {
  std::vector<AllocatorRun> out;
  if (config.allocator.kind == Allocator::NONE) return out;
  const AllocatorOptions options = AllocatorOptionsFor(config);
  const size_t ranks = result.ranks.size();
  // A rank whose ledger makes the same allocator calls as an earlier one's
  // (DualPipe's mirror ranks do) shares its replay: source[i] is the rank
  // replayed for rank i. The snapshot's rank keeps its labels: it replays.
  std::vector<size_t> source(ranks), replayed;
  for (size_t i = 0; i < ranks; ++i) {
    source[i] = i;
    if (result.ranks[i].rank != snapshot_rank) {
      for (size_t j : replayed) {
        if (result.ranks[j].rank != snapshot_rank &&
            ReplaysAlike(result.ranks[j].ledger, result.ranks[i].ledger)) {
          source[i] = j;
          break;
        }
      }
    }
    if (source[i] == i) replayed.push_back(i);
  }
  std::vector<std::optional<StatusOr<AllocatorRun>>> runs(ranks);
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Replays `which` ranks on the threads; each result has its own slot, so
  // the outcome does not depend on the number of threads.
  auto replay = [&](const std::vector<size_t>& which) {
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t k = next++; k < which.size(); k = next++) {
        const RankRun& run = result.ranks[which[k]];
        MemoryStreamOptions stream;
        stream.snapshot = run.rank == snapshot_rank;
        runs[which[k]] = ReplayAllocator(options, run, stream);
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < std::min<int64_t>(threads, static_cast<int64_t>(which.size())); ++t) {
      try {
        pool.emplace_back(work);
      } catch (const std::system_error&) {
        break;  // no more threads to be had: those running take the rest
      }
    }
    work();
    for (std::thread& t : pool) t.join();
  };
  replay(replayed);
  std::vector<size_t> last_use(ranks);  // the last rank a replay serves
  for (size_t i = 0; i < ranks; ++i) last_use[source[i]] = i;
  for (size_t i = 0; i < ranks; ++i) {
    StatusOr<AllocatorRun>& r = *runs[source[i]];
    if (!r.ok()) return r.status();  // the first rank's error
    out.push_back(last_use[source[i]] == i ? std::move(*r) : *r);
    AllocatorRun& mine = out.back();
    mine.rank = result.ranks[i].rank;
    if (source[i] != i && mine.oom) {
      mine.oom_op = OomOpOf(mine, result.ranks[source[i]].ledger, result.ranks[i].ledger);
    }
  }
  return out;
}

}  // namespace stepsim::sim
