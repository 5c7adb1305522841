#include "sim/schedule.h"

#include <algorithm>
#include <array>

#include "graph/names.h"
#include "sim/schedules/builtin.h"

namespace stepsim::sim {

std::string StepName(const Step& step, int64_t chunks) {
  std::string name;
  switch (step.kind) {
    case StepKind::kForward: name = "F"; break;
    case StepKind::kBackward: name = "B"; break;
    case StepKind::kWeight: name = "W"; break;
    case StepKind::kBackwardWeight: name = "BW"; break;
  }
  name += std::to_string(step.microbatch);
  if (chunks > 1) name += "." + std::to_string(step.chunk);
  return name;
}

std::vector<ScheduleProblem> FindScheduleProblems(const Schedule& s) {
  std::vector<ScheduleProblem> problems;
  if (static_cast<int64_t>(s.ranks.size()) != s.pp) {
    problems.push_back({-1, -1, "schedule has " + std::to_string(s.ranks.size()) +
                                    " ranks, expected " + std::to_string(s.pp)});
  }
  const auto routes = s.routes.empty() ? graph::RoundRobinRoutes(s.pp, s.chunks) : s.routes;
  // Flat tables by (micro-batch, chunk), in that order: m * chunks + c.
  const int64_t chunks = std::max<int64_t>(s.chunks, 0);
  const size_t pairs = static_cast<size_t>(std::max<int64_t>(s.microbatches, 0) * chunks);
  auto key = [&](int32_t m, int64_t c) { return static_cast<size_t>(m * chunks + c); };
  auto in_chunks = [&](int64_t c) { return c >= 0 && c < chunks; };
  for (size_t route = 0; route < routes.size(); ++route) {
    for (const graph::Hop& hop : routes[route]) {
      if (!in_chunks(hop.chunk)) {
        problems.push_back({-1, -1, "route " + std::to_string(route) + " places a stage on chunk " +
                                        std::to_string(hop.chunk) + ", outside the " +
                                        std::to_string(chunks) + " chunks"});
      }
    }
  }
  // What each rank must run: the (micro-batch, chunk) pairs its routes give it.
  std::vector<std::vector<bool>> owed(s.pp, std::vector<bool>(pairs, false));
  for (int32_t m = 0; m < s.microbatches; ++m) {
    const int32_t route = s.RouteOf(m);
    if (route < 0 || route >= static_cast<int32_t>(routes.size())) continue;
    for (const graph::Hop& hop : routes[route]) {
      if (hop.rank >= 0 && hop.rank < s.pp && in_chunks(hop.chunk)) {
        owed[hop.rank][key(m, hop.chunk)] = true;
      }
    }
  }
  constexpr std::array<int, 4> kAbsent = {-1, -1, -1, -1};
  // (micro-batch, chunk) -> position of F, B, W, BW on the rank (-1 if absent).
  std::vector<std::array<int, 4>> seen;
  for (size_t r = 0; r < s.ranks.size() && static_cast<int64_t>(r) < s.pp; ++r) {
    const std::string where = "rank " + std::to_string(r) + ": ";
    const int64_t rank = static_cast<int64_t>(r);
    auto at = [&](int64_t index, std::string message) {
      problems.push_back({rank, index, where + std::move(message)});
    };
    seen.assign(pairs, kAbsent);
    for (size_t i = 0; i < s.ranks[r].size(); ++i) {
      const Step& step = s.ranks[r][i];
      if (step.microbatch < 0 || step.microbatch >= s.microbatches || step.chunk < 0 ||
          step.chunk >= s.chunks) {
        at(static_cast<int64_t>(i), StepName(step, s.chunks) + " is outside " +
                                        std::to_string(s.microbatches) + " micro-batches and " +
                                        std::to_string(s.chunks) + " chunks");
        continue;
      }
      if (!owed[r][key(step.microbatch, step.chunk)]) {
        at(static_cast<int64_t>(i), StepName(step, s.chunks) +
                                        " does not run on this rank: its micro-batch's route "
                                        "places that chunk elsewhere");
        continue;
      }
      int& slot = seen[key(step.microbatch, step.chunk)][static_cast<int>(step.kind)];
      if (slot >= 0) at(static_cast<int64_t>(i), StepName(step, s.chunks) + " appears twice");
      slot = static_cast<int>(i);
    }
    // Consecutive stages of a route on this rank hand over locally: the
    // forward of the earlier stage must come first, its backward last.
    for (int32_t m = 0; m < s.microbatches; ++m) {
      const int32_t route = s.RouteOf(m);
      if (route < 0 || route >= static_cast<int32_t>(routes.size())) continue;
      const auto& hops = routes[route];
      for (size_t st = 0; st + 1 < hops.size(); ++st) {
        if (hops[st].rank != static_cast<int64_t>(r) || hops[st + 1].rank != hops[st].rank) {
          continue;
        }
        if (!in_chunks(hops[st].chunk) || !in_chunks(hops[st + 1].chunk)) continue;
        const std::array<int, 4>& a = seen[key(m, hops[st].chunk)];
        const std::array<int, 4>& b = seen[key(m, hops[st + 1].chunk)];
        if (a == kAbsent || b == kAbsent) continue;
        const int fa = a[0], fb = b[0];
        const int ba = std::max(a[1], a[3]), bb = std::max(b[1], b[3]);
        const Step first{StepKind::kForward, m, static_cast<int32_t>(hops[st].chunk)};
        const Step second{StepKind::kForward, m, static_cast<int32_t>(hops[st + 1].chunk)};
        if (fa >= 0 && fb >= 0 && fb < fa) {
          at(fb, StepName(second, s.chunks) + " comes before " + StepName(first, s.chunks) +
                     ", which feeds it on this rank");
        }
        if (ba >= 0 && bb >= 0 && ba < bb) {
          at(ba, "the backward of " + StepName(first, s.chunks).substr(1) +
                     " comes before that of " + StepName(second, s.chunks).substr(1) +
                     ", which feeds it on this rank");
        }
      }
    }
    for (int32_t m = 0; m < s.microbatches; ++m) {
      for (int32_t c = 0; c < chunks; ++c) {
        if (!owed[r][key(m, c)]) continue;
        const auto [F, B, W, BW] = seen[key(m, c)];
        const std::string name = StepName({StepKind::kForward, m, c}, s.chunks).substr(1);
        if (F < 0) at(-1, "F" + name + " is missing");
        if (BW >= 0 && (B >= 0 || W >= 0)) {
          at(BW, "BW" + name + " and a separate B or W both appear");
        } else if (BW < 0 && (B < 0 || W < 0)) {
          at(-1, (B < 0 ? "B" : "W") + name + " is missing");
        }
        if (F >= 0 && BW >= 0 && BW < F) at(BW, "BW" + name + " comes before F" + name);
        if (F >= 0 && B >= 0 && B < F) at(B, "B" + name + " comes before F" + name);
        if (B >= 0 && W >= 0 && W < B) at(W, "W" + name + " comes before B" + name);
      }
    }
  }
  return problems;
}

stepsim::Status ValidateSchedule(const Schedule& s) {
  const std::vector<ScheduleProblem> problems = FindScheduleProblems(s);
  if (problems.empty()) return stepsim::Status::Ok();
  std::vector<std::string> lines;
  for (const ScheduleProblem& p : problems) lines.push_back(p.message);
  return stepsim::Status::Invalid("schedule: " + JoinLines(lines, 20));
}

stepsim::Status CheckScheduleSize(const graph::Config& c) {
  constexpr int64_t kMaxSteps = 10'000'000;
  const int64_t stages = static_cast<int64_t>(c.layout.stages.size());
  const int64_t limit = kMaxSteps / 3 / std::max<int64_t>(stages, 1);
  if (c.batch.microbatches > limit) {
    return stepsim::Status::Invalid(
        "batch.num_microbatches: " + std::to_string(c.batch.microbatches) + " micro-batches over " +
        std::to_string(stages) + " stages make a schedule of more than " +
        std::to_string(kMaxSteps) + " steps; use at most " + std::to_string(limit));
  }
  return stepsim::Status::Ok();
}

namespace {

std::string Str(int64_t v) { return std::to_string(v); }

// The constraints of each built-in schedule, as errors naming the field.
stepsim::Status CheckConstraints(const graph::Config& c) {
  const int64_t pp = c.parallel.pp, m = c.batch.microbatches, v = c.parallel.vpp;
  const std::string kind = "schedule.kind: " + ScheduleKind_Name(c.schedule);
  auto one_chunk = [&]() -> stepsim::Status {
    if (v == 1) return stepsim::Status::Ok();
    return stepsim::Status::Invalid(kind + " runs one chunk per rank, but the layout has " +
                                    Str(v) + " (parallel.vpp; use INTERLEAVED_ONE_F_ONE_B)");
  };
  switch (c.schedule) {
    case GPIPE:
      return stepsim::Status::Ok();
    case ONE_F_ONE_B:
      return one_chunk();
    case INTERLEAVED_ONE_F_ONE_B:
      if (v < 2) {
        return stepsim::Status::Invalid(kind + " needs at least 2 chunks per rank (parallel.vpp "
                                        "or a layout of more stages than parallel.pp)");
      }
      if (m < pp || m % pp != 0) {
        return stepsim::Status::Invalid("batch.num_microbatches: " + Str(m) + " must be a "
                                        "multiple of parallel.pp = " + Str(pp) + " for " +
                                        ScheduleKind_Name(c.schedule));
      }
      return stepsim::Status::Ok();
    case ZB_H1:
    case ZB_H2: {
      stepsim::Status chunks = one_chunk();
      if (!chunks.ok()) return chunks;
      const int64_t need = c.schedule == ZB_H1 ? pp : 2 * pp - 1;
      if (m < need) {
        return stepsim::Status::Invalid("batch.num_microbatches: " + ScheduleKind_Name(c.schedule) +
                                        " needs at least " + Str(need) + " micro-batches with "
                                        "parallel.pp = " + Str(pp) + ", got " + Str(m));
      }
      return stepsim::Status::Ok();
    }
    case DUALPIPE:
      if (m % 2 != 0 || m < 2 * pp) {
        return stepsim::Status::Invalid("batch.num_microbatches: DUALPIPE needs an even number "
                                        "of at least 2 * parallel.pp = " + Str(2 * pp) +
                                        " micro-batches (half in each direction), got " + Str(m));
      }
      return stepsim::Status::Ok();
    case DUALPIPE_V:
      if (m < 2 * pp) {
        return stepsim::Status::Invalid("batch.num_microbatches: DUALPIPE_V needs at least 2 * "
                                        "parallel.pp = " + Str(2 * pp) + " micro-batches, got " +
                                        Str(m));
      }
      return stepsim::Status::Ok();
    default:
      return stepsim::Status::Invalid(kind + " is not a schedule stepsim knows");
  }
}

}  // namespace

StatusOr<Schedule> BuildSchedule(const graph::Config& c) {
  stepsim::Status size = CheckScheduleSize(c);
  if (!size.ok()) return size;
  stepsim::Status ok = CheckConstraints(c);
  if (!ok.ok()) return ok;
  const int64_t pp = c.parallel.pp, m = c.batch.microbatches, chunks = c.parallel.vpp;
  Schedule s;
  switch (c.schedule) {
    case GPIPE: s = GPipe(pp, chunks, m); break;
    case ONE_F_ONE_B: s = OneFOneB(pp, m); break;
    case INTERLEAVED_ONE_F_ONE_B: s = Interleaved(pp, chunks, m); break;
    case ZB_H1: s = ZeroBubble(pp, m, false); break;
    case ZB_H2: s = ZeroBubble(pp, m, true); break;
    case DUALPIPE: s = DualPipe(pp, m); break;
    default: s = DualPipeV(pp, m); break;
  }
  s.name = graph::EnumName(c.schedule);  // the vocabulary of every output (graph/names.h)
  if (s.routes != c.layout.routes) {
    return stepsim::Status::Failed("schedule " + s.name +
                                   " places stages differently from the layout (a stepsim bug)");
  }
  stepsim::Status valid = ValidateSchedule(s);
  if (!valid.ok()) return stepsim::Status::Failed(valid.message() + "\n(a stepsim bug)");
  return s;
}

}  // namespace stepsim::sim
