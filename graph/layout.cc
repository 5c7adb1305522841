#include "graph/layout.h"

#include <cctype>

namespace stepsim::graph {
namespace {

constexpr int64_t kMaxExpanded = 1 << 20;  // characters after expansion

// Recursive-descent expansion of the layout grammar:
//   seq   := item*
//   item  := ('(' seq ')' | char) ('*' number)?
class Expander {
 public:
  explicit Expander(std::string_view text) : text_(text) {}

  StatusOr<std::string> Run() {
    std::string out;
    if (!Seq(&out, 0)) return Status::Invalid(error_);
    if (pos_ != text_.size()) {
      Fail("unmatched ')'");
      return Status::Invalid(error_);
    }
    return out;
  }

 private:
  bool Seq(std::string* out, int depth) {
    if (depth > 16) return Fail("parentheses nested too deeply");
    while (pos_ < text_.size() && text_[pos_] != ')') {
      char c = text_[pos_];
      std::string item;
      if (c == ',' || c == ' ') {
        ++pos_;
        continue;
      }
      if (c == '(') {
        size_t open = pos_++;
        if (!Seq(&item, depth + 1)) return false;
        if (pos_ >= text_.size()) {
          pos_ = open;
          return Fail("'(' is never closed");
        }
        ++pos_;  // ')'
      } else if (c == 'E' || c == 't' || c == 'm' || c == 'L' || c == '|') {
        item = std::string(1, c);
        ++pos_;
      } else {
        return Fail(std::string("unexpected character '") + c +
                    "' (expected E, t, m, L, |, (, ), * or a comma)");
      }
      int64_t times = 1;
      if (pos_ < text_.size() && text_[pos_] == '*') {
        ++pos_;
        if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
          return Fail("'*' must be followed by a number");
        }
        times = 0;
        while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
          times = times * 10 + (text_[pos_++] - '0');
          if (times > kMaxExpanded) return Fail("repeat count too large");
        }
      }
      if (static_cast<int64_t>(out->size() + item.size() * times) > kMaxExpanded) {
        return Fail("layout expands to more than 1048576 characters");
      }
      for (int64_t i = 0; i < times; ++i) *out += item;
    }
    return true;
  }

  bool Fail(std::string message) {
    error_ = "parallel.layout: position " + std::to_string(pos_ + 1) + ": " + message;
    return false;
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string error_;
};

Layout Assemble(const std::vector<std::string>& stage_chars, int64_t pp,
                std::string text) {
  Layout layout;
  layout.pp = pp;
  layout.vpp = static_cast<int64_t>(stage_chars.size()) / pp;
  layout.text = std::move(text);
  int64_t layer = 0, mtp = 0;
  for (size_t i = 0; i < stage_chars.size(); ++i) {
    Stage stage;
    stage.stage = static_cast<int64_t>(i);
    stage.pp_rank = stage.stage % pp;
    stage.chunk = stage.stage / pp;
    for (char c : stage_chars[i]) {
      switch (c) {
        case 'E': stage.slots.push_back({SlotKind::kEmbedding, 0}); break;
        case 't': stage.slots.push_back({SlotKind::kDecoder, layer++}); break;
        case 'm': stage.slots.push_back({SlotKind::kMtp, mtp++}); break;
        case 'L': stage.slots.push_back({SlotKind::kLoss, 0}); break;
      }
    }
    layout.stages.push_back(std::move(stage));
  }
  PlaceRoundRobin(&layout);
  return layout;
}

}  // namespace

int64_t Stage::DecoderLayers() const {
  int64_t n = 0;
  for (const Slot& s : slots) n += s.kind == SlotKind::kDecoder;
  return n;
}

bool Stage::Has(SlotKind kind) const {
  for (const Slot& s : slots) {
    if (s.kind == kind) return true;
  }
  return false;
}

