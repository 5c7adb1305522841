// One vocabulary: the names inputs accept and outputs print.
#include "graph/names.h"

#include <gtest/gtest.h>

#include "scenario.pb.h"

namespace stepsim::graph {
namespace {

TEST(NamesTest, OutputsPrintTheProtoName) {
  EXPECT_EQ(EnumName(ONE_F_ONE_B), "ONE_F_ONE_B");
  EXPECT_EQ(EnumName(ZB_H1), "ZB_H1");
  EXPECT_EQ(EnumName(static_cast<ScheduleKind>(99)), "<99>");
  EXPECT_EQ(EnumNames(RecomputePolicy_descriptor()), "NONE, FULL, SELECTIVE");
}

TEST(NamesTest, InputsAcceptTheNameInAnyCase) {
  EXPECT_EQ(*ParseEnumName<ScheduleKind>("ONE_F_ONE_B"), ONE_F_ONE_B);
  EXPECT_EQ(*ParseEnumName<ScheduleKind>("one_f_one_b"), ONE_F_ONE_B);
  EXPECT_EQ(*ParseEnumName<ScheduleKind>("DualPipe_V"), DUALPIPE_V);
  EXPECT_EQ(*ParseEnumName<RecomputePolicy>("full"), FULL);
}

TEST(NamesTest, NumbersAliasesAndUnspecifiedAreRefused) {
  const std::string expected =
      " (expected one of GPIPE, ONE_F_ONE_B, INTERLEAVED_ONE_F_ONE_B, ZB_H1, ZB_H2, DUALPIPE, "
      "DUALPIPE_V)";
  for (const char* text : {"2", "1f1b", "zb-h1", "SCHEDULE_KIND_UNSPECIFIED", ""}) {
    StatusOr<ScheduleKind> kind = ParseEnumName<ScheduleKind>(text);
    ASSERT_FALSE(kind.ok()) << text;
    EXPECT_EQ(kind.status().message(), "unknown value \"" + std::string(text) + "\"" + expected);
  }
}

TEST(NamesTest, BooleansAreTrueOrFalse) {
  EXPECT_TRUE(*ParseBool("true"));
  EXPECT_FALSE(*ParseBool("false"));
  for (const char* text : {"True", "1", "0", "t", "yes"}) {
    EXPECT_EQ(ParseBool(text).status().message(),
              "\"" + std::string(text) + "\" is not true or false");
  }
}

}  // namespace
}  // namespace stepsim::graph
