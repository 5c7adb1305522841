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

TEST(OverridesTest, TheVocabularyOfScenarioFiles) {
  Scenario s;
  EXPECT_EQ(ApplyOverride("schedule.kind=2", &s).message(),
            "--set schedule.kind: unknown value \"2\" (expected one of GPIPE, ONE_F_ONE_B, "
            "INTERLEAVED_ONE_F_ONE_B, ZB_H1, ZB_H2, DUALPIPE, DUALPIPE_V)");
  EXPECT_EQ(ApplyOverride("conventions.dropout=1", &s).message(),
            "--set conventions.dropout: \"1\" is not true or false");
  ASSERT_TRUE(ApplyOverride("schedule.kind=dualpipe_v", &s).ok());
  EXPECT_EQ(s.schedule().kind(), DUALPIPE_V);
  EXPECT_EQ(ApplyOverride("name=a\xFF", &s).message(),
            "--set name: invalid UTF-8 at byte 2 of the value: stepsim reads text as UTF-8");
}

TEST(OverridesTest, HugeValuesAreNotEchoedInFull) {
  Scenario s;
  const std::string huge(3 << 20, '9');
  const std::string message = ApplyOverride("parallel.pp=x" + huge, &s).message();
  EXPECT_LT(message.size(), 200u);
  EXPECT_EQ(message, "--set parallel.pp: \"x" + std::string(79, '9') +
                         "...\" (3145729 bytes) is not an integer");
}

TEST(OverridesTest, AFailedListChangesNothing) {
  Scenario s;
  s.mutable_timing()->add_forward_us(7);
  EXPECT_FALSE(ApplyOverride("timing.forward_us=1,two,3", &s).ok());
  ASSERT_EQ(s.timing().forward_us_size(), 1);
  EXPECT_EQ(s.timing().forward_us(0), 7);
  // Nor does a failed assignment under a message the scenario lacks: it
  // does not appear, empty.
  EXPECT_FALSE(ApplyOverride("allocator.max_split_size_mb=lots", &s).ok());
  EXPECT_FALSE(ApplyOverride("zero.stage=3.5", &s).ok());
  EXPECT_FALSE(s.has_allocator());
  EXPECT_FALSE(s.has_zero());
  Scenario unchanged;
  unchanged.mutable_timing()->add_forward_us(7);
  EXPECT_EQ(s.SerializeAsString(), unchanged.SerializeAsString());
}

TEST(OverridesTest, OrDiscardSetsAsApplyOverrideAndFailsTheSame) {
  Scenario a, b;
  for (const char* assignment : {"parallel.ep=16", "recompute.modules=core_attn, mla_up_proj",
                                 "schedule.kind=zb_h1", "timing.forward_us=1,2.5"}) {
    ASSERT_TRUE(ApplyOverride(assignment, &a).ok());
    ASSERT_TRUE(ApplyOverrideOrDiscard(assignment, &b).ok());
  }
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  for (const char* bad : {"parallel.pipline=2", "zero.stage=3.5", "parallel", "x"}) {
    EXPECT_EQ(ApplyOverrideOrDiscard(bad, &b).message(), ApplyOverride(bad, &a).message());
  }
}

TEST(OverridesTest, APolicyChangeDropsWhatOnlyTheOldPolicyUsed) {
  Scenario s;
  s.mutable_recompute()->set_policy(SELECTIVE);
  s.mutable_recompute()->add_modules("core_attn");
  FieldPlaces places;
  std::vector<std::string> notes;
  ASSERT_TRUE(ApplyOverrides({"recompute.policy=FULL"}, &s, &places, &notes).ok());
  EXPECT_EQ(s.recompute().policy(), FULL);
  EXPECT_EQ(s.recompute().modules_size(), 0);
  EXPECT_EQ(notes, std::vector<std::string>{"--set recompute.policy=FULL clears "
                                            "recompute.modules, which only policy SELECTIVE uses"});
  EXPECT_EQ(places.Find("recompute.policy"), "--set recompute.policy=FULL");
  // FULL's method and layers go when the policy becomes SELECTIVE...
  s.mutable_recompute()->set_method(BLOCK);
  s.mutable_recompute()->set_num_layers(2);
  notes.clear();
  ASSERT_TRUE(ApplyOverrides({"recompute.policy=selective", "recompute.modules=moe"}, &s,
                             nullptr, &notes)
                  .ok());
  EXPECT_FALSE(s.recompute().has_method());
  EXPECT_FALSE(s.recompute().has_num_layers());
  EXPECT_EQ(notes.size(), 2u);
  // ...but what the command line sets itself stays, for Resolve to judge.
  ASSERT_TRUE(ApplyOverrides({"recompute.modules=moe", "recompute.policy=NONE"}, &s).ok());
  EXPECT_EQ(s.recompute().modules_size(), 1);
}

TEST(OverridesTest, AllocatorKindNoneDropsTheCachingSettings) {
  Scenario s;
  s.mutable_allocator()->set_expandable_segments(true);
  s.mutable_allocator()->set_max_split_size_mb(256);
  std::vector<std::string> notes;
  ASSERT_TRUE(ApplyOverrides({"allocator.kind=NONE"}, &s, nullptr, &notes).ok());
  EXPECT_EQ(s.allocator().kind(), Allocator::NONE);
  EXPECT_FALSE(s.allocator().has_expandable_segments());
  EXPECT_FALSE(s.allocator().has_max_split_size_mb());
  EXPECT_EQ(notes, (std::vector<std::string>{
                       "--set allocator.kind=NONE clears allocator.max_split_size_mb, which "
                       "only kind CACHING uses",
                       "--set allocator.kind=NONE clears allocator.expandable_segments, which "
                       "only kind CACHING uses"}));
  // A setting the command line gives itself stays, for Resolve to refuse.
  ASSERT_TRUE(
      ApplyOverrides({"allocator.kind=NONE", "allocator.expandable_segments=true"}, &s).ok());
  EXPECT_TRUE(s.allocator().expandable_segments());
  // Under CACHING nothing is dropped.
  s.mutable_allocator()->set_max_split_size_mb(256);
  ASSERT_TRUE(ApplyOverrides({"allocator.kind=CACHING"}, &s).ok());
  EXPECT_TRUE(s.allocator().has_max_split_size_mb());
}

}  // namespace
}  // namespace stepsim::graph
