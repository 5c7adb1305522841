#include "traces/trace_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>

namespace stepsim::traces {
namespace {

using Json = nlohmann::json;

constexpr int kMaxDepth = 32;
constexpr size_t kMaxProblems = 50;
constexpr size_t kMaxOpenFlows = 1 << 20;  // beyond: no longer constant memory

// nlohmann's syntax errors quote what was read since the last string or
// number ("last read: '...'"), white space too: at most its last
// kLastReadBytes, whole characters and whole <U+XXXX> escapes.
constexpr size_t kLastReadBytes = 64;
std::string ShortenLastRead(std::string what) {
  constexpr std::string_view kQuote = "last read: '";
  const size_t start = what.find(kQuote);
  if (start == std::string::npos) return what;
  const size_t from = start + kQuote.size();
  size_t end = what.find("'; expected", from);
  if (end == std::string::npos) end = what.rfind('\'');
  if (end == std::string::npos || end < from || end - from <= kLastReadBytes) return what;
  size_t cut = end - kLastReadBytes;
  for (size_t k = 1; k < 8 && k <= cut - from; ++k) {
    if (what.compare(cut - k, 3, "<U+") == 0) {
      cut = std::min(end, cut - k + 8);
      break;
    }
  }
  while (cut < end && (static_cast<unsigned char>(what[cut]) & 0xC0) == 0x80) ++cut;
  return what.substr(0, from) + "..." + what.substr(cut);
}

// Characters of a stream, read 1 MiB at a time (an input iterator for
// nlohmann's parser reads them), with line numbers counted only when asked.
class Chunks {
 public:
  explicit Chunks(std::istream& in) : in_(in), buffer_(new char[kBytes]) { Fill(); }
  bool done() const {
    looked_past_end_ = pos_ == end_;
    return looked_past_end_;
  }
  char get() const { return buffer_[pos_]; }
  void next() {
    if (++pos_ == end_) Fill();
  }
  // The line of the next character.
  int64_t line() {
    Count(pos_);
    return line_;
  }
  // The line and column of the last character read: where a syntax error is.
  std::pair<int64_t, int64_t> last() {
    // At the start of a read (or at the end of the input), the last
    // character was the previous read's, unless the parser looked past the
    // end: then the error is just after it.
    if (pos_ == 0 && previous_ && !looked_past_end_) return *previous_;
    return Place(pos_ > 0 ? pos_ - 1 : 0);
  }

 private:
  // Counts the line breaks before `to` in the buffer.
  void Count(size_t to) {
    for (; counted_ < to; ++counted_) {
      if (buffer_[counted_] == '\n') {
        ++line_;
        line_start_ = static_cast<int64_t>(counted_) + 1;
      }
    }
  }
  // The line and column of the buffer's character `at`.
  std::pair<int64_t, int64_t> Place(size_t at) {
    Count(at);
    return {line_, line_start_ < 0 ? base_ + static_cast<int64_t>(at) + 1
                                   : static_cast<int64_t>(at) - line_start_ + 1};
  }
  void Fill() {
    if (end_ > 0) previous_ = Place(end_ - 1);
    Count(end_);
    // A line that started in an earlier buffer: its column runs on.
    base_ = line_start_ < 0 ? base_ + static_cast<int64_t>(end_)
                            : static_cast<int64_t>(end_) - line_start_;
    line_start_ = -1;
    in_.read(buffer_.get(), kBytes);
    pos_ = counted_ = 0;
    end_ = static_cast<size_t>(in_.gcount());
  }

  static constexpr size_t kBytes = 1 << 20;
  std::istream& in_;
  std::unique_ptr<char[]> buffer_;
  size_t pos_ = 0, end_ = 0, counted_ = 0;
  int64_t line_ = 1;
  int64_t line_start_ = 0;  // in this buffer, or -1: before it
  int64_t base_ = 0;        // with line_start_ = -1: columns before this buffer
  std::optional<std::pair<int64_t, int64_t>> previous_;  // the previous read's last character
  mutable bool looked_past_end_ = false;                 // done() was last true
};

class ChunkIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = char;

  ChunkIterator() = default;  // the end
  explicit ChunkIterator(Chunks* chunks) : chunks_(chunks) {}
  char operator*() const { return chunks_->get(); }
  ChunkIterator& operator++() {
    chunks_->next();
    return *this;
  }
  bool operator==(const ChunkIterator& other) const { return AtEnd() == other.AtEnd(); }
  bool operator!=(const ChunkIterator& other) const { return !(*this == other); }

