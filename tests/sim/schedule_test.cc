#include "sim/schedule.h"

#include <gtest/gtest.h>

#include "sim/schedules/builtin.h"

namespace stepsim::sim {
namespace {

std::string Names(const std::vector<Step>& steps) {
  std::string out;
  for (const Step& s : steps) out += (out.empty() ? "" : " ") + StepName(s);
  return out;
}

TEST(ScheduleTest, OneFOneBWarmupSteadyCooldown) {
  // PP4, 6 micro-batches: rank r warms up with 3 - r forwards.
  const Schedule s = OneFOneB(4, 6);
  EXPECT_EQ(Names(s.ranks[0]), "F0 F1 F2 F3 BW0 F4 BW1 F5 BW2 BW3 BW4 BW5");
  EXPECT_EQ(Names(s.ranks[1]), "F0 F1 F2 BW0 F3 BW1 F4 BW2 F5 BW3 BW4 BW5");
  EXPECT_EQ(Names(s.ranks[3]), "F0 BW0 F1 BW1 F2 BW2 F3 BW3 F4 BW4 F5 BW5");
  EXPECT_TRUE(ValidateSchedule(s).ok());
}

TEST(ScheduleTest, OneFOneBWithFewerMicroBatchesThanStages) {
  const Schedule s = OneFOneB(4, 2);
  EXPECT_EQ(Names(s.ranks[0]), "F0 F1 BW0 BW1");
  EXPECT_EQ(Names(s.ranks[3]), "F0 BW0 F1 BW1");
  EXPECT_TRUE(ValidateSchedule(s).ok());
}

TEST(ScheduleTest, GPipeAllForwardsThenAllBackwards) {
  const Schedule s = GPipe(2, 1, 3);
  EXPECT_EQ(Names(s.ranks[1]), "F0 F1 F2 BW0 BW1 BW2");
  EXPECT_TRUE(ValidateSchedule(s).ok());
}

TEST(ScheduleTest, ValidationListsEveryProblem) {
  Schedule s;
  s.name = "hand";
  s.pp = 2;
  s.microbatches = 2;
  s.ranks = {
      {{StepKind::kForward, 0, 0}, {StepKind::kBackwardWeight, 0, 0}, {StepKind::kForward, 0, 0},
       {StepKind::kBackward, 1, 0}, {StepKind::kForward, 1, 0}},
      {{StepKind::kForward, 0, 0}, {StepKind::kBackwardWeight, 0, 0},
       {StepKind::kBackwardWeight, 1, 0}, {StepKind::kForward, 1, 0}, {StepKind::kForward, 5, 0}},
  };
  EXPECT_EQ(ValidateSchedule(s).message(),
            "schedule: rank 0: F0 appears twice\n"
            "rank 0: BW0 comes before F0\n"
            "rank 0: W1 is missing\n"
            "rank 0: B1 comes before F1\n"
            "rank 1: F5 is outside 2 micro-batches and 1 chunks\n"
            "rank 1: BW1 comes before F1");
}

// A route that names a chunk the schedule does not have is a problem of
// its own (its micro-batches' other stages are still checked).
TEST(ScheduleTest, ValidationNamesARouteOutsideTheChunks) {
  Schedule s = OneFOneB(2, 1);
  s.routes = {{{0, 0}, {1, 3}}};
  EXPECT_EQ(ValidateSchedule(s).message(),
            "schedule: route 0 places a stage on chunk 3, outside the 1 chunks\n"
            "rank 1: F0 does not run on this rank: its micro-batch's route places that chunk "
            "elsewhere\n"
            "rank 1: BW0 does not run on this rank: its micro-batch's route places that chunk "
            "elsewhere");
}

TEST(ScheduleTest, StepNamesWithChunks) {
  EXPECT_EQ(StepName({StepKind::kWeight, 3, 1}, 2), "W3.1");
  EXPECT_EQ(StepName({StepKind::kBackward, 0, 0}, 1), "B0");
}

}  // namespace
}  // namespace stepsim::sim
