// The progress line of sweeps and fits: a bar, the count, the rate and the
// time left for work of known size; a count and a rate for open work.
#include "tools/progress.h"

#include <gtest/gtest.h>

namespace stepsim::tools {
namespace {

TEST(ProgressTest, BoundedWorkShowsABarTheRateAndTheTimeLeft) {
  // 120 of 400 in 2 s: 60/s, 280 left take 4.67 s, shown as 5s; 0.3 of a
  // 10-character bar is 3 characters, then the head.
  EXPECT_EQ(ProgressBar::Line("sweep", 120, 400, 2.0, 10),
            "sweep [===>      ] 120/400  60.0/s  ETA 5s");
  // 30 of 3,630 in 1 s: 3,600 left at 30/s take 120 s; 30 of 108,030
  // leave 108,000, an hour.
  EXPECT_EQ(ProgressBar::Line("fit: bounds", 30, 3630, 1.0, 4),
            "fit: bounds [>   ] 30/3630  30.0/s  ETA 2m0s");
  EXPECT_EQ(ProgressBar::Line("fit: bounds", 30, 108030, 1.0, 4),
            "fit: bounds [>   ] 30/108030  30.0/s  ETA 1h0m");
}

TEST(ProgressTest, NoRateBeforeTheFirstItemAndNoEtaAtTheEnd) {
  EXPECT_EQ(ProgressBar::Line("sweep", 0, 8, 0.5, 4), "sweep [>   ] 0/8");
  EXPECT_EQ(ProgressBar::Line("sweep", 8, 8, 4.0, 4), "sweep [====] 8/8  2.0/s");
}

TEST(ProgressTest, OpenWorkShowsACountAndARateButNoBarNorEta) {
  // A fit simulates until the K fastest are settled: 400 is only a bound.
  EXPECT_EQ(ProgressBar::Line("fit: simulating", 12, 400, 2.0, 10, ProgressBar::kOpen),
            "fit: simulating 12 of at most 400  6.0/s");
  EXPECT_EQ(ProgressBar::Line("fit: simulating", 0, 400, 0.0, 10, ProgressBar::kOpen),
            "fit: simulating 0 of at most 400");
}

}  // namespace
}  // namespace stepsim::tools
