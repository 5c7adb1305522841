#include "sim/schedule_file.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "graph/scenario_text.h"
#include "schedule.pb.h"

namespace stepsim::sim {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Locates errors: an offset into the whole text becomes line and column.
class Locator {
 public:
  Locator(std::string_view text, std::string_view filename) : text_(text), filename_(filename) {}

  stepsim::Status At(size_t offset, const std::string& message) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < offset && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return stepsim::Status::Invalid(graph::LocatedError(text_, filename_, line, col, message));
  }
  std::string_view filename() const { return filename_; }

 private:
  std::string_view text_, filename_;
};

// Parses "F3", "B3.1", "W0.1", "BW2". Returns false if malformed.
bool ParseStep(std::string_view token, Step* step) {
  size_t i = 0;
  if (token.substr(0, 2) == "BW") {
    step->kind = StepKind::kBackwardWeight;
    i = 2;
  } else if (!token.empty() && (token[0] == 'F' || token[0] == 'B' || token[0] == 'W')) {
    step->kind = token[0] == 'F' ? StepKind::kForward
                                 : (token[0] == 'B' ? StepKind::kBackward : StepKind::kWeight);
    i = 1;
  } else {
    return false;
  }
  auto number = [&](int32_t* out) {
    const size_t start = i;
    int64_t v = 0;
    while (i < token.size() && std::isdigit(static_cast<unsigned char>(token[i]))) {
      v = v * 10 + (token[i++] - '0');
      if (v > INT32_MAX) return false;
    }
    *out = static_cast<int32_t>(v);
    return i > start;
  };
  if (!number(&step->microbatch)) return false;
  step->chunk = 0;
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (!number(&step->chunk)) return false;
  }
  return i == token.size();
}

// Parses the steps of one rank that start at `offset` in the text.
stepsim::Status ParseSteps(std::string_view steps, size_t offset, const Locator& at,
                           const graph::Config& c, int64_t chunks, std::vector<Step>* out) {
  size_t i = 0;
  while (i < steps.size()) {
    while (i < steps.size() && std::isspace(static_cast<unsigned char>(steps[i]))) ++i;
    const size_t start = i;
    while (i < steps.size() && !std::isspace(static_cast<unsigned char>(steps[i]))) ++i;
    if (start == i) break;
    const std::string_view token = steps.substr(start, i - start);
    Step step;
    if (!ParseStep(token, &step)) {
      return at.At(offset + start, "\"" + std::string(token) +
                                       "\" is not a step (F, B, W or BW, a micro-batch, "
                                       "optionally .chunk: F3, B3.1)");
    }
    if (step.microbatch >= c.batch.microbatches) {
      return at.At(offset + start, "micro-batch " + std::to_string(step.microbatch) +
                                       " is beyond batch.num_microbatches = " +
                                       std::to_string(c.batch.microbatches));
    }
    if (step.chunk >= chunks) {
      return at.At(offset + start, "chunk " + std::to_string(step.chunk) +
                                       " is beyond the layout's " + std::to_string(chunks) +
                                       " chunks per rank");
    }
    out->push_back(step);
  }
  return stepsim::Status::Ok();
}

}  // namespace

