// check-trace's rules, each broken once, with the message it gives; the
// rules come from Perfetto's JSON importer and DevTools' trace engine
// (traces/trace_check.h).
#include "traces/trace_check.h"

#include <gtest/gtest.h>

#include <sstream>

namespace stepsim::traces {
namespace {

std::string Trace(const std::string& events) { return "{\"traceEvents\":[\n" + events + "]}"; }

std::vector<std::string> Problems(const std::string& events) {
  return CheckChromeTrace(Trace(events)).problems;
}

using Lines = std::vector<std::string>;

TEST(TraceCheckTest, AcceptsAWellFormedTrace) {
  const TraceCheck c = CheckChromeTrace(Trace(
      R"({"name":"process_name","ph":"M","pid":1,"tid":1,"args":{"name":"rank 0"}},
{"name":"F0","cat":"step","ph":"X","pid":1,"tid":1,"ts":0,"dur":10},
{"name":"op","cat":"F","ph":"X","pid":1,"tid":1,"ts":0,"dur":5},
{"name":"empty","cat":"F","ph":"X","pid":1,"tid":1,"ts":5,"dur":0},
{"name":"op2","cat":"F","ph":"X","pid":1,"tid":1,"ts":5,"dur":5},
{"name":"send a","cat":"pipeline","ph":"X","pid":1,"tid":2,"ts":10,"dur":1},
{"name":"recv a","cat":"pipeline","ph":"X","pid":2,"tid":2,"ts":10,"dur":1},
{"name":"a","cat":"pipeline","ph":"s","id":7,"pid":1,"tid":2,"ts":10},
{"name":"a","cat":"pipeline","ph":"f","bp":"e","id":7,"pid":2,"tid":2,"ts":10},
{"name":"memory","ph":"C","pid":1,"tid":1,"ts":0,"args":{"weights":1.5,"comm":0}},
{"name":"peak","cat":"memory","ph":"I","s":"t","pid":1,"tid":1,"ts":3})"));
  EXPECT_TRUE(c.problems.empty()) << c.problems.front();
  EXPECT_EQ(c.events, 11);
  EXPECT_EQ(c.slices, 6);
  EXPECT_EQ(c.counters, 1);
  EXPECT_EQ(c.instants, 1);
  EXPECT_EQ(c.flows, 1);
  // Both importers also take a bare array of events.
  EXPECT_TRUE(CheckChromeTrace(R"([{"name":"x","ph":"X","pid":1,"tid":1,"ts":0,"dur":1}])")
                  .problems.empty());
}

TEST(TraceCheckTest, DurationsThatOverrunInFloatingPoint) {
  // 112.159 + 15.881 is 128.04000000000002 in doubles, past the next slice
  // starting at 128.040: DevTools nests that one inside and drops it for
  // ending after. In whole nanoseconds (Perfetto) the two only touch.
  EXPECT_EQ(Problems(R"({"name":"A","ph":"X","pid":1,"tid":1,"ts":112.159,"dur":15.881},
{"name":"B","ph":"X","pid":1,"tid":1,"ts":128.040,"dur":10})"),
            Lines{"3:1: event 1 \"B\": ends after the slice of line 2 that holds it, in "
                  "floating point (ts + dur: 138.03999999999999 > 128.04000000000002): the "
                  "DevTools trace engine drops it"});
  // 15.880999999999993 lands on 128.04 exactly.
  EXPECT_EQ(Problems(R"({"name":"A","ph":"X","pid":1,"tid":1,"ts":112.159,"dur":15.880999999999993},
{"name":"B","ph":"X","pid":1,"tid":1,"ts":128.040,"dur":10})"),
            Lines{});
}

TEST(TraceCheckTest, OverlapsSpillInPerfettoAndDropInDevTools) {
  EXPECT_EQ(Problems(R"({"name":"a","ph":"X","pid":1,"tid":1,"ts":0,"dur":5},
{"name":"b","ph":"X","pid":1,"tid":1,"ts":3,"dur":5})"),
            (Lines{"3:1: event 1 \"b\": starts inside the slice of line 2 and ends 3000 ns "
                   "after it: Perfetto spills it to an overlap track",
                   "3:1: event 1 \"b\": ends after the slice of line 2 that holds it, in "
                   "floating point (ts + dur: 8 > 5): the DevTools trace engine drops it"}));
}

TEST(TraceCheckTest, ThreadsAndProcessesFromOne) {
  EXPECT_EQ(Problems(R"({"name":"x","ph":"X","pid":1,"tid":0,"ts":0,"dur":1},
{"name":"y","ph":"X","pid":-1,"tid":2,"ts":0,"dur":1},
{"name":"z","ph":"X","pid":1.5,"tid":2,"ts":0,"dur":1})"),
            (Lines{"2:1: event 0 \"x\": \"tid\" is 0: it must be from 1 to 4294967295 "
                   "(Perfetto reads a tid of 0 as the pid: that thread merges with another)",
                   "3:1: event 1 \"y\": \"pid\" is -1: it must be from 1 to 4294967295",
                   "4:1: event 2 \"z\": no integer \"pid\""}));
}

TEST(TraceCheckTest, SlicesOfAThreadInStartOrder) {
  EXPECT_EQ(Problems(R"({"name":"a","ph":"X","pid":1,"tid":1,"ts":5,"dur":1},
{"name":"b","ph":"X","pid":1,"tid":1,"ts":4,"dur":1},
{"name":"c","ph":"X","pid":1,"tid":2,"ts":4,"dur":1},
{"name":"d","ph":"X","pid":1,"tid":2,"ts":4,"dur":2})"),
            (Lines{"3:1: event 1 \"b\": starts before the slice before it on its thread (line "
                   "2): each thread's slices must come in start order, longest first",
                   "5:1: event 3 \"d\": starts before the slice before it on its thread (line "
                   "4): each thread's slices must come in start order, longest first"}));
}

TEST(TraceCheckTest, InstantsAsDevToolsKeepsThem) {
  EXPECT_EQ(Problems(R"({"name":"p","ph":"i","s":"t","pid":1,"tid":1,"ts":0},
{"name":"q","ph":"I","pid":1,"tid":1,"ts":0})"),
            (Lines{"2:1: event 0 \"p\": \"ph\":\"i\": the DevTools trace engine keeps only "
                   "\"ph\":\"I\" instants",
                   "3:1: event 1 \"q\": instant event without a scope \"s\" of \"t\", \"p\" "
                   "or \"g\""}));
}

TEST(TraceCheckTest, FlowsBindWhereTheirSliceStarts) {
  const std::string slices =
      R"({"name":"send","cat":"p","ph":"X","pid":1,"tid":2,"ts":10,"dur":4},
{"name":"recv","cat":"p","ph":"X","pid":2,"tid":2,"ts":10,"dur":4},
)";
  // At the transfer's end instead of the receive's start (line 5).
  EXPECT_EQ(Problems(slices + R"({"name":"a","cat":"p","ph":"s","id":1,"pid":1,"tid":2,"ts":10},
{"name":"a","cat":"p","ph":"f","bp":"e","id":1,"pid":2,"tid":2,"ts":14})"),
            Lines{"5:1: event 3 \"a\": flow end does not follow a slice starting at its ts on "
                  "its thread: both viewers bind it elsewhere"});
  // Without "bp":"e", and with a category no slice there has.
  EXPECT_EQ(Problems(slices + R"({"name":"a","cat":"p","ph":"s","id":1,"pid":1,"tid":2,"ts":10},
{"name":"a","cat":"q","ph":"s","id":2,"pid":2,"tid":2,"ts":10},
{"name":"a","cat":"p","ph":"f","id":1,"pid":2,"tid":2,"ts":10})"),
            (Lines{"5:1: event 3 \"a\": flow start has category \"q\", which no slice "
                   "starting there has: DevTools binds a flow to the first event with its ts, "
                   "pid, tid and cat",
                   "6:1: event 4 \"a\": flow end without \"bp\":\"e\": Perfetto binds it to the "
                   "next slice instead",
                   "5:1: event 3: flow \"q/a/2\" starts but never ends"}));
  // Two slices there with its category: DevTools takes the first.
  EXPECT_EQ(Problems(R"({"name":"x","cat":"p","ph":"X","pid":1,"tid":1,"ts":0,"dur":2},
{"name":"y","cat":"p","ph":"X","pid":1,"tid":1,"ts":0,"dur":1},
{"name":"a","cat":"p","ph":"s","id":1,"pid":1,"tid":1,"ts":0},
{"name":"a","cat":"p","ph":"f","bp":"e","id":1,"pid":1,"tid":1,"ts":0})"),
            (Lines{"4:1: event 2 \"a\": flow start has category \"p\", which 2 slices starting "
                   "there have: DevTools binds a flow to the first event with its ts, pid, tid "
                   "and cat",
                   "5:1: event 3 \"a\": flow end has category \"p\", which 2 slices starting "
                   "there have: DevTools binds a flow to the first event with its ts, pid, tid "
                   "and cat"}));
}

TEST(TraceCheckTest, FlowsStartOnceAndEndAfter) {
  const std::string slice = R"({"name":"s","cat":"p","ph":"X","pid":1,"tid":1,"ts":4,"dur":1},
)";
  EXPECT_EQ(Problems(R"({"name":"s","cat":"p","ph":"X","pid":1,"tid":1,"ts":4,"dur":1},
{"name":"a","cat":"p","ph":"s","id":1,"pid":1,"tid":1,"ts":4},
{"name":"t","cat":"p","ph":"X","pid":1,"tid":2,"ts":2,"dur":1},
{"name":"a","cat":"p","ph":"f","bp":"e","id":1,"pid":1,"tid":2,"ts":2},
{"name":"b","cat":"p","ph":"f","bp":"e","id":1,"pid":1,"tid":2,"ts":2})"),
            (Lines{"5:1: event 3 \"a\": flow \"p/a/1\" ends before it starts",
                   "6:1: event 4 \"b\": flow \"p/b/1\" ends without a start before it"}));
  EXPECT_EQ(Problems(slice + R"({"name":"a","cat":"p","ph":"s","id":"x","pid":1,"tid":1,"ts":4},
{"name":"a","cat":"p","ph":"s","id":"x","pid":1,"tid":1,"ts":4})"),
            (Lines{"4:1: event 2 \"a\": flow \"p/a/x\" starts twice",
                   "3:1: event 1: flow \"p/a/x\" starts but never ends"}));
}

TEST(TraceCheckTest, CountersHoldNumbers) {
  EXPECT_EQ(Problems(R"({"name":"m","ph":"C","pid":1,"tid":1,"ts":0,"args":{"w":1,"c":"2"}},
{"name":"n","ph":"C","pid":1,"tid":1,"ts":0})"),
            (Lines{"2:1: event 0 \"m\": counter series \"c\" is not a number",
                   "3:1: event 1 \"n\": counter without args"}));
}

TEST(TraceCheckTest, StructureAndSyntax) {
  EXPECT_EQ(CheckChromeTrace("{\"traceEvents\":[\n{\"name\":1,}]}").problems,
            Lines{"2:11: not valid JSON: syntax error while parsing object key - "
                  "unexpected '}'; expected string literal"});
  EXPECT_EQ(CheckChromeTrace("{}").problems, Lines{"no traceEvents array"});
  EXPECT_EQ(CheckChromeTrace("").problems, Lines{"empty: not a trace"});
  EXPECT_EQ(CheckChromeTrace(std::string(100000, '[')).problems,
            Lines{"1:33: nested more than 32 levels deep"});
  EXPECT_EQ(Problems(R"({"ph":"X","pid":1,"tid":1,"ts":0,"dur":1},
{"name":"b","ph":"B","pid":1,"tid":1,"ts":0},
{"name":"c","ph":"X","pid":1,"tid":1,"ts":"0","dur":1},
{"name":"d","ph":"X","pid":1,"tid":1,"ts":1,"dur":-1},
{"name":"e","pid":1,"tid":1,"ts":1})"),
            (Lines{"2:1: event 0: no \"name\"",
                   "3:1: event 1 \"b\": unexpected phase \"B\" (stepsim traces use X, C, I, s, "
                   "f and M)",
                   "4:1: event 2 \"c\": no numeric \"ts\"",
                   "5:1: event 3 \"d\": X slice without a non-negative numeric \"dur\"",
                   "6:1: event 4 \"e\": no \"ph\""}));
}

// A syntax error's column is the bad character's, also when it is the last
// of the input or of a 1 MiB read (the next read has begun when it is
// reported), and just past the end for an input cut short.
TEST(TraceCheckTest, SyntaxErrorsAtTheEndOfARead) {
  const std::string bad = "syntax error while parsing value - invalid literal; last read: '";
  EXPECT_EQ(CheckChromeTrace("x").problems,
            Lines{"1:1: not valid JSON: " + bad + "x'"});
  EXPECT_EQ(CheckChromeTrace("xy").problems,
            Lines{"1:1: not valid JSON: " + bad + "x'"});
  // 'x' is the read's last byte; what was read before it is cut to 64 bytes.
  const std::string spaces((size_t{1} << 20) - 1, ' ');
  const Lines at_end_of_read{"1:1048576: not valid JSON: " + bad + "..." +
                             std::string(63, ' ') + "x'"};
  EXPECT_EQ(CheckChromeTrace(spaces + "x ").problems, at_end_of_read);
  EXPECT_EQ(CheckChromeTrace(spaces + "x").problems, at_end_of_read);
  // Line breaks are quoted as <U+000A>: the cut keeps whole ones (801
  // bytes quoted, the last 64 from inside an escape: the 7 whole after it).
  std::string breaks;
  for (int i = 0; i < 7; ++i) breaks += "<U+000A>";
  EXPECT_EQ(CheckChromeTrace(std::string(100, '\n') + "x").problems,
            Lines{"101:1: not valid JSON: " + bad + "..." + breaks + "x'"});
  EXPECT_EQ(CheckChromeTrace("{\"a\":").problems,
            Lines{"1:6: not valid JSON: syntax error while parsing value - "
                  "unexpected end of input; expected '[', '{', or a literal"});
}

TEST(TraceCheckTest, CountsProblemsByRuleBeyondTheListed) {
  std::string events;
  for (int i = 0; i < 60; ++i) {
    events +=
        std::string(i ? ",\n" : "") + R"({"name":"p","ph":"i","s":"t","pid":1,"tid":1,"ts":0})";
  }
  const TraceCheck c = CheckChromeTrace(Trace(events));
  EXPECT_EQ(c.problems.size(), 50u);
  EXPECT_EQ(c.problem_count, 60);
  EXPECT_EQ(c.by_rule, (std::map<std::string, int64_t>{{"instants", 60}}));
}

TEST(TraceCheckTest, ReadsAStreamInPieces) {
  // Larger than one read: events across the 1 MiB boundary.
  std::ostringstream text;
  text << "{\"traceEvents\":[\n";
  for (int i = 0; i < 30000; ++i) {
    text << (i ? ",\n" : "") << R"({"name":"step","cat":"step","ph":"X","pid":1,"tid":1,"ts":)" << i
         << R"(,"dur":1,"args":{"padding":"................................"}})";
  }
  text << "]}";
  std::istringstream in(text.str());
  const TraceCheck c = CheckChromeTrace(in);
  EXPECT_GT(text.str().size(), size_t{2} << 20);
  EXPECT_TRUE(c.problems.empty()) << c.problems.front();
  EXPECT_EQ(c.slices, 30000);
}

}  // namespace
}  // namespace stepsim::traces
