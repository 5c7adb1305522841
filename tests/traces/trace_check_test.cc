#include "traces/trace_check.h"

#include <gtest/gtest.h>

namespace stepsim::traces {
namespace {

std::string Trace(const std::string& events) { return "{\"traceEvents\":[" + events + "]}"; }

TEST(TraceCheckTest, AcceptsAWellFormedTrace) {
  const TraceCheck c = CheckChromeTrace(Trace(
      R"({"name":"process_name","ph":"M","pid":0,"tid":0,"args":{"name":"rank 0"}},
         {"name":"F0","ph":"X","pid":0,"tid":0,"ts":0,"dur":10},
         {"name":"op","ph":"X","pid":0,"tid":0,"ts":2,"dur":3},
         {"name":"op2","ph":"X","pid":0,"tid":0,"ts":5,"dur":5},
         {"name":"send","ph":"X","pid":0,"tid":1,"ts":10,"dur":1},
         {"name":"recv","ph":"X","pid":1,"tid":1,"ts":10,"dur":1},
         {"name":"a","cat":"p","ph":"s","id":7,"pid":0,"tid":1,"ts":10},
         {"name":"a","cat":"p","ph":"f","bp":"e","id":7,"pid":1,"tid":1,"ts":11},
         {"name":"memory","ph":"C","pid":0,"ts":0,"args":{"weights":1.5,"comm":0}},
         {"name":"peak","ph":"i","s":"p","pid":0,"tid":0,"ts":3})"));
  EXPECT_TRUE(c.problems.empty()) << c.problems.front();
  EXPECT_EQ(c.slices, 5);
  EXPECT_EQ(c.counters, 1);
  EXPECT_EQ(c.flows, 1);
}

TEST(TraceCheckTest, DeepNestingIsRefusedQuickly) {
  const std::string deep = std::string(100000, '[');
  const TraceCheck c = CheckChromeTrace(deep);
  EXPECT_EQ(c.problems,
            std::vector<std::string>{"nested 100000 levels deep; a trace needs at most 32"});
}

TEST(TraceCheckTest, CatchesEachBrokenRule) {
  EXPECT_EQ(CheckChromeTrace("[1,2").problems, std::vector<std::string>{"not valid JSON"});
  EXPECT_EQ(CheckChromeTrace("{}").problems, std::vector<std::string>{"no traceEvents array"});
  EXPECT_EQ(CheckChromeTrace(Trace(R"({"name":"x","ph":"X","pid":0,"tid":0,"ts":0})")).problems,
            std::vector<std::string>{"event 0: X slice without a non-negative numeric dur"});
  EXPECT_EQ(CheckChromeTrace(Trace(R"({"name":"a","ph":"X","pid":0,"tid":0,"ts":0,"dur":5},
                                      {"name":"b","ph":"X","pid":0,"tid":0,"ts":3,"dur":5})"))
                .problems,
            std::vector<std::string>{
                "event 1: slice overlaps slice 0 on the same thread without nesting"});
  EXPECT_EQ(
      CheckChromeTrace(Trace(R"({"name":"m","ph":"C","pid":0,"ts":0,"args":{"w":"1"}})")).problems,
      std::vector<std::string>{"event 0: counter w not numeric"});
  EXPECT_EQ(CheckChromeTrace(Trace(R"({"name":"x","ph":"X","pid":0,"tid":0,"ts":0,"dur":5},
                                      {"name":"a","cat":"p","ph":"s","id":1,"pid":0,"tid":0,"ts":1})"))
                .problems,
            std::vector<std::string>{"event 1: flow p/1.000000 is not one start paired with one end"});
  EXPECT_EQ(CheckChromeTrace(Trace(R"({"name":"x","ph":"X","pid":0,"tid":0,"ts":0,"dur":5},
                                      {"name":"a","cat":"p","ph":"s","id":1,"pid":0,"tid":0,"ts":4},
                                      {"name":"a","cat":"p","ph":"f","id":1,"pid":0,"tid":0,"ts":2})"))
                .problems,
            std::vector<std::string>{"event 2: flow p/1.000000 ends before it starts"});
  EXPECT_EQ(CheckChromeTrace(Trace(R"({"name":"p","ph":"i","pid":0,"tid":0,"ts":0})")).problems,
            std::vector<std::string>{"event 0: instant event without a scope s"});
}

}  // namespace
}  // namespace stepsim::traces
