// The built-in generators against step orders read off their public
// sources (Megatron-LM schedules.py, the zero-bubble paper's Fig. 3,
// deepseek-ai/DualPipe's README figure), written out by hand here.
#include <gtest/gtest.h>

#include "sim/schedule.h"
#include "sim/schedules/builtin.h"

namespace stepsim::sim {
namespace {

std::string Names(const Schedule& s, int rank) {
  std::string out;
  for (const Step& step : s.ranks[rank]) out += (out.empty() ? "" : " ") + StepName(step, s.chunks);
  return out;
}

TEST(SchedulesTest, InterleavedMegatronOrder) {
  // PP 4, 2 chunks, 8 micro-batches. Rank 0 warms up with 2*3 + 1*4 = 10
  // forwards; backwards run chunk 1 before chunk 0.
  const Schedule s = Interleaved(4, 2, 8);
  EXPECT_EQ(Names(s, 0),
            "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 F4.0 F5.0 "
            "F6.0 BW0.1 F7.0 BW1.1 F4.1 BW2.1 F5.1 BW3.1 F6.1 BW0.0 F7.1 BW1.0 "
            "BW2.0 BW3.0 BW4.1 BW5.1 BW6.1 BW7.1 BW4.0 BW5.0 BW6.0 BW7.0");
  // Rank 3 warms up with 4.
  EXPECT_EQ(Names(s, 3).substr(0, 44), "F0.0 F1.0 F2.0 F3.0 F0.1 BW0.1 F1.1 BW1.1 F2");
  EXPECT_TRUE(ValidateSchedule(s).ok()) << ValidateSchedule(s).message();
}

TEST(SchedulesTest, ZeroBubbleH1) {
  // Stage 1 of 4: B lags F by 2 slots, W by 3.
  const Schedule s = ZeroBubble(4, 8, false);
  EXPECT_EQ(Names(s, 1),
            "F0 F1 F2 B0 F3 B1 W0 F4 B2 W1 F5 B3 W2 F6 B4 W3 F7 B5 W4 B6 W5 B7 W6 W7");
  EXPECT_EQ(Names(s, 3), "F0 B0 F1 B1 F2 B2 F3 B3 W0 F4 B4 W1 F5 B5 W2 F6 B6 W3 F7 B7 W4 W5 W6 W7");
  EXPECT_TRUE(ValidateSchedule(s).ok());
}

TEST(SchedulesTest, ZeroBubbleH2WarmsUpTwiceAsLong) {
  // Stage 0 of 4: B lags F by 2 * 3 = 6 slots, and so does W: 2PP - 1 = 7
  // forwards before the first B.
  const Schedule s = ZeroBubble(4, 8, true);
  EXPECT_EQ(Names(s, 0).substr(0, 32), "F0 F1 F2 F3 F4 F5 F6 B0 W0 F7 B1");
  EXPECT_TRUE(ValidateSchedule(s).ok());
}

TEST(SchedulesTest, DualPipeRankZeroMatchesTheReadmeFigure) {
  // PP 8, 20 micro-batches: 0-9 enter at rank 0 (chunk 0), 10-19 at rank 7
  // (chunk 1). The README figure's first row, in stepsim's names.
  const Schedule s = DualPipe(8, 20);
  EXPECT_EQ(Names(s, 0),
            "F0.0 F1.0 F2.0 F3.0 F4.0 F5.0 F6.0 F10.1 "               // nF0, nF0F1
            "B10.1 W10.1 F11.1 B11.1 W11.1 F12.1 B12.1 W12.1 F13.1 "  // nB1W1F1
            "F7.0 BW13.1 F14.1 BW0.0 F8.0 BW14.1 F15.1 BW1.0 "        // main
            "F9.0 BW15.1 F16.1 BW2.0 "
            "BW16.1 F17.1 BW3.0 BW17.1 F18.1 BW4.0 BW18.1 F19.1 BW5.0 "  // nB1F1B0
            "BW19.1 B6.0 "                                            // nB1B0
            "W6.0 B7.0 W7.0 B8.0 W8.0 B9.0 "                          // nWB0
            "W9.0");                                                  // nW
  // A middle rank splits the second half of its nB1B0 phase.
  EXPECT_NE(Names(s, 3).find("BW16.1 BW6.0 BW17.1 BW7.0 B18.1 B8.0 B19.1 B9.0 W18.1 W8.0 "
                             "W19.1 W9.0"),
            std::string::npos)
      << Names(s, 3);
  EXPECT_TRUE(ValidateSchedule(s).ok()) << ValidateSchedule(s).message();
}

TEST(SchedulesTest, DualPipeVIsValidAndTurnsOnTheLastRank) {
  const Schedule s = DualPipeV(4, 10);
  EXPECT_TRUE(ValidateSchedule(s).ok()) << ValidateSchedule(s).message();
  // The last rank runs chunk 0 then chunk 1 of micro-batch 0 back to back.
  EXPECT_EQ(Names(s, 3).substr(0, 9), "F0.0 F0.1");
  ASSERT_EQ(s.routes.size(), 1u);
  EXPECT_EQ(s.routes[0][4], (graph::Hop{3, 1}));
  EXPECT_EQ(s.routes[0][7], (graph::Hop{0, 1}));
}

TEST(SchedulesTest, ValidationKeepsLocalHandOffsInOrder) {
  // On DualPipeV's last rank chunk 0 feeds chunk 1 locally.
  Schedule s = DualPipeV(2, 4);
  auto& steps = s.ranks[1];
  ASSERT_EQ(StepName(steps[0], 2) + " " + StepName(steps[1], 2), "F0.0 F0.1");
  std::swap(steps[0], steps[1]);
  EXPECT_EQ(ValidateSchedule(s).message(),
            "schedule: rank 1: F0.1 comes before F0.0, which feeds it on this rank");
}

TEST(SchedulesTest, ValidationKnowsWhereChunksRun) {
  Schedule s = DualPipe(2, 4);
  // Micro-batch 0 takes route 0: chunk 1 of rank 0 is route 1's.
  s.ranks[0].push_back({StepKind::kForward, 0, 1});
  EXPECT_EQ(ValidateSchedule(s).message(),
            "schedule: rank 0: F0.1 does not run on this rank: its micro-batch's route places "
            "that chunk elsewhere");
}

}  // namespace
}  // namespace stepsim::sim
