// libFuzzer target: `stepsim check-trace` input, any bytes as a Chrome
// trace, through the streaming checker (traces/trace_check.h), which reads
// 1 MiB at a time. Each input is checked as it is; one in eight (which,
// a hash of it picks: checking a padded input takes some 0.2 s here, 200
// times a plain one) also after enough line breaks and a few spaces that
// the 1 MiB boundary falls inside it (at a place the input picks), so that
// tokens, lines and errors straddle two reads. Both must agree: the same
// counts and rules, the same problems, their lines moved by the line breaks
// added (and columns of the first line by the spaces).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "traces/trace_check.h"

namespace {

constexpr size_t kRead = size_t{1} << 20;  // what traces/trace_check.cc reads at once

struct Place {
  int64_t line = 0, column = -1;  // column -1: none
  std::string rest;               // the text after it, with "line N" as "line #"
};

// A problem's leading "LINE:COLUMN", and the rest.
Place Split(const std::string& problem) {
  Place p;
  size_t i = 0;
  auto number = [&](std::string_view prefix) -> std::optional<int64_t> {
    if (problem.compare(i, prefix.size(), prefix) != 0) return std::nullopt;
    size_t j = i + prefix.size();
    int64_t v = 0;
    const size_t start = j;
    while (j < problem.size() && problem[j] >= '0' && problem[j] <= '9' && j - start < 18) {
      v = v * 10 + (problem[j++] - '0');
    }
    if (j == start) return std::nullopt;
    i = j;
    return v;
  };
  if (std::optional<int64_t> line = number("")) {
    if (std::optional<int64_t> column = number(":")) {
      p.line = *line;
      p.column = *column;
    } else {
      i = 0;  // not a place
    }
  }
  for (size_t j = i; j < problem.size(); ++j) {
    p.rest += problem[j];
    if (problem.compare(j, 5, "line ") == 0 && j + 5 < problem.size() && problem[j + 5] >= '0' &&
        problem[j + 5] <= '9') {
      p.rest += "ine #";
      for (j += 5; j + 1 < problem.size() && problem[j + 1] >= '0' && problem[j + 1] <= '9';) ++j;
    }
  }
  // nlohmann-json's "last read: '...'" holds what it read since the last
  // string or number, white space too (before the first one, the padding),
  // cut to its last 64 bytes after a "...": compared without either.
  const std::string_view quote = "last read: '";
  if (const size_t at = p.rest.find(quote); at != std::string::npos) {
    size_t end = at + quote.size();
    if (p.rest.compare(end, 3, "...") == 0) end += 3;
    for (bool more = true; more;) {
      more = false;
      for (std::string_view blank : {" ", "\t", "\r", "\n", "<U+000A>", "<U+000D>", "<U+0009>"}) {
        if (p.rest.compare(end, blank.size(), blank) == 0) {
          end += blank.size();
          more = true;
        }
      }
    }
    p.rest.erase(at + quote.size(), end - at - quote.size());
  }
  return p;
}

[[noreturn]] void Disagree(const char* what, const std::string& plain, const std::string& padded) {
  std::fprintf(stderr,
               "check-trace disagrees across a read boundary: %s\n  as is:  %s\n  padded: %s\n",
               what, plain.c_str(), padded.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace traces = stepsim::traces;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const traces::TraceCheck plain = traces::CheckChromeTrace(text);
  if (size == 0 || size >= kRead) return 0;

  // Where the boundary falls: a byte of the input that its first bytes pick.
  uint32_t hash = 2166136261u;
  for (size_t i = 0; i < size && i < 8; ++i) hash = (hash ^ data[i]) * 16777619u;
  uint32_t whole = hash;  // picks the inputs padded: their first bytes are much the same
  for (size_t i = 8; i < size; ++i) whole = (whole ^ data[i]) * 16777619u;
  if (whole % 8 != 0) return 0;
  const size_t cut = hash % size;
  const size_t spaces = (hash >> 24) % 4;
  const size_t newlines = kRead - cut - spaces;
  const traces::TraceCheck padded =
      traces::CheckChromeTrace(std::string(newlines, '\n') + std::string(spaces, ' ') + text);

  const auto counts = [](const traces::TraceCheck& c) {
    return "events " + std::to_string(c.events) + " slices " + std::to_string(c.slices) +
           " counters " + std::to_string(c.counters) + " instants " + std::to_string(c.instants) +
           " flows " + std::to_string(c.flows) + " problems " + std::to_string(c.problem_count) +
           " listed " + std::to_string(c.problems.size());
  };
  if (counts(plain) != counts(padded)) Disagree("counts", counts(plain), counts(padded));
  if (plain.by_rule != padded.by_rule) Disagree("rules", counts(plain), counts(padded));
  for (size_t i = 0; i < plain.problems.size(); ++i) {
    const Place a = Split(plain.problems[i]), b = Split(padded.problems[i]);
    const bool first_line = a.line == 1;
    if (a.rest != b.rest || (a.line > 0) != (b.line > 0) ||
        (a.line > 0 && b.line != a.line + static_cast<int64_t>(newlines)) ||
        a.column !=
            (b.column < 0 ? -1 : b.column - (first_line ? static_cast<int64_t>(spaces) : 0))) {
      Disagree("a problem", plain.problems[i], padded.problems[i]);
    }
  }
  return 0;
}
