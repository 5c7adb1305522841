#include "traces/memory_snapshot.h"

#include <cmath>
#include <cstring>

namespace stepsim::traces {
namespace {

// Pickle opcodes (Python's Lib/pickle.py), protocol 2 and below.
constexpr char kProto = '\x80';
constexpr char kStop = '.';
constexpr char kMark = '(';
constexpr char kEmptyList = ']';
constexpr char kAppends = 'e';
constexpr char kEmptyDict = '}';
constexpr char kSetItems = 'u';
constexpr char kBinInt = 'J';   // 4-byte signed
constexpr char kBinInt1 = 'K';  // 1-byte unsigned
constexpr char kBinInt2 = 'M';  // 2-byte unsigned
constexpr char kLong1 = '\x8a'; // n-byte two's complement
constexpr char kBinFloat = 'G'; // 8-byte big-endian double
constexpr char kBinUnicode = 'X';
constexpr char kNewTrue = '\x88';
constexpr char kNewFalse = '\x89';
constexpr char kNone = 'N';
constexpr char kTuple2 = '\x86';
constexpr int64_t kBatch = 1000;  // pickle.py's _BATCHSIZE
constexpr size_t kFlushBytes = 1 << 16;

void PutLittle(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

}  // namespace

PickleWriter::PickleWriter(std::ostream& out) : out_(out) {
  frame_ += kProto;
  frame_ += '\x02';
}

void PickleWriter::Item() {
  if (!frame_.empty() && frame_.size() >= kFlushBytes) {
    out_.write(frame_.data(), static_cast<std::streamsize>(frame_.size()));
    frame_.clear();
  }
  if (open_.empty()) return;
  Container& o = open_.back();
  if (++o.items == (o.dict ? 2 * kBatch : kBatch)) {
    frame_ += o.dict ? kSetItems : kAppends;
    frame_ += kMark;
    o.items = 0;
  }
}

void PickleWriter::Int(int64_t v) {
  if (v >= 0 && v < 256) {
    frame_ += kBinInt1;
    PutLittle(frame_, static_cast<uint64_t>(v), 1);
  } else if (v >= 0 && v < 65536) {
    frame_ += kBinInt2;
    PutLittle(frame_, static_cast<uint64_t>(v), 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    frame_ += kBinInt;
    PutLittle(frame_, static_cast<uint64_t>(v), 4);
  } else {
    // The fewest bytes whose top bit still carries the sign.
    const uint64_t u = static_cast<uint64_t>(v);
    int n = 8;
    while (n > 1) {
      const uint64_t top = (u >> (8 * (n - 1))) & 0xff, next = (u >> (8 * (n - 2))) & 0xff;
      if ((top == 0 && next < 0x80) || (top == 0xff && next >= 0x80)) {
        --n;
      } else {
        break;
      }
    }
    frame_ += kLong1;
    frame_ += static_cast<char>(n);
    PutLittle(frame_, u, n);
  }
  Item();
}

void PickleWriter::Float(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  frame_ += kBinFloat;
  for (int i = 7; i >= 0; --i) frame_ += static_cast<char>((bits >> (8 * i)) & 0xff);
  Item();
}

void PickleWriter::Bool(bool v) {
  frame_ += v ? kNewTrue : kNewFalse;
  Item();
}

void PickleWriter::None() {
  frame_ += kNone;
  Item();
}

void PickleWriter::Str(const std::string& s) {
  frame_ += kBinUnicode;
  PutLittle(frame_, s.size(), 4);
  frame_ += s;
  Item();
}

void PickleWriter::Open(bool dict) {
  frame_ += dict ? kEmptyDict : kEmptyList;
  frame_ += kMark;
  open_.push_back({dict, 0});
}

void PickleWriter::Close() {
  frame_ += open_.back().dict ? kSetItems : kAppends;
  open_.pop_back();
  Item();
}

void PickleWriter::Tuple2() {
  // The two values were counted as items; now they are one. The caller
  // keeps a batch boundary from falling between them (a short dict).
  frame_ += kTuple2;
  if (!open_.empty()) --open_.back().items;
}

void PickleWriter::Stop() {
  frame_ += kStop;
  out_.write(frame_.data(), static_cast<std::streamsize>(frame_.size()));
  frame_.clear();
}

namespace {

void IntItem(PickleWriter& p, const char* key, int64_t value) {
  p.Str(key);
  p.Int(value);
}

void StrItem(PickleWriter& p, const char* key, const std::string& value) {
  p.Str(key);
  p.Str(value);
}

void Frames(PickleWriter& p, const std::vector<sim::AllocationLabel>& labels, int64_t tag) {
  p.BeginList();
  if (tag >= 0 && tag < static_cast<int64_t>(labels.size())) {
    const sim::AllocationLabel& l = labels[tag];
    auto frame = [&](const std::string& name, const std::string& file, int64_t line) {
      p.BeginDict();
      StrItem(p, "name", name);
      StrItem(p, "filename", file);
      IntItem(p, "line", line);
      p.EndDict();
    };
    // Innermost first, as torch records Python frames.
    frame(l.tensor + " (" + l.category + ")", "tensor", 0);
    if (!l.op.empty()) {
      frame(l.op, l.layer >= 0 ? "layer " + std::to_string(l.layer) : "op",
            std::max<int64_t>(l.layer, 0));
    }
    if (!l.step.empty()) {
      frame(l.step + " on stage " + std::to_string(l.stage),
            "micro-batch " + std::to_string(l.microbatch), std::max<int32_t>(l.microbatch, 0));
    } else if (l.microbatch >= 0) {
      frame("micro-batch " + std::to_string(l.microbatch), "buffer", l.microbatch);
    }
  }
  p.EndList();
}

std::string AllocConf(const graph::AllocatorSpec& a) {
  std::string conf = std::string("expandable_segments:") +
                     (a.expandable_segments ? "True" : "False");
  if (a.max_split_size_mb > 0) conf += ",max_split_size_mb:" + std::to_string(a.max_split_size_mb);
  if (a.max_non_split_rounding_mb != 20) {
    conf += ",max_non_split_rounding_mb:" + std::to_string(a.max_non_split_rounding_mb);
  }
  if (a.roundup_power2_divisions > 1) {
    conf += ",roundup_power2_divisions:" + std::to_string(a.roundup_power2_divisions);
  }
  return conf;
}

void Segment(PickleWriter& p, const sim::SegmentState& s,
             const std::vector<sim::AllocationLabel>& labels) {
  p.BeginDict();
  IntItem(p, "device", 0);
  IntItem(p, "address", s.address);
  IntItem(p, "total_size", s.total_size);
  IntItem(p, "allocated_size", s.allocated_size);
  IntItem(p, "active_size", s.allocated_size);
  IntItem(p, "requested_size", s.requested_size);
  IntItem(p, "stream", s.stream);
  StrItem(p, "segment_type", s.large ? "large" : "small");
  p.Str("is_expandable");
  p.Bool(s.expandable);
  p.Str("frames");
  p.BeginList();
  p.EndList();
  p.Str("blocks");
  p.BeginList();
  for (const sim::BlockState& b : s.blocks) {
    p.BeginDict();
    IntItem(p, "address", b.address);
    IntItem(p, "size", b.size);
    IntItem(p, "requested_size", b.allocated ? b.requested : 0);
    StrItem(p, "state", b.allocated ? "active_allocated" : "inactive");
    p.Str("frames");
    Frames(p, labels, b.allocated ? b.tag : -1);
    p.EndDict();
  }
  p.EndList();
  // (0, 0): no private pool. A dict this short has no batch boundary
  // between the tuple's two elements.
  p.Str("segment_pool_id");
  p.Int(0);
  p.Int(0);
  p.Tuple2();
  p.EndDict();
}

void Entry(PickleWriter& p, const sim::TraceEntry& e, const sim::AllocatorRun& run) {
  const bool segment = e.action != sim::TraceAction::kAlloc &&
                       e.action != sim::TraceAction::kFreeRequested &&
                       e.action != sim::TraceAction::kFreeCompleted;
  p.BeginDict();
  StrItem(p, "action", sim::TraceActionName(e.action));
  p.Str(e.action == sim::TraceAction::kOom ? "device_free" : "addr");
  p.Int(e.addr);
  IntItem(p, "size", e.size);
  IntItem(p, "stream", e.stream);
  p.Str("time_us");
  const double t = e.event < static_cast<int64_t>(run.event_times.size()) ? run.event_times[e.event] : 0;
  p.Int(std::llround(t * 1e6));
  p.Str("frames");
  Frames(p, run.labels, segment ? -1 : e.tag);
  // MemoryViz.js colours allocations by category and expects "unknown"
  // among them once any entry has one: segments have no category.
  StrItem(p, "category", segment || e.tag < 0 || e.tag >= static_cast<int64_t>(run.labels.size())
            ? "unknown"
            : run.labels[e.tag].category);
  p.EndDict();
}

}  // namespace

void WriteMemorySnapshot(const graph::Config& config, const sim::AllocatorRun& run,
                         std::ostream& out) {
  PickleWriter p(out);
  p.BeginDict();
  p.Str("segments");
  p.BeginList();
  for (const sim::SegmentState& s : run.segments_at_peak) Segment(p, s, run.labels);
  p.EndList();
  p.Str("device_traces");
  p.BeginList();
  p.BeginList();
  for (const sim::TraceEntry& e : run.trace) Entry(p, e, run);
  p.EndList();
  p.EndList();
  const graph::AllocatorSpec& a = config.allocator;
  p.Str("allocator_settings");
  p.BeginDict();
  p.Str("PYTORCH_CUDA_ALLOC_CONF");
  p.Str(AllocConf(a));
  IntItem(p, "max_split_size", a.max_split_size_mb > 0 ? a.max_split_size_mb << 20 : -1);  // SIZE_MAX as int64
  p.Str("garbage_collection_threshold");
  p.Float(0.0);
  p.Str("expandable_segments");
  p.Bool(a.expandable_segments);
  p.Str("roundup_power2_divisions");
  p.BeginDict();
  for (int64_t key = 1, i = 0; i < 16; ++i, key *= 2) {
    p.Str(std::to_string(key));
    p.Int(a.roundup_power2_divisions);
  }
  p.EndDict();
  p.EndDict();
  p.EndDict();
  p.Stop();
}

}  // namespace stepsim::traces
