#include "traces/format.h"

#include <gtest/gtest.h>

#include "traces/table.h"

namespace stepsim::traces {
namespace {

TEST(FormatTest, Thousands) {
  EXPECT_EQ(Thousands(0), "0");
  EXPECT_EQ(Thousands(999), "999");
  EXPECT_EQ(Thousands(1000), "1,000");
  EXPECT_EQ(Thousands(671026404352), "671,026,404,352");
  EXPECT_EQ(Thousands(-1234567), "-1,234,567");
}

TEST(FormatTest, GibIsBinary) {
  EXPECT_EQ(Gib(int64_t{1} << 30), "1.00");
  // 12,500,729,856 / 2^30 = 11.6422...
  EXPECT_EQ(Gib(12'500'729'856), "11.64");
}

TEST(FormatTest, RangesAndGroups) {
  EXPECT_EQ(Ranges({0, 2, 3, 4, 7}), "0, 2-4, 7");
  EXPECT_EQ(Ranges({}), "");
  EXPECT_EQ(GroupedByStage({{0, {{"a", 1}}}, {1, {{"a", 2}}}, {2, {{"a", 2}}}, {3, {{"a", 1}}}}),
            "  stage 0, 3:  a 1\n"
            "  stage 1-2:  a 2\n");
}

TEST(FormatTest, TableAlignsColumns) {
  Table t({"<name", "value"});
  t.AddRow({"a", "1"});
  t.AddRow({"long", "1,000"});
  EXPECT_EQ(t.Render(),
            "name  value\n"
            "a         1\n"
            "long  1,000\n");
}

}  // namespace
}  // namespace stepsim::traces
