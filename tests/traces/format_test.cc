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