StatusOr<Schedule> ParseScheduleFile(std::string_view text, std::string_view filename,
                                     const graph::Config& c) {
  stepsim::Status size = CheckScheduleSize(c);
  if (!size.ok()) return size;
  const Locator at(text, filename);
  Schedule s;
  s.pp = c.parallel.pp;
  s.chunks = 0;
  for (const auto& stages : c.layout.rank_stages) {
    s.chunks = std::max<int64_t>(s.chunks, static_cast<int64_t>(stages.size()));
  }
  s.microbatches = c.batch.microbatches;
  // Placement comes from the scenario (schedule.kind decides DualPipe's);
  // under DualPipe micro-batches 0..m/2-1 go one way, the rest the other.
  s.routes = c.layout.routes;
  if (s.routes.size() == 2) {
    for (int64_t m = 0; m < s.microbatches; ++m) s.route_of.push_back(m < s.microbatches / 2 ? 0 : 1);
  }
  std::map<int64_t, std::vector<Step>> ranks;
  if (text.find('\0') != std::string_view::npos) {
    return stepsim::Status::Invalid(std::string(filename) + ": not a text file");
  }
  auto add_rank = [&](int64_t rank, size_t where) -> stepsim::Status {
    if (rank < 0 || rank >= c.parallel.pp) {
      return at.At(where, "rank " + std::to_string(rank) + " is outside parallel.pp = " +
                              std::to_string(c.parallel.pp));
    }
    if (ranks.count(rank)) return at.At(where, "rank " + std::to_string(rank) + " appears twice");
    ranks[rank];
    return stepsim::Status::Ok();
  };
  if (EndsWith(filename, ".textproto") || EndsWith(filename, ".pbtxt")) {
    ScheduleFile file;
    stepsim::Status parsed = graph::ParseTextMessage(text, filename, &file);
    if (!parsed.ok()) return parsed;
    s.name = file.name();
    size_t search = 0;
    for (const RankSchedule& r : file.ranks()) {
      const size_t where = text.find(r.steps(), search);
      const size_t offset = where == std::string_view::npos ? 0 : where;
      search = where == std::string_view::npos ? search : where + r.steps().size();
      stepsim::Status added = add_rank(r.rank(), offset);
      if (!added.ok()) return added;
      stepsim::Status steps = ParseSteps(r.steps(), offset, at, c, s.chunks, &ranks[r.rank()]);
      if (!steps.ok()) return steps;
    }
  } else {
    size_t line_start = 0;
    while (line_start <= text.size()) {
      size_t line_end = text.find('\n', line_start);
      if (line_end == std::string_view::npos) line_end = text.size();
      std::string_view line = text.substr(line_start, line_end - line_start);
      const size_t hash = line.find('#');
      if (hash != std::string_view::npos) line = line.substr(0, hash);
      size_t b = 0;
      while (b < line.size() && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
      const std::string_view body = line.substr(b);
      const size_t offset = line_start + b;
      if (!body.empty() && body.find_first_not_of(" \t\r") != std::string_view::npos) {
        if (body.substr(0, 5) == "name:") {
          std::string name(body.substr(5));
          while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front()))) {
            name.erase(0, 1);
          }
          while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) {
            name.pop_back();
          }
          s.name = name;
        } else if (body.substr(0, 5) == "rank ") {
          const size_t colon = body.find(':');
          int64_t rank = -1;
          bool ok = colon != std::string_view::npos && colon > 5;
          if (ok) {
            std::string number(body.substr(5, colon - 5));
            while (!number.empty() && std::isspace(static_cast<unsigned char>(number.back()))) {
              number.pop_back();
            }
            ok = !number.empty() && number.size() < 10 &&
                 number.find_first_not_of("0123456789") == std::string::npos;
            if (ok) rank = std::stoll(number);
          }
          if (!ok) return at.At(offset, "expected \"rank N: steps...\"");
          stepsim::Status added = add_rank(rank, offset);
          if (!added.ok()) return added;
          stepsim::Status steps =
              ParseSteps(body.substr(colon + 1), offset + colon + 1, at, c, s.chunks, &ranks[rank]);
          if (!steps.ok()) return steps;
        } else {
          return at.At(offset, "expected \"name: ...\" or \"rank N: steps...\"");
        }
      }
      if (line_end == text.size()) break;
      line_start = line_end + 1;
    }
  }
  if (static_cast<int64_t>(ranks.size()) != c.parallel.pp) {
    return stepsim::Status::Invalid(std::string(filename) + ": has " +
                                    std::to_string(ranks.size()) +
                                    " ranks, but the scenario has parallel.pp = " +
                                    std::to_string(c.parallel.pp));
  }
  for (auto& [rank, steps] : ranks) s.ranks.push_back(std::move(steps));
  if (s.name.empty()) s.name = std::string(filename);
  stepsim::Status valid = ValidateSchedule(s);
  if (!valid.ok()) return stepsim::Status::Invalid(std::string(filename) + ": " + valid.message());
  return s;
}

std::string FormatScheduleFile(const Schedule& s, bool proto) {
  std::string out;
  if (proto) {
    out += "# stepsim schedule: PP " + std::to_string(s.pp) + ", " + std::to_string(s.chunks) +
           " chunk(s) per rank, " + std::to_string(s.microbatches) + " micro-batches\n";
    out += "name: \"" + s.name + "\"\n";
  } else {
    out += "# stepsim schedule: PP " + std::to_string(s.pp) + ", " + std::to_string(s.chunks) +
           " chunk(s) per rank, " + std::to_string(s.microbatches) + " micro-batches\n";
    out += "name: " + s.name + "\n";
  }
  for (size_t r = 0; r < s.ranks.size(); ++r) {
    std::string steps;
    for (const Step& step : s.ranks[r]) steps += (steps.empty() ? "" : " ") + StepName(step, s.chunks);
    if (proto) {
      out += "ranks {\n  rank: " + std::to_string(r) + "\n  steps: \"" + steps + "\"\n}\n";
    } else {
      out += "rank " + std::to_string(r) + ": " + steps + "\n";
    }
  }
  return out;
}

}  // namespace stepsim::sim