std::string Stage::Describe() const {
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : " ") + part; };
  int64_t first = -1, last = -1;
  auto flush = [&] {
    if (first < 0) return;
    add(first == last ? "t" + std::to_string(first)
                      : "t" + std::to_string(first) + "-t" + std::to_string(last));
    first = last = -1;
  };
  for (const Slot& s : slots) {
    if (s.kind == SlotKind::kDecoder) {
      if (first >= 0 && s.index == last + 1) {
        last = s.index;
      } else {
        flush();
        first = last = s.index;
      }
      continue;
    }
    flush();
    if (s.kind == SlotKind::kEmbedding) add("E");
    if (s.kind == SlotKind::kMtp) add("m" + std::to_string(s.index));
    if (s.kind == SlotKind::kLoss) add("L");
  }
  flush();
  return out.empty() ? "(empty)" : out;
}

StatusOr<std::vector<std::string>> ExpandLayoutString(std::string_view text) {
  StatusOr<std::string> flat = Expander(text).Run();
  if (!flat.ok()) return flat.status();
  std::vector<std::string> stages(1);
  for (char c : *flat) {
    if (c == '|') {
      stages.emplace_back();
    } else {
      stages.back() += c;
    }
  }
  return stages;
}

StatusOr<Layout> ParseLayout(std::string_view text, int64_t pp, int64_t num_layers,
                             int64_t mtp_layers, bool round_robin) {
  StatusOr<std::vector<std::string>> expanded = ExpandLayoutString(text);
  if (!expanded.ok()) return expanded.status();
  const std::vector<std::string>& stages = *expanded;
  const int64_t n = static_cast<int64_t>(stages.size());
  const std::string field = "parallel.layout: ";
  if (n % pp != 0) {
    return Status::Invalid(field + std::to_string(n) +
                           " stages are not divisible by parallel.pp = " +
                           std::to_string(pp));
  }
  std::string flat;
  for (const std::string& s : stages) flat += s;

  std::vector<std::string> problems;
  auto count = [&](char c) {
    int64_t k = 0;
    for (char x : flat) k += x == c;
    return k;
  };
  if (flat.empty() || flat.front() != 'E') {
    problems.push_back("the first layer must be the embedding E");
  } else if (stages.front().empty() || stages.front().front() != 'E') {
    problems.push_back("the first stage must start with the embedding E (no empty stage "
                       "before it)");
  }
  if (flat.empty() || flat.back() != 'L') {
    problems.push_back("the last layer must be the loss L");
  } else if (stages.back().empty() || stages.back().back() != 'L') {
    problems.push_back("the last stage must end with the loss L (no empty stage after it)");
  }
  if (count('E') != 1) {
    problems.push_back("the embedding E must appear exactly once, not " +
                       std::to_string(count('E')) + " times");
  }
  if (count('L') != 1) {
    problems.push_back("the loss L must appear exactly once, not " +
                       std::to_string(count('L')) + " times");
  }
  if (count('t') != num_layers) {
    problems.push_back(std::to_string(count('t')) +
                       " transformer layers t, but the model has " +
                       std::to_string(num_layers));
  }
  if (count('m') != mtp_layers) {
    problems.push_back(std::to_string(count('m')) +
                       " MTP layers m, but the model has " + std::to_string(mtp_layers));
  }
  const size_t first_m = flat.find('m');
  if (first_m != std::string::npos && flat.find('t', first_m) != std::string::npos) {
    problems.push_back("transformer layers t must come before MTP layers m");
  }
  const int64_t vpp = n / pp;
  for (int64_t i = 0; i < n; ++i) {
    const bool has_m = stages[i].find('m') != std::string::npos;
    if (!has_m) continue;
    const int64_t rank = i % pp, chunk = i / pp;
    if (round_robin && chunk != vpp - 1) {
      problems.push_back("stage " + std::to_string(i) +
                         ": MTP layers must be in the last virtual chunk of their rank");
    }
    int64_t here = 0;
    for (char c : stages[i]) here += c == 'm';
    if (here != mtp_layers) {
      problems.push_back("stage " + std::to_string(i) +
                         ": all MTP layers must be in one stage");
    }
    if (round_robin && rank == 0 && pp > 1) {
      problems.push_back("stage " + std::to_string(i) +
                         ": MTP layers must not be on pipeline rank 0");
    }
  }
  if (!problems.empty()) {
    for (std::string& p : problems) p = field + p;
    return Status::Invalid(JoinLines(problems));
  }
  return Assemble(stages, pp, std::string(text));
}

