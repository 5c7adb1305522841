#include "graph/overrides.h"

#include <gtest/gtest.h>

namespace stepsim::graph {
namespace {

TEST(OverridesTest, SetsScalarsEnumsAndNestedFields) {
  Scenario s;
  ASSERT_TRUE(ApplyOverride("parallel.ep=16", &s).ok());
  ASSERT_TRUE(ApplyOverride("zero.stage=3", &s).ok());
  ASSERT_TRUE(ApplyOverride("recompute.policy=full", &s).ok());
  ASSERT_TRUE(ApplyOverride("conventions.dropout=true", &s).ok());
  ASSERT_TRUE(ApplyOverride("conventions.routing_imbalance=1.5", &s).ok());
  ASSERT_TRUE(ApplyOverride("model.preset=deepseek-v2", &s).ok());
  ASSERT_TRUE(ApplyOverride("schedule.kind=ZB_H1", &s).ok());
  EXPECT_EQ(s.parallel().ep(), 16);
  EXPECT_EQ(s.zero().stage(), 3);
  EXPECT_EQ(s.recompute().policy(), FULL);
  EXPECT_TRUE(s.conventions().dropout());
  EXPECT_DOUBLE_EQ(s.conventions().routing_imbalance(), 1.5);
  EXPECT_EQ(s.model().preset(), "deepseek-v2");
  EXPECT_EQ(s.schedule().kind(), ZB_H1);
}

TEST(OverridesTest, RepeatedFieldsTakeACommaList) {
  Scenario s;
  s.mutable_recompute()->add_modules("moe");
  ASSERT_TRUE(ApplyOverride("recompute.modules=core_attn, mla_up_proj", &s).ok());
  ASSERT_EQ(s.recompute().modules_size(), 2);
  EXPECT_EQ(s.recompute().modules(0), "core_attn");
  EXPECT_EQ(s.recompute().modules(1), "mla_up_proj");
  ASSERT_TRUE(ApplyOverride("timing.forward_us=1,2.5", &s).ok());
  EXPECT_EQ(s.timing().forward_us_size(), 2);
}

TEST(OverridesTest, ErrorsNameThePath) {
  Scenario s;
  EXPECT_EQ(ApplyOverride("parallel.pipline=2", &s).message(),
            "--set parallel.pipline: unknown field \"pipline\" in parallel (fields: pp, tp, ep, "
            "etp, dp, cp, vpp, sequence_parallel, layout)");
  EXPECT_EQ(ApplyOverride("parallel=2", &s).message(),
            "--set parallel: \"parallel\" is a message; name one of its fields (pp, tp, ep, etp, "
            "dp, cp, vpp, sequence_parallel, layout)");
  EXPECT_EQ(ApplyOverride("parallel.pp=two", &s).message(),
            "--set parallel.pp: \"two\" is not an integer");
  EXPECT_EQ(ApplyOverride("parallel.pp=99999999999999999999", &s).message(),
            "--set parallel.pp: \"99999999999999999999\" is not an integer");
  EXPECT_EQ(ApplyOverride("recompute.policy=PARTIAL", &s).message(),
            "--set recompute.policy: unknown value \"PARTIAL\" (expected one of NONE, FULL, "
            "SELECTIVE)");
  EXPECT_EQ(ApplyOverride("conventions.dropout=maybe", &s).message(),
            "--set conventions.dropout: \"maybe\" is not true or false");
  EXPECT_EQ(ApplyOverride("hardware.flops=inf", &s).message(),
            "--set hardware.flops: \"inf\" is not a finite number");
  EXPECT_EQ(ApplyOverride("zero.stage.x=1", &s).message(),
            "--set zero.stage.x: \"stage\" has no fields");
  EXPECT_EQ(ApplyOverride("zero.stage", &s).message(),
            "--set \"zero.stage\": expected path=value");
  // A failed override leaves the field untouched.
  EXPECT_FALSE(s.parallel().has_pp());
}

}  // namespace
}  // namespace stepsim::graph
