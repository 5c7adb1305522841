#include "sim/smoke.h"

#include <gtest/gtest.h>

namespace stepsim::sim {
namespace {

TEST(SmokeTest, OneExecutionTakesFlopsOverSpeed) {
  // 3e12 FLOP on a 1.5e12 FLOP/s host: exactly 2 simulated seconds.
  EXPECT_DOUBLE_EQ(SimulateOneExecution(3e12, 1.5e12), 2.0);
}

}  // namespace
}  // namespace stepsim::sim
