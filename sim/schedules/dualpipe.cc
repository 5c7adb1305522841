// DualPipe and DualPipeV, after deepseek-ai/DualPipe (dualpipe.py and
// dualpipev.py): eight phases per rank whose lengths depend on the rank's
// distance h from the ends. Phase 0 is the direction (DualPipe) or the
// chunk (DualPipeV) whose input is nearer to the rank.
#include <deque>

#include "sim/schedules/builtin.h"

namespace stepsim::sim {
namespace {

struct Generator {
  int64_t half;        // H: P/2 for DualPipe, P for DualPipeV
  int64_t h;           // distance of the rank from the nearer end
  int64_t per_phase;   // micro-batches each phase runs
  int32_t chunk_of[2]; // chunk of local phase 0 and 1
  int32_t first_id[2]; // first global micro-batch id of each phase
  int32_t nf[2] = {0, 0}, nb[2] = {0, 0};
  std::deque<Step> weights;  // split backwards waiting for their W
  std::vector<Step>* out;

  void F(int ph) {
    out->push_back({StepKind::kForward, first_id[ph] + nf[ph]++, chunk_of[ph]});
  }
  void B(int ph, bool split) {
    const Step step{split ? StepKind::kBackward : StepKind::kBackwardWeight,
                    first_id[ph] + nb[ph]++, chunk_of[ph]};
    out->push_back(step);
    if (split) weights.push_back({StepKind::kWeight, step.microbatch, step.chunk});
  }
  void W() {
    out->push_back(weights.front());
    weights.pop_front();
  }

  void Run() {
    const int64_t rest = half - h - 1;
    for (int64_t i = 0; i < 2 * rest; ++i) F(0);                 // 1: nF0
    for (int64_t i = 0; i <= h; ++i) { F(0); F(1); }             // 2: nF0F1
    for (int64_t i = 0; i < rest; ++i) { B(1, true); W(); F(1); }  // 3: nB1W1F1
    for (int64_t i = 0; i < per_phase - 2 * half + h + 1; ++i) {  // 4: main, F&B pairs
      F(0);
      B(1, false);
      F(1);
      B(0, false);
    }
    for (int64_t i = 0; i < rest; ++i) { B(1, false); F(1); B(0, false); }  // 5: nB1F1B0
    int64_t k = 0;                                               // 6: nB1B0, later half split
    for (int64_t i = 0; i <= h; ++i) {
      B(1, k++ >= h + 1);
      B(0, k++ >= h + 1);
    }
    for (int64_t i = 0; i < rest; ++i) { W(); B(0, true); }      // 7: nWB0
    while (!weights.empty()) W();                                // 8: nW
  }
};

}  // namespace

Schedule DualPipe(int64_t pp, int64_t microbatches) {
  Schedule s;
  s.name = "DualPipe";
  s.pp = pp;
  s.chunks = 2;
  s.microbatches = microbatches;
  const int64_t n = microbatches / 2;
  s.routes = graph::DualPipeRoutes(pp);
  for (int64_t m = 0; m < microbatches; ++m) s.route_of.push_back(m < n ? 0 : 1);
  s.ranks.resize(pp);
  for (int64_t r = 0; r < pp; ++r) {
    Generator g;
    g.half = pp / 2;
    g.h = std::min(r, pp - 1 - r);
    g.per_phase = n;
    const int32_t near = r >= pp / 2 ? 1 : 0;  // the direction entering nearer this rank
    g.chunk_of[0] = near;
    g.chunk_of[1] = 1 - near;
    g.first_id[0] = static_cast<int32_t>(near * n);
    g.first_id[1] = static_cast<int32_t>((1 - near) * n);
    g.out = &s.ranks[r];
    g.Run();
  }
  return s;
}

Schedule DualPipeV(int64_t pp, int64_t microbatches) {
  Schedule s;
  s.name = "DualPipeV";
  s.pp = pp;
  s.chunks = 2;
  s.microbatches = microbatches;
  s.routes = graph::DualPipeVRoutes(pp);
  s.ranks.resize(pp);
  for (int64_t r = 0; r < pp; ++r) {
    Generator g;
    g.half = pp;
    g.h = r;
    g.per_phase = microbatches;
    g.chunk_of[0] = 0;
    g.chunk_of[1] = 1;
    g.first_id[0] = 0;
    g.first_id[1] = 0;
    g.out = &s.ranks[r];
    g.Run();
  }
  return s;
}

}  // namespace stepsim::sim
