// Pipeline layouts: which embedding, transformer layers, MTP modules and loss
// each pipeline stage holds, and which rank and virtual chunk runs it.
//
// Layout strings follow Megatron's --pipeline-model-parallel-layout:
//   E embedding, t transformer layer, m MTP module, L final norm + head + loss,
//   `|` separates stages, `x*n` repeats one character, `(...)*n` repeats a
//   group (groups may nest), commas are cosmetic. Stage i of S stages runs on
//   pp rank i % pp as virtual chunk i / pp.
#ifndef STEPSIM_GRAPH_LAYOUT_H_
#define STEPSIM_GRAPH_LAYOUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "graph/status.h"

namespace stepsim::graph {

enum class SlotKind { kEmbedding, kDecoder, kMtp, kLoss };

struct Slot {
  SlotKind kind;
  int64_t index = 0;  // kDecoder: global layer index; kMtp: MTP module index
};

struct Stage {
  int64_t stage = 0;    // position in the model, 0 .. pp*vpp-1
  int64_t pp_rank = 0;  // stage % pp
  int64_t chunk = 0;    // stage / pp (virtual pipeline chunk)
  std::vector<Slot> slots;

  int64_t DecoderLayers() const;
  bool Has(SlotKind kind) const;
  // "E t0-t3", "t4-t7", "t60 m0 L", or "(empty)".
  std::string Describe() const;
};

// Where a stage runs: a pipeline rank and the rank's virtual chunk.
struct Hop {
  int64_t rank = 0;
  int64_t chunk = 0;
  bool operator==(const Hop&) const = default;
};

struct Layout {
  int64_t pp = 1;
  int64_t vpp = 1;
  std::string text;  // the layout string it came from ("" for a default split)
  std::vector<Stage> stages;  // pp*vpp stages in model order
  // Placement. A micro-batch follows one route through every stage in
  // order; routes[i][s] is where stage s runs on route i. Most schedules
  // have one route; DualPipe has two (its two directions). rank_stages[r]
  // lists the stage of each of rank r's chunks.
  std::vector<std::vector<Hop>> routes;
  std::vector<std::vector<int64_t>> rank_stages;
};

// The routes of each placement; the Place* functions below and the
// schedule generators share them.
using Routes = std::vector<std::vector<Hop>>;
Routes RoundRobinRoutes(int64_t pp, int64_t chunks);  // stage s: rank s % pp, chunk s / pp
Routes DualPipeRoutes(int64_t pp);   // route 0: stage s on rank s; route 1: on pp-1-s
Routes DualPipeVRoutes(int64_t pp);  // stage s on rank s, then 2pp-1-s (chunk 1)

// Megatron's placement: stage s on rank s % pp as chunk s / pp.
void PlaceRoundRobin(Layout* layout);
// DualPipe: pp stages, each rank r holds stage r (route 0, chunk 0) and
// stage pp-1-r (route 1, chunk 1): two copies of the model, one per
// direction. Needs an even pp and one stage per rank in the layout.
Status PlaceDualPipe(Layout* layout);
// DualPipeV: 2*pp stages in a V, stage s on rank s (chunk 0) for s < pp and
// on rank 2pp-1-s (chunk 1) after. Needs a layout of 2*pp stages.
Status PlaceDualPipeV(Layout* layout);

// Expands a layout string into one string of E/t/m/L characters per stage.
// Errors name the position: `parallel.layout: position 5: ...`.
StatusOr<std::vector<std::string>> ExpandLayoutString(std::string_view text);

// Parses and validates `text` against the model with Megatron's rules:
// stage count divisible by pp; E first and exactly once; L last and exactly
// once; exactly num_layers t and mtp_layers m; no t after an m; MTP only in a
// rank's last chunk, all in one chunk, not on pp rank 0 unless pp is 1.
// Every problem found is listed, one per line.
// `round_robin` false skips the two rules that assume Megatron's placement
// (MTP in a rank's last chunk, not on rank 0): DualPipeV places stages in a V.
StatusOr<Layout> ParseLayout(std::string_view text, int64_t pp, int64_t num_layers,
                             int64_t mtp_layers, bool round_robin = true);

// The default split when no layout is given: layers spread evenly over
// pp*vpp stages; the remainder goes one layer each to the stages after the
// first (the first stage also holds the embedding, the last the head and
// loss). The embedding is on stage 0; MTP modules and loss on the last.
// Returns an error when there are fewer layers than stages.
StatusOr<Layout> DefaultLayout(int64_t pp, int64_t vpp, int64_t num_layers,
                               int64_t mtp_layers);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_LAYOUT_H_