StatusOr<Layout> DefaultLayout(int64_t pp, int64_t vpp, int64_t num_layers,
                               int64_t mtp_layers) {
  const int64_t n = pp * vpp;
  if (num_layers < n) {
    return Status::Invalid("parallel.pp: " + std::to_string(n) +
                           " pipeline stages (pp * vpp) but only " +
                           std::to_string(num_layers) +
                           " transformer layers; give a parallel.layout to allow "
                           "stages without layers");
  }
  const int64_t base = num_layers / n, extra = num_layers % n;
  std::vector<std::string> stages(n);
  for (int64_t i = 0; i < n; ++i) {
    const bool more = i >= 1 && i <= extra;  // extra < n, so stage 0 never
    stages[i] = std::string(base + (more ? 1 : 0), 't');
  }
  stages.front().insert(0, "E");
  stages.back() += std::string(mtp_layers, 'm') + "L";
  return Assemble(stages, pp, "");
}

namespace {

void SetPlacement(Layout* layout, std::vector<std::vector<Hop>> routes) {
  layout->routes = std::move(routes);
  layout->rank_stages.assign(layout->pp, {});
  for (const auto& route : layout->routes) {
    for (size_t s = 0; s < route.size(); ++s) {
      auto& chunks = layout->rank_stages[route[s].rank];
      if (static_cast<int64_t>(chunks.size()) <= route[s].chunk) chunks.resize(route[s].chunk + 1, -1);
      chunks[route[s].chunk] = static_cast<int64_t>(s);
    }
  }
  // Stages report the rank and chunk of the first route.
  for (size_t s = 0; s < layout->stages.size(); ++s) {
    layout->stages[s].pp_rank = layout->routes[0][s].rank;
    layout->stages[s].chunk = layout->routes[0][s].chunk;
  }
}

}  // namespace

Routes RoundRobinRoutes(int64_t pp, int64_t chunks) {
  std::vector<Hop> route;
  for (int64_t s = 0; s < pp * chunks; ++s) route.push_back({s % pp, s / pp});
  return {route};
}

Routes DualPipeRoutes(int64_t pp) {
  std::vector<Hop> forward, backward;
  for (int64_t s = 0; s < pp; ++s) {
    forward.push_back({s, 0});
    backward.push_back({pp - 1 - s, 1});
  }
  return {forward, backward};
}

Routes DualPipeVRoutes(int64_t pp) {
  std::vector<Hop> route;
  for (int64_t s = 0; s < 2 * pp; ++s) route.push_back(s < pp ? Hop{s, 0} : Hop{2 * pp - 1 - s, 1});
  return {route};
}

void PlaceRoundRobin(Layout* layout) {
  const auto stages = static_cast<int64_t>(layout->stages.size());
  SetPlacement(layout, RoundRobinRoutes(layout->pp, stages / layout->pp));
}

Status PlaceDualPipe(Layout* layout) {
  const int64_t p = layout->pp;
  if (p < 2 || p % 2 != 0) {
    return Status::Invalid("schedule.kind: DUALPIPE needs an even parallel.pp, not " +
                           std::to_string(p));
  }
  if (static_cast<int64_t>(layout->stages.size()) != p) {
    return Status::Invalid("schedule.kind: DUALPIPE runs one stage per rank in each direction; "
                           "the layout has " + std::to_string(layout->stages.size()) +
                           " stages for parallel.pp = " + std::to_string(p) +
                           " (give a layout of " + std::to_string(p) + " stages)");
  }
  layout->vpp = 1;
  SetPlacement(layout, DualPipeRoutes(p));
  return Status::Ok();
}

Status PlaceDualPipeV(Layout* layout) {
  const int64_t p = layout->pp;
  if (static_cast<int64_t>(layout->stages.size()) != 2 * p) {
    return Status::Invalid("schedule.kind: DUALPIPE_V runs 2 * parallel.pp stages in a V; the "
                           "layout has " + std::to_string(layout->stages.size()) +
                           " for parallel.pp = " + std::to_string(p) + " (give a layout of " +
                           std::to_string(2 * p) + " stages)");
  }
  SetPlacement(layout, DualPipeVRoutes(p));
  return Status::Ok();
}

}  // namespace stepsim::graph
