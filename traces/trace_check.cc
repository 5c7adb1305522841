#include "traces/trace_check.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

namespace stepsim::traces {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

const Value* Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? nullptr : &it->second;
}

bool IsNumber(const Value* v) { return v != nullptr && v->kind_case() == Value::kNumberValue; }
bool IsString(const Value* v) { return v != nullptr && v->kind_case() == Value::kStringValue; }

// Timestamps compared in whole nanoseconds: the trace prints microseconds
// with three decimals, and sums of parsed doubles are not exact.
int64_t Ns(double us) { return std::llround(us * 1000); }

struct Slice {
  int64_t ts, end;
  int64_t index;
};

}  // namespace

TraceCheck CheckChromeTrace(const std::string& json) {
  TraceCheck check;
  // Traces nest a few levels; deep nesting would make the parser crawl.
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '[' || c == '{') deepest = std::max(deepest, ++depth);
    if (c == ']' || c == '}') --depth;
  }
  if (deepest > 32) {
    check.problems.push_back("nested " + std::to_string(deepest) +
                             " levels deep; a trace needs at most 32");
    return check;
  }
  Struct root;
  google::protobuf::util::JsonParseOptions options;
  if (!google::protobuf::util::JsonStringToMessage(json, &root, options).ok()) {
    check.problems.push_back("not valid JSON");
    return check;
  }
  const Value* events = Field(root, "traceEvents");
  if (events == nullptr || events->kind_case() != Value::kListValue) {
    check.problems.push_back("no traceEvents array");
    return check;
  }
  using Thread = std::pair<double, double>;  // (pid, tid)
  std::map<Thread, std::vector<Slice>> slices;
  struct FlowPoint {
    int64_t index;
    Thread thread;
    int64_t ts;
  };
  std::map<std::string, std::vector<FlowPoint>> starts, ends;
  auto problem = [&](int64_t i, const std::string& what) {
    if (check.problems.size() < 50) {
      check.problems.push_back("event " + std::to_string(i) + ": " + what);
    }
  };
  int64_t i = -1;
  for (const Value& v : events->list_value().values()) {
    ++i;
    ++check.events;
    if (v.kind_case() != Value::kStructValue) {
      problem(i, "not an object");
      continue;
    }
    const Struct& e = v.struct_value();
    const Value* ph = Field(e, "ph");
    if (!IsString(ph)) {
      problem(i, "no ph");
      continue;
    }
    if (!IsString(Field(e, "name"))) problem(i, "no name");
    if (!IsNumber(Field(e, "pid"))) problem(i, "no numeric pid");
    const std::string phase = ph->string_value();
    if (phase == "M") continue;
    const Value* ts = Field(e, "ts");
    if (!IsNumber(ts)) {
      problem(i, "no numeric ts");
      continue;
    }
    const Value* tid = Field(e, "tid");
    const Thread thread{Field(e, "pid") ? Field(e, "pid")->number_value() : 0,
                        IsNumber(tid) ? tid->number_value() : 0};
    if (phase == "X") {
      const Value* dur = Field(e, "dur");
      if (!IsNumber(dur) || dur->number_value() < 0) {
        problem(i, "X slice without a non-negative numeric dur");
        continue;
      }
      ++check.slices;
      slices[thread].push_back(
          {Ns(ts->number_value()), Ns(ts->number_value()) + Ns(dur->number_value()), i});
    } else if (phase == "C") {
      ++check.counters;
      const Value* args = Field(e, "args");
      if (args == nullptr || args->kind_case() != Value::kStructValue ||
          args->struct_value().fields().empty()) {
        problem(i, "counter without args");
        continue;
      }
      for (const auto& [key, value] : args->struct_value().fields()) {
        if (value.kind_case() != Value::kNumberValue) problem(i, "counter " + key + " not numeric");
      }
    } else if (phase == "s" || phase == "f") {
      const Value* id = Field(e, "id");
      if (id == nullptr) {
        problem(i, "flow without id");
        continue;
      }
      const std::string key = (IsString(Field(e, "cat")) ? Field(e, "cat")->string_value() : "") +
                              "/" + (IsNumber(id) ? std::to_string(id->number_value())
                                                  : id->string_value());
      (phase == "s" ? starts : ends)[key].push_back({i, thread, Ns(ts->number_value())});
    } else if (phase == "i" || phase == "I") {
      if (!IsString(Field(e, "s"))) problem(i, "instant event without a scope s");
    } else {
      problem(i, "unexpected phase " + phase);
    }
  }
  // Nesting: sorted by start (longer first), each slice inside the open one
  // or after it.
  for (auto& [thread, list] : slices) {
    std::stable_sort(list.begin(), list.end(), [](const Slice& a, const Slice& b) {
      return a.ts != b.ts ? a.ts < b.ts : a.end > b.end;
    });
    std::vector<const Slice*> open;
    for (const Slice& s : list) {
      while (!open.empty() && open.back()->end <= s.ts) open.pop_back();
      if (!open.empty() && s.end > open.back()->end) {
        problem(s.index, "slice overlaps slice " + std::to_string(open.back()->index) +
                             " on the same thread without nesting");
      }
      open.push_back(&s);
    }
  }
  auto inside_slice = [&](const FlowPoint& p) {
    auto it = slices.find(p.thread);
    if (it == slices.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(),
                       [&](const Slice& s) { return s.ts <= p.ts && p.ts <= s.end; });
  };
  for (const auto& [key, list] : starts) {
    auto it = ends.find(key);
    if (list.size() != 1 || it == ends.end() || it->second.size() != 1) {
      problem(list.front().index, "flow " + key + " is not one start paired with one end");
      continue;
    }
    const FlowPoint& s = list.front();
    const FlowPoint& f = it->second.front();
    if (f.ts < s.ts) problem(f.index, "flow " + key + " ends before it starts");
    if (!inside_slice(s)) problem(s.index, "flow start outside any slice of its thread");
    if (!inside_slice(f)) problem(f.index, "flow end outside any slice of its thread");
    ++check.flows;
  }
  for (const auto& [key, list] : ends) {
    if (starts.find(key) == starts.end()) problem(list.front().index, "flow " + key + " has no start");
  }
  return check;
}

}  // namespace stepsim::traces
