// A PyTorch memory snapshot of one rank: the dict that
// torch.cuda.memory._snapshot() returns, pickled (protocol 2) so that
// torch's own tools read it:
//   - torch 1.13's torch.cuda._memory_viz (stats, segments, memory) on its
//     "segments" list;
//   - today's torch/cuda/_memory_viz.py and the viewer at
//     pytorch.org/memory_viz (MemoryViz.js), on the whole dict.
// Keys follow torch/csrc/cuda/memory_snapshot.cpp:
//   segments: [{device, address, total_size, allocated_size, active_size,
//               requested_size, stream, segment_type, segment_pool_id,
//               is_expandable, frames, blocks: [{address, size,
//               requested_size, state, frames}]}]  -- the allocator at the
//               rank's peak of reserved memory;
//   device_traces: [[{action, addr (device_free for oom), size, stream,
//               time_us, frames, category}]]  -- every event up to it;
//   allocator_settings: {...}.
// The viewer rebuilds earlier states by walking the trace back from the
// segments, which is why the trace stops at the snapshot's instant.
// Frames name the tensor, the op (line: its layer) and the step (line: its
// micro-batch); streams are 0 compute, 1 pipeline, 2 EP, 3 DP.
#ifndef STEPSIM_TRACES_MEMORY_SNAPSHOT_H_
#define STEPSIM_TRACES_MEMORY_SNAPSHOT_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "graph/config.h"
#include "sim/memory_stream.h"

namespace stepsim::traces {

// A pickle (protocol 2) writer for the few types a snapshot holds, with
// lists and dicts written in batches of 1,000 as Python's own pickler does.
class PickleWriter {
 public:
  explicit PickleWriter(std::ostream& out);  // writes the protocol header
  void Int(int64_t v);
  void Float(double v);
  void Bool(bool v);
  void None();
  void Str(const std::string& s);
  void BeginList() { Open(false); }
  void EndList() { Close(); }
  void BeginDict() { Open(true); }  // then key, value, key, value, ...
  void EndDict() { Close(); }
  void Tuple2();     // the last two values become a tuple
  void Stop();       // ends the pickle

 private:
  void Item();  // one more item in the open list or dict: batch if needed
  void Open(bool dict);
  void Close();
  std::ostream& out_;
  std::string frame_;  // a batch of small writes
  struct Container {
    bool dict;
    int64_t items;  // values (lists) or keys and values (dicts) in this batch
  };
  std::vector<Container> open_;
};

// Writes `run` (replayed with MemoryStreamOptions::snapshot) as a snapshot.
void WriteMemorySnapshot(const graph::Config& config, const sim::AllocatorRun& run,
                         std::ostream& out);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_MEMORY_SNAPSHOT_H_