 private:
  bool AtEnd() const { return chunks_ == nullptr || chunks_->done(); }
  Chunks* chunks_ = nullptr;
};

// Where a viewer puts a slice: [start_ns, end_ns] as Perfetto reads it and
// [ts, end] in the doubles DevTools adds.
struct Placed {
  int64_t start_ns = 0, dur_ns = 0;
  double ts = 0, end = 0;
  int64_t event = 0, line = 0;
};

struct ThreadState {
  std::vector<Placed> perfetto, devtools;  // open slices, innermost last
  std::optional<Placed> last;              // the last slice started
  int64_t last_start_ns = -1;
  int64_t longest_start_ns = -1, longest_end_ns = 0;  // the last slice with a duration
  // Categories of the slices starting at last_start_ns, for DevTools' flow
  // binding by (ts, pid, tid, cat); a category seen twice binds ambiguously.
  std::vector<std::pair<std::string, int>> cats_at_start;
};

// "line:column", as a problem's place (the command puts the file before it).
std::string LineColumn(int64_t line, int64_t column) {
  return std::to_string(line) + ":" + std::to_string(column);
}

struct OpenFlow {
  int64_t event = 0, line = 0, column = 0;
  double ts = 0;
};

// One event's fields as the parser hands them over.
struct Event {
  int64_t index = -1, line = 0, column = 0;  // where its "{" is
  std::string ph, name, cat, scope, bp, id;
  bool has_name = false, has_cat = false, has_id = false;
  std::optional<int64_t> pid, tid;
  bool pid_not_integer = false, tid_not_integer = false;
  std::optional<double> ts, dur;
  std::optional<int64_t> ts_ns, dur_ns;
  bool ts_not_number = false, dur_not_number = false;
  bool has_args = false;
  int64_t args = 0;             // fields of args
  int64_t args_not_number = 0;  // of them, not numbers
  std::string first_bad_arg;
};

class Checker : public nlohmann::json_sax<Json> {
 public:
  Checker(TraceCheck& check, Chunks& chunks) : check_(check), chunks_(chunks) {}

  bool null() override { return Value(Kind::kOther); }
  bool boolean(bool) override { return Value(Kind::kOther); }
  bool number_integer(number_integer_t v) override { return Integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return v > static_cast<uint64_t>(INT64_MAX) ? Value(Kind::kOther)
                                                : Integer(static_cast<int64_t>(v));
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (depth_ == event_depth_ && in_event_) return Number(v, std::nullopt);
    return Value(Kind::kNumber);
  }
  bool string(string_t& s) override {
    if (depth_ == event_depth_ && in_event_) {
      Field(s);
      return true;
    }
    return Value(Kind::kOther);
  }
  bool binary(binary_t&) override { return Value(Kind::kOther); }

