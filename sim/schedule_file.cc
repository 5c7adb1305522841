#include "sim/schedule_file.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include "graph/scenario_text.h"
#include "graph/utf8.h"
#include "schedule.pb.h"

namespace stepsim::sim {
namespace {

using google::protobuf::TextFormat;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Locates errors: an offset into the whole text becomes line and column.
class Locator {
 public:
  Locator(std::string_view text, std::string_view filename) : text_(text), filename_(filename) {}

  stepsim::Status At(size_t offset, const std::string& message) const {
    return stepsim::Status::Invalid(graph::LocatedErrorAt(text_, filename_, offset, message));
  }
  std::string Place(size_t offset) const { return graph::PlaceOf(text_, filename_, offset); }
  std::string_view filename() const { return filename_; }

 private:
  std::string_view text_, filename_;
};

// A quoted string (C escapes, adjacent literals joined, as protobuf's text
// format writes them) starting at `text[at]`: its bytes and, for each, the
// offset in `text` it came from. Literals on later lines join only when
// `multiline`. Returns the offset after the last literal (and the blanks
// after it), or npos if a literal is not closed.
size_t DecodeLiteral(std::string_view text, size_t at, bool multiline, std::string* value,
                     std::vector<size_t>* offsets) {
  size_t i = at;
  while (i < text.size() && (text[i] == '"' || text[i] == '\'')) {
    const char quote = text[i++];
    while (true) {
      if (i >= text.size() || text[i] == '\n') return std::string_view::npos;
      if (text[i] == quote) {
        ++i;
        break;
      }
      const size_t from = i;
      char c = text[i++];
      if (c == '\\' && i < text.size()) {
        const char e = text[i++];
        auto digits = [&](int base, int most) {
          int v = 0, n = 0;
          while (n < most && i < text.size() &&
                 (base == 8 ? (text[i] >= '0' && text[i] <= '7')
                            : std::isxdigit(static_cast<unsigned char>(text[i])) != 0)) {
            const char d = text[i++];
            v = v * base + (std::isdigit(static_cast<unsigned char>(d)) ? d - '0'
                                                                       : (std::tolower(d) - 'a' + 10));
            ++n;
          }
          return static_cast<char>(v);
        };
        switch (e) {
          case 'n': c = '\n'; break;
          case 't': c = '\t'; break;
          case 'r': c = '\r'; break;
          case 'a': c = '\a'; break;
          case 'b': c = '\b'; break;
          case 'f': c = '\f'; break;
          case 'v': c = '\v'; break;
          case 'x': c = digits(16, 2); break;
          default:
            if (e >= '0' && e <= '7') {
              --i;
              c = digits(8, 3);
            } else {
              c = e;  // \\ \" \' \?
            }
        }
      }
      value->push_back(c);
      offsets->push_back(from);
    }
    while (i < text.size() && IsSpace(text[i]) && (multiline || text[i] != '\n')) ++i;
  }
  return i;
}

// The compact form's name: a quoted literal, or the rest of the line.
bool NeedsQuotes(std::string_view name) {
  if (name.empty() || IsSpace(name.front()) || IsSpace(name.back()) || name.front() == '"' ||
      name.front() == '\'') {
    return true;
  }
  for (char c : name) {
    if (c == '#' || c == '\\' || static_cast<unsigned char>(c) < 32 || c == 127) return true;
  }
  return false;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 32 || c == 127) {
          const char* digits = "01234567";
          const auto u = static_cast<unsigned char>(c);
          out += std::string("\\") + digits[u >> 6] + digits[(u >> 3) & 7] + digits[u & 7];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

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

// One rank's steps as read: each with the text offset it starts at.
struct RankSteps {
  size_t offset = 0;  // where the rank is declared
  std::vector<Step> steps;
  std::vector<size_t> offsets;
};

// Parses `steps`, whose byte i stands at text offset `offsets[i]`.
stepsim::Status ParseSteps(std::string_view steps, const std::vector<size_t>& offsets,
                           const Locator& at, const graph::Config& c, int64_t chunks,
                           RankSteps* out) {
  size_t i = 0;
  while (i < steps.size()) {
    while (i < steps.size() && IsSpace(steps[i])) ++i;
    const size_t start = i;
    while (i < steps.size() && !IsSpace(steps[i])) ++i;
    if (start == i) break;
    const std::string_view token = steps.substr(start, i - start);
    const size_t where = offsets[start];
    Step step;
    if (!ParseStep(token, &step)) {
      return at.At(where, graph::QuoteValue(token, 40) +
                              " is not a step (F, B, W or BW, a micro-batch, "
                              "optionally .chunk: F3, B3.1)");
    }
    if (step.microbatch >= c.batch.microbatches) {
      return at.At(where, "micro-batch " + std::to_string(step.microbatch) +
                              " is beyond batch.num_microbatches = " +
                              std::to_string(c.batch.microbatches));
    }
    if (step.chunk >= chunks) {
      return at.At(where, "chunk " + std::to_string(step.chunk) + " is beyond the layout's " +
                              std::to_string(chunks) + " chunks per rank");
    }
    out->steps.push_back(step);
    out->offsets.push_back(where);
  }
  return stepsim::Status::Ok();
}

std::vector<size_t> Consecutive(size_t first, size_t count) {
  std::vector<size_t> offsets(count);
  for (size_t i = 0; i < count; ++i) offsets[i] = first + i;
  return offsets;
}

// Reads the protobuf text form into `ranks`.
stepsim::Status ReadProtoForm(std::string_view text, const Locator& at, const graph::Config& c,
                              int64_t chunks, std::string* name,
                              const std::function<stepsim::Status(int64_t, size_t)>& add_rank,
                              std::map<int64_t, RankSteps>* ranks) {
  ScheduleFile file;
  stepsim::Status parsed = graph::ParseTextMessage(text, at.filename(), &file);
  if (!parsed.ok()) return parsed;
  // Parsed again for the place of every steps string (the first parse has
  // checked the text).
  TextFormat::ParseInfoTree tree;
  TextFormat::Parser parser;
  parser.WriteLocationsTo(&tree);
  ScheduleFile again;
  parser.ParseFromString(std::string(text), &again);
  *name = file.name();
  const auto* ranks_field = ScheduleFile::descriptor()->FindFieldByName("ranks");
  const auto* rank_field = RankSchedule::descriptor()->FindFieldByName("rank");
  const auto* steps_field = RankSchedule::descriptor()->FindFieldByName("steps");
  for (int i = 0; i < file.ranks_size(); ++i) {
    const RankSchedule& r = file.ranks(i);
    const TextFormat::ParseInfoTree* nested = tree.GetTreeForNested(ranks_field, i);
    auto offset_of = [&](const google::protobuf::FieldDescriptor* f) -> size_t {
      if (nested == nullptr) return std::string_view::npos;
      const TextFormat::ParseLocation loc = nested->GetLocation(f, -1);
      if (loc.line < 0) return std::string_view::npos;
      size_t line_start = 0;
      for (int l = 0; l < loc.line && line_start < text.size(); ++l) {
        const size_t nl = text.find('\n', line_start);
        line_start = nl == std::string_view::npos ? text.size() : nl + 1;
      }
      size_t o = line_start;
      for (int col = 0; o < text.size() && text[o] != '\n' && col < loc.column; ++o) {
        col = text[o] == '\t' ? col + 8 - col % 8 : col + 1;
      }
      return o;
    };
    size_t declared = offset_of(rank_field);
    if (declared == std::string_view::npos) declared = offset_of(steps_field);
    if (declared == std::string_view::npos) declared = 0;
    stepsim::Status added = add_rank(r.rank(), declared);
    if (!added.ok()) return added;
    RankSteps& out = (*ranks)[r.rank()];
    out.offset = declared;
    // The literal after "steps:"; offsets of its bytes.
    size_t field = offset_of(steps_field);
    if (field == std::string_view::npos) field = declared;
    size_t quote = field;
    while (quote < text.size() && text[quote] != '"' && text[quote] != '\'') ++quote;
    std::string decoded;
    std::vector<size_t> offsets;
    if (DecodeLiteral(text, quote, true, &decoded, &offsets) == std::string_view::npos ||
        decoded != r.steps()) {
      offsets = std::vector<size_t>(r.steps().size(), field);  // an unusual spelling
    }
    stepsim::Status steps = ParseSteps(r.steps(), offsets, at, c, chunks, &out);
    if (!steps.ok()) return steps;
  }
  return stepsim::Status::Ok();
}

// Reads the compact line form into `ranks`.
stepsim::Status ReadCompactForm(std::string_view text, const Locator& at, const graph::Config& c,
                                int64_t chunks, std::string* name,
                                const std::function<stepsim::Status(int64_t, size_t)>& add_rank,
                                std::map<int64_t, RankSteps>* ranks) {
  size_t line_start = 0;
  while (line_start <= text.size()) {
    size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    std::string_view line = text.substr(line_start, line_end - line_start);
    size_t b = 0;
    while (b < line.size() && IsSpace(line[b])) ++b;
    const size_t offset = line_start + b;
    std::string_view body = line.substr(b);
    if (body.substr(0, 5) == "name:") {
      size_t v = 5;
      while (v < body.size() && IsSpace(body[v])) ++v;
      if (v < body.size() && (body[v] == '"' || body[v] == '\'')) {
        std::string decoded;
        std::vector<size_t> offsets;
        const size_t after = DecodeLiteral(text, offset + v, false, &decoded, &offsets);
        if (after == std::string_view::npos) return at.At(offset + v, "the quoted name is not closed");
        const size_t rest = after < line_end ? text.find_first_not_of(" \t\r", after) : line_end;
        if (rest != std::string_view::npos && rest < line_end && text[rest] != '#') {
          return at.At(rest, "unexpected text after the quoted name");
        }
        if (graph::FirstInvalidUtf8(decoded) != std::string::npos) {
          return at.At(offset + v, "the name's escapes make invalid UTF-8");
        }
        *name = decoded;
      } else {
        std::string_view raw = body.substr(v);
        raw = raw.substr(0, raw.find('#'));
        while (!raw.empty() && IsSpace(raw.back())) raw.remove_suffix(1);
        *name = std::string(raw);
      }
    } else {
      body = body.substr(0, body.find('#'));
      if (body.find_first_not_of(" \t\r") == std::string_view::npos) {
        // blank or a comment
      } else if (body.substr(0, 5) == "rank ") {
        const size_t colon = body.find(':');
        int64_t rank = -1;
        bool ok = colon != std::string_view::npos && colon > 5;
        if (ok) {
          std::string number(body.substr(5, colon - 5));
          while (!number.empty() && IsSpace(number.back())) number.pop_back();
          ok = !number.empty() && number.size() < 10 &&
               number.find_first_not_of("0123456789") == std::string::npos;
          if (ok) rank = std::stoll(number);
        }
        if (!ok) return at.At(offset, "expected \"rank N: steps...\"");
        stepsim::Status added = add_rank(rank, offset);
        if (!added.ok()) return added;
        RankSteps& out = (*ranks)[rank];
        out.offset = offset;
        const std::string_view steps = body.substr(colon + 1);
        stepsim::Status parsed =
            ParseSteps(steps, Consecutive(offset + colon + 1, steps.size()), at, c, chunks, &out);
        if (!parsed.ok()) return parsed;
      } else {
        return at.At(offset, "expected \"name: ...\" or \"rank N: steps...\"");
      }
    }
    if (line_end == text.size()) break;
    line_start = line_end + 1;
  }
  return stepsim::Status::Ok();
}

}  // namespace

StatusOr<Schedule> ParseScheduleFile(std::string_view text, std::string_view filename,
                                     const graph::Config& c) {
  stepsim::Status size = CheckScheduleSize(c);
  if (!size.ok()) return size;
  if (text.find('\0') != std::string_view::npos) {
    return stepsim::Status::Invalid(std::string(filename) + ": not a text file");
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  const Locator at(text, filename);
  const size_t invalid = graph::FirstInvalidUtf8(text);
  if (invalid != std::string_view::npos) {
    return at.At(invalid, "invalid UTF-8: stepsim reads text files as UTF-8");
  }
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
  std::map<int64_t, RankSteps> ranks;
  auto add_rank = [&](int64_t rank, size_t where) -> stepsim::Status {
    if (rank < 0 || rank >= c.parallel.pp) {
      return at.At(where, "rank " + std::to_string(rank) + " is outside parallel.pp = " +
                              std::to_string(c.parallel.pp));
    }
    if (ranks.count(rank)) return at.At(where, "rank " + std::to_string(rank) + " appears twice");
    ranks[rank];
    return stepsim::Status::Ok();
  };
  const bool proto = EndsWith(filename, ".textproto") || EndsWith(filename, ".pbtxt");
  stepsim::Status read = proto ? ReadProtoForm(text, at, c, s.chunks, &s.name, add_rank, &ranks)
                               : ReadCompactForm(text, at, c, s.chunks, &s.name, add_rank, &ranks);
  if (!read.ok()) return read;
  if (static_cast<int64_t>(ranks.size()) != c.parallel.pp) {
    return stepsim::Status::Invalid(std::string(filename) + ": has " +
                                    std::to_string(ranks.size()) +
                                    " ranks, but the scenario has parallel.pp = " +
                                    std::to_string(c.parallel.pp));
  }
  for (auto& [rank, steps] : ranks) s.ranks.push_back(steps.steps);
  if (s.name.empty()) s.name = graph::RepairUtf8(filename);
  // Every problem at the step (or the rank) it concerns.
  std::vector<std::string> lines;
  for (const ScheduleProblem& p : FindScheduleProblems(s)) {
    const auto it = ranks.find(p.rank);
    std::string place = std::string(filename);
    if (it != ranks.end()) {
      place = at.Place(p.step >= 0 && p.step < static_cast<int64_t>(it->second.offsets.size())
                           ? it->second.offsets[p.step]
                           : it->second.offset);
    }
    lines.push_back(place + ": " + p.message);
  }
  if (!lines.empty()) return stepsim::Status::Invalid(JoinLines(lines, 20));
  return s;
}

std::string FormatScheduleFile(const Schedule& s, bool proto) {
  std::string out = "# stepsim schedule: PP " + std::to_string(s.pp) + ", " +
                    std::to_string(s.chunks) + " chunk(s) per rank, " +
                    std::to_string(s.microbatches) + " micro-batches\n";
  std::vector<std::string> steps(s.ranks.size());
  for (size_t r = 0; r < s.ranks.size(); ++r) {
    for (const Step& step : s.ranks[r]) {
      steps[r] += (steps[r].empty() ? "" : " ") + StepName(step, s.chunks);
    }
  }
  if (proto) {
    // Protobuf's own printer: every name it writes reads back.
    ScheduleFile file;
    file.set_name(s.name);
    for (size_t r = 0; r < s.ranks.size(); ++r) {
      RankSchedule* rank = file.add_ranks();
      rank->set_rank(static_cast<int64_t>(r));
      rank->set_steps(steps[r]);
    }
    TextFormat::Printer printer;
    printer.SetUseUtf8StringEscaping(true);
    std::string text;
    printer.PrintToString(file, &text);
    return out + text;
  }
  out += "name: " + (NeedsQuotes(s.name) ? Quote(s.name) : s.name) + "\n";
  for (size_t r = 0; r < s.ranks.size(); ++r) {
    out += "rank " + std::to_string(r) + ": " + steps[r] + "\n";
  }
  return out;
}

}  // namespace stepsim::sim
