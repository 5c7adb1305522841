#include "sim/schedule.h"

#include <map>
#include <array>

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

stepsim::Status ValidateSchedule(const Schedule& s) {
  std::vector<std::string> problems;
  if (static_cast<int64_t>(s.ranks.size()) != s.pp) {
    problems.push_back("schedule has " + std::to_string(s.ranks.size()) + " ranks, expected " +
                       std::to_string(s.pp));
  }
  for (size_t r = 0; r < s.ranks.size(); ++r) {
    const std::string where = "rank " + std::to_string(r) + ": ";
    // (microbatch, chunk) -> position of F, B, W, BW (-1 if absent).
    std::map<std::pair<int32_t, int32_t>, std::array<int, 4>> seen;
    for (size_t i = 0; i < s.ranks[r].size(); ++i) {
      const Step& step = s.ranks[r][i];
      if (step.microbatch < 0 || step.microbatch >= s.microbatches || step.chunk < 0 ||
          step.chunk >= s.chunks) {
        problems.push_back(where + StepName(step, s.chunks) + " is outside " +
                           std::to_string(s.microbatches) + " micro-batches and " +
                           std::to_string(s.chunks) + " chunks");
        continue;
      }
      auto [it, fresh] = seen.try_emplace({step.microbatch, step.chunk});
      if (fresh) it->second = {-1, -1, -1, -1};
      int& slot = it->second[static_cast<int>(step.kind)];
      if (slot >= 0) {
        problems.push_back(where + StepName(step, s.chunks) + " appears twice");
      }
      slot = static_cast<int>(i);
    }
    for (int32_t m = 0; m < s.microbatches; ++m) {
      for (int32_t c = 0; c < s.chunks; ++c) {
        auto it = seen.find({m, c});
        const Step f{StepKind::kForward, m, c};
        std::array<int, 4> pos = it == seen.end() ? std::array<int, 4>{-1, -1, -1, -1}
                                                  : it->second;
        const int F = pos[0], B = pos[1], W = pos[2], BW = pos[3];
        const std::string name = StepName(f, s.chunks).substr(1);
        if (F < 0) problems.push_back(where + "F" + name + " is missing");
        if (BW >= 0 && (B >= 0 || W >= 0)) {
          problems.push_back(where + "BW" + name + " and a separate B or W both appear");
        } else if (BW < 0 && (B < 0 || W < 0)) {
          problems.push_back(where + (B < 0 ? "B" : "W") + name + " is missing");
        }
        if (F >= 0 && BW >= 0 && BW < F) {
          problems.push_back(where + "BW" + name + " comes before F" + name);
        }
        if (F >= 0 && B >= 0 && B < F) {
          problems.push_back(where + "B" + name + " comes before F" + name);
        }
        if (B >= 0 && W >= 0 && W < B) {
          problems.push_back(where + "W" + name + " comes before B" + name);
        }
      }
    }
  }
  if (problems.empty()) return stepsim::Status::Ok();
  std::string message;
  for (const std::string& p : problems) message += (message.empty() ? "" : "\n") + p;
  return stepsim::Status::Invalid("schedule: " + message);
}

StatusOr<Schedule> BuildSchedule(const graph::Config& c) {
  const int64_t pp = c.parallel.pp, m = c.batch.microbatches, chunks = c.parallel.vpp;
  StatusOr<Schedule> s = stepsim::Status::Invalid("schedule.kind: not implemented");
  switch (c.schedule) {
    case GPIPE:
      s = GPipe(pp, chunks, m);
      break;
    case ONE_F_ONE_B:
      if (chunks > 1) {
        return stepsim::Status::Invalid(
            "schedule.kind: ONE_F_ONE_B runs one chunk per rank, but the layout has " +
            std::to_string(chunks) + " (use INTERLEAVED_ONE_F_ONE_B)");
      }
      s = OneFOneB(pp, m);
      break;
    default:
      return stepsim::Status::Invalid("schedule.kind: " + ScheduleKind_Name(c.schedule) +
                                      " is not available yet");
  }
  if (!s.ok()) return s;
  stepsim::Status valid = ValidateSchedule(*s);
  if (!valid.ok()) return valid;
  return s;
}

}  // namespace stepsim::sim