  bool start_object(std::size_t) override {
    if (!Enter()) return false;
    if (depth_ == 1) {
      root_object_ = true;
    } else if (depth_ == event_depth_ && in_events_) {
      in_event_ = true;
      event_ = Event{};
      event_.index = check_.events++;
      std::tie(event_.line, event_.column) = chunks_.last();
    } else if (depth_ == event_depth_ + 1 && in_event_ && key_ == "args") {
      event_.has_args = true;
      in_args_ = true;
    } else {
      Value(Kind::kOther);
    }
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1 && root_object_) {
      top_key_ = k;
    } else if (depth_ == event_depth_ && in_event_) {
      key_ = k;
    } else if (depth_ == event_depth_ + 1 && in_args_) {
      arg_key_ = k;
      ++event_.args;
    }
    return true;
  }
  bool end_object() override {
    if (depth_ == event_depth_ && in_event_) {
      in_event_ = false;
      FinishEvent();
    } else if (depth_ == event_depth_ + 1 && in_args_) {
      in_args_ = false;
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (!Enter()) return false;
    if (depth_ == 1) {
      in_events_ = true;  // the trace is a bare array of events
      event_depth_ = 2;
      saw_events_ = true;
    } else if (depth_ == 2 && root_object_ && top_key_ == "traceEvents") {
      in_events_ = true;
      event_depth_ = 3;
      saw_events_ = true;
    } else {
      Value(Kind::kOther);
    }
    return true;
  }
  bool end_array() override {
    if (depth_ == event_depth_ - 1) in_events_ = false;
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    std::string what = ShortenLastRead(e.what());
    const size_t at = what.find("syntax error");
    const auto [line, column] = chunks_.last();
    Problem("syntax",
            LineColumn(line, column) + ": not valid JSON: " +
                (at == std::string::npos ? what : what.substr(at)));
    return false;
  }

  void Finish() {
    if (!saw_events_ && check_.problem_count == 0) Problem("structure", "no traceEvents array");
    for (const auto& [key, flow] : open_flows_) {
      Problem("flow pairing", LineColumn(flow.line, flow.column) + ": event " +
                                  std::to_string(flow.event) + ": flow " + key +
                                  " starts but never ends");
    }
  }

 private:
  enum class Kind { kNumber, kOther };

  bool Enter() {
    if (++depth_ > kMaxDepth) {
      const auto [line, column] = chunks_.last();
      Problem("structure", LineColumn(line, column) + ": nested more than " +
                               std::to_string(kMaxDepth) + " levels deep");
      return false;
    }
    return true;
  }

  // A value that is not a field of an event: only counter args care.
  bool Value(Kind kind) {
    if (in_args_ && depth_ == event_depth_ + 1 && kind != Kind::kNumber) {
      if (event_.args_not_number++ == 0) event_.first_bad_arg = arg_key_;
    }
    return true;
  }

  bool Integer(int64_t v) {
    if (depth_ == event_depth_ && in_event_) return Number(static_cast<double>(v), v);
    return Value(Kind::kNumber);
  }

  // A number field of an event; `integer` if it was written as one.
  bool Number(double v, std::optional<int64_t> integer) {
    if (key_ == "pid" || key_ == "tid") {
      const bool whole = integer.has_value();
      (key_ == "pid" ? event_.pid : event_.tid) = whole ? *integer : static_cast<int64_t>(v);
      (key_ == "pid" ? event_.pid_not_integer : event_.tid_not_integer) = !whole;
    } else if (key_ == "ts" || key_ == "dur") {
      // Perfetto's CoerceToTs: whole microseconds exactly, else rounded ns.
      const int64_t ns = integer ? *integer * 1000
                                 : (v == std::trunc(v) ? static_cast<int64_t>(v) * 1000
                                                       : std::llround(v * 1000.0));
      (key_ == "ts" ? event_.ts : event_.dur) = v;
      (key_ == "ts" ? event_.ts_ns : event_.dur_ns) = ns;
    } else if (key_ == "id") {
      event_.has_id = true;
      event_.id = integer ? std::to_string(*integer) : std::to_string(v);
    }
    return true;
  }

  void Field(const std::string& s) {
    if (key_ == "ph") {
      event_.ph = s;
    } else if (key_ == "name") {
      event_.name = s;
      event_.has_name = true;
    } else if (key_ == "cat") {
      event_.cat = s;
      event_.has_cat = true;
    } else if (key_ == "s") {
      event_.scope = s;
    } else if (key_ == "bp") {
      event_.bp = s;
    } else if (key_ == "id") {
      event_.has_id = true;
      event_.id = s;
    } else if (key_ == "ts" || key_ == "dur") {
      (key_ == "ts" ? event_.ts_not_number : event_.dur_not_number) = true;
    } else if (key_ == "pid" || key_ == "tid") {
      (key_ == "pid" ? event_.pid_not_integer : event_.tid_not_integer) = true;
    }
  }

  void Problem(const char* rule, const std::string& text) {
    if (check_.problems.size() < kMaxProblems) check_.problems.push_back(text);
    ++check_.problem_count;
    ++check_.by_rule[rule];
  }
  void EventProblem(const char* rule, const std::string& text) {
    Problem(rule, LineColumn(event_.line, event_.column) + ": event " +
                      std::to_string(event_.index) +
                      (event_.has_name ? " \"" + event_.name + "\"" : std::string()) + ": " + text);
  }

  void FinishEvent() {
    const Event& e = event_;
    if (e.ph.size() != 1) {
      EventProblem("structure", e.ph.empty() ? "no \"ph\"" : "\"ph\" is not one letter");
      return;
    }
    const char ph = e.ph[0];
    if (!e.has_name) EventProblem("structure", "no \"name\"");
    bool ids_ok = true;
    for (const auto& [field, value, not_integer] : {std::tuple{"pid", e.pid, e.pid_not_integer},
                                                    std::tuple{"tid", e.tid, e.tid_not_integer}}) {
      if (!value || not_integer) {
        EventProblem("ids", std::string("no integer \"") + field + "\"");
        ids_ok = false;
      } else if (*value < 1 || *value > 4294967295) {
        const bool tid = field == std::string_view("tid");
        EventProblem(
            "ids", std::string("\"") + field + "\" is " + std::to_string(*value) +
                       ": it must be from 1 to 4294967295" +
                       (tid && *value == 0 ? " (Perfetto reads a tid of 0 as the pid: that thread "
                                             "merges with another)"
                                           : ""));
        ids_ok = *value >= 0 && *value <= 4294967295;  // still a thread to check
      }
    }
    if (ph == 'M') return;
    if (!e.ts || e.ts_not_number) {
      EventProblem("structure", "no numeric \"ts\"");
      return;
    }
    if (*e.ts < 0) {
      EventProblem("structure", "negative \"ts\"");
      return;
    }
    if (!ids_ok) return;
    ThreadState& thread = threads_[{*e.pid, *e.tid}];
    switch (ph) {
      case 'X':
        Slice(thread);
        break;
      case 'C':
        ++check_.counters;
        if (!e.has_args || e.args == 0) {
          EventProblem("counters", "counter without args");
        } else if (e.args_not_number > 0) {
          EventProblem("counters", "counter series \"" + e.first_bad_arg + "\" is not a number");
        }
        break;
      case 'I':
        ++check_.instants;
        if (e.scope != "t" && e.scope != "p" && e.scope != "g") {
          EventProblem("instants", "instant event without a scope \"s\" of \"t\", \"p\" or \"g\"");
        }
        break;
      case 'i':
        EventProblem("instants",
                     "\"ph\":\"i\": the DevTools trace engine keeps only \"ph\":\"I\" instants");
        break;
      case 's':
      case 'f':
        Flow(thread, ph);
        break;
      default:
        EventProblem("structure", std::string("unexpected phase \"") + ph +
                                      "\" (stepsim traces use X, C, I, s, f and M)");
    }
  }

  void Slice(ThreadState& thread) {
    const Event& e = event_;
    ++check_.slices;
    if (!e.dur || e.dur_not_number || *e.dur < 0) {
      EventProblem("structure", "X slice without a non-negative numeric \"dur\"");
      return;
    }
    Placed p{*e.ts_ns, *e.dur_ns, *e.ts, *e.ts + *e.dur, e.index, e.line};
    const int64_t end_ns = p.start_ns + p.dur_ns;
    // In start order; at one start, slices that last longest first (as
    // DevTools sorts them; a zero-length one anywhere, as it never holds
    // another).
    if (thread.last_start_ns > p.start_ns ||
        (p.dur_ns > 0 && thread.longest_start_ns == p.start_ns && thread.longest_end_ns < end_ns)) {
      EventProblem("order", "starts before the slice before it on its thread (line " +
                                std::to_string(thread.last->line) +
                                "): each thread's slices must come in start order, longest first");
      return;
    }
    if (p.dur_ns > 0) {
      thread.longest_start_ns = p.start_ns;
      thread.longest_end_ns = end_ns;
    }
    // Perfetto: close what ended, then refuse a partial overlap.
    auto& open = thread.perfetto;
    bool spilled = false;
    for (size_t i = open.size(); i-- > 0;) {
      const Placed& o = open[i];
      const int64_t o_end = o.start_ns + o.dur_ns;
      if (o_end < p.start_ns || (o_end == p.start_ns && !(o.dur_ns == 0 && p.dur_ns == 0))) {
        open.pop_back();
        continue;
      }
      if (p.start_ns < o_end && end_ns > o_end) {
        EventProblem("Perfetto overlaps",
                     "starts inside the slice of line " + std::to_string(o.line) + " and ends " +
                         std::to_string(end_ns - o_end) +
                         " ns after it: Perfetto spills it to an overlap track");
        spilled = true;
        break;
      }
    }
    if (!spilled) open.push_back(p);
    // DevTools: pop what the slice starts after; drop it if it ends after
    // its parent, in floating point. A zero-length slice is never dropped
    // and never holds another.
    auto& tree = thread.devtools;
    while (p.dur_ns > 0 && !tree.empty() && p.ts >= tree.back().end) tree.pop_back();
    if (p.dur_ns == 0) {
      // nothing to place
    } else if (!tree.empty() && p.end > tree.back().end) {
      char at[64];
      std::snprintf(at, sizeof at, "%.17g > %.17g", p.end, tree.back().end);
      EventProblem("DevTools drops", "ends after the slice of line " +
                                         std::to_string(tree.back().line) +
                                         " that holds it, in floating point (ts + dur: " + at +
                                         "): the DevTools trace engine drops it");
    } else {
      tree.push_back(p);
    }
    if (p.start_ns != thread.last_start_ns) thread.cats_at_start.clear();
    bool seen = false;
    for (auto& [cat, count] : thread.cats_at_start) {
      if (cat == e.cat) {
        ++count;
        seen = true;
      }
    }
    if (!seen) thread.cats_at_start.push_back({e.cat, 1});
    thread.last_start_ns = p.start_ns;
    thread.last = p;
  }

  void Flow(ThreadState& thread, char ph) {
    const Event& e = event_;
    if (!e.has_id) {
      EventProblem("flow pairing", "flow without \"id\"");
      return;
    }
    // Bound to the slice it follows: the last one started on its thread,
    // starting at the flow's timestamp, alone there with its category.
    const std::string where = ph == 's' ? "start" : "end";
    if (!thread.last || thread.last_start_ns != *e.ts_ns) {
      EventProblem("flow binding", "flow " + where +
                                       " does not follow a slice starting at its ts on its thread: "
                                       "both viewers bind it elsewhere");
    } else if (thread.perfetto.empty() || thread.perfetto.back().event != thread.last->event) {
      EventProblem("flow binding",
                   "flow " + where + " follows a slice that is not the innermost open one");
    } else {
      int same_cat = 0;
      for (const auto& [cat, count] : thread.cats_at_start) {
        if (cat == e.cat) same_cat = count;
      }
      if (same_cat != 1) {
        EventProblem(
            "flow binding",
            "flow " + where + " has category \"" + e.cat + "\", which " +
                (same_cat == 0 ? std::string("no slice starting there has")
                               : std::to_string(same_cat) + " slices starting there have") +
                ": DevTools binds a flow to the first event with its ts, pid, tid and cat");
      }
    }
    const std::string key = "\"" + e.cat + "/" + e.name + "/" + e.id + "\"";
    if (ph == 's') {
      if (open_flows_.count(key) > 0) {
        EventProblem("flow pairing", "flow " + key + " starts twice");
      } else if (open_flows_.size() >= kMaxOpenFlows) {
        EventProblem("flow pairing",
                     "more than " + std::to_string(kMaxOpenFlows) + " flows open at once");
      } else {
        open_flows_[key] = {e.index, e.line, e.column, *e.ts};
      }
      return;
    }
    if (e.bp != "e") {
      EventProblem("flow binding",
                   "flow end without \"bp\":\"e\": Perfetto binds it to the next slice instead");
    }
    const auto it = open_flows_.find(key);
    if (it == open_flows_.end()) {
      EventProblem("flow pairing", "flow " + key + " ends without a start before it");
      return;
    }
    if (*e.ts < it->second.ts)
      EventProblem("flow pairing", "flow " + key + " ends before it starts");
    open_flows_.erase(it);
    ++check_.flows;
  }

  TraceCheck& check_;
  Chunks& chunks_;
  int depth_ = 0;
  int event_depth_ = 3;
  bool root_object_ = false, in_events_ = false, saw_events_ = false;
  bool in_event_ = false, in_args_ = false;
  std::string top_key_, key_, arg_key_;
  Event event_;
  std::map<std::pair<int64_t, int64_t>, ThreadState> threads_;
  std::map<std::string, OpenFlow> open_flows_;
};

}  // namespace

TraceCheck CheckChromeTrace(std::istream& in) {
  TraceCheck check;
  Chunks chunks(in);
  Checker checker(check, chunks);
  if (chunks.done()) {
    check.problems.push_back("empty: not a trace");
    check.problem_count = 1;
    check.by_rule["structure"] = 1;
    return check;
  }
  const bool parsed = Json::sax_parse(ChunkIterator(&chunks), ChunkIterator(), &checker,
                                      nlohmann::detail::input_format_t::json, true);
  if (parsed) checker.Finish();
  return check;
}

TraceCheck CheckChromeTrace(const std::string& json) {
  std::istringstream in(json);
  return CheckChromeTrace(in);
}

}  // namespace stepsim::traces
