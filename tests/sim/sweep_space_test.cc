// The --vary space: parsing, checking against the scenario, enumeration
// order, and shards.
#include "sim/sweep_space.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/test_util.h"

namespace stepsim::sim {
namespace {

Scenario Tiny() { return testing::ReadScenario("pp4_tiny.textproto"); }

TEST(SweepSpaceTest, ParsesPathAndValues) {
  StatusOr<Vary> v = ParseVary(" parallel.pp = 2, 4 ,8");
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->path, "parallel.pp");
  EXPECT_EQ(v->values, (std::vector<std::string>{"2", "4", "8"}));
}

TEST(SweepSpaceTest, RefusesMalformedVaries) {
  EXPECT_EQ(ParseVary("parallel.pp").status().message(),
            "--vary \"parallel.pp\": expected PATH=V1,V2,...");
  EXPECT_EQ(ParseVary("=1,2").status().message(), "--vary \"=1,2\": the field path is empty");
  EXPECT_EQ(ParseVary("parallel.pp=").status().message(),
            "--vary parallel.pp: no values (expected V1,V2,...)");
  EXPECT_EQ(ParseVary("parallel.pp=2,,4").status().message(),
            "--vary parallel.pp: an empty value in \"2,,4\"");
  EXPECT_EQ(ParseVary("parallel.pp=2,4,2").status().message(),
            "--vary parallel.pp: \"2\" is given twice");
}

TEST(SweepSpaceTest, NamesUnknownPathsAndValues) {
  std::vector<Vary> varies = {{"parallel.ppp", {"2"}},
                              {"schedule.kind", {"ONE_F_ONE_B", "TWO_F_TWO_B"}},
                              {"parallel.tp", {"two"}}};
  const Status s = CheckVaries(Tiny(), &varies);
  ASSERT_EQ(s.code(), StatusCode::kInvalidInput);
  const std::string& m = s.message();
  EXPECT_NE(m.find("--vary parallel.ppp: unknown field \"ppp\""), std::string::npos) << m;
  EXPECT_NE(m.find("--vary schedule.kind: unknown value \"TWO_F_TWO_B\""), std::string::npos) << m;
  EXPECT_NE(m.find("--vary parallel.tp: \"two\" is not an integer"), std::string::npos) << m;
  std::vector<Vary> twice = {{"parallel.pp", {"2"}}, {"parallel.pp", {"4"}}};
  EXPECT_EQ(CheckVaries(Tiny(), &twice).message(), "--vary parallel.pp: the path is varied twice");
}

TEST(SweepSpaceTest, RepeatedFieldsTakePlusJoinedItems) {
  StatusOr<Vary> v = ParseVary("recompute.modules=layernorm+mla_up_proj,core_attn");
  ASSERT_TRUE(v.ok());
  std::vector<Vary> varies = {*v};
  ASSERT_TRUE(CheckVaries(Tiny(), &varies).ok());
  EXPECT_EQ(varies[0].values, (std::vector<std::string>{"layernorm,mla_up_proj", "core_attn"}));
  EXPECT_EQ(DescribeVary(varies[0]), "recompute.modules=layernorm+mla_up_proj,core_attn");
  StatusOr<Scenario> s = ApplyPoint(Tiny(), PointAt(varies, 0));
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->recompute().modules_size(), 2);
  EXPECT_EQ(s->recompute().modules(1), "mla_up_proj");
}

TEST(SweepSpaceTest, TheLastVaryVariesFastest) {
  const std::vector<Vary> varies = {{"parallel.pp", {"2", "4"}}, {"zero.stage", {"0", "1", "2"}}};
  ASSERT_EQ(*CountPoints(varies), 6);
  // Index 4 = 1 * 3 + 1: the second pp, the second stage.
  EXPECT_EQ(PointAt(varies, 4), (Point{{"parallel.pp", "4"}, {"zero.stage", "1"}}));
  EXPECT_EQ(PointAt(varies, 0), (Point{{"parallel.pp", "2"}, {"zero.stage", "0"}}));
  EXPECT_EQ(PointAt(varies, 5), (Point{{"parallel.pp", "4"}, {"zero.stage", "2"}}));
}

TEST(SweepSpaceTest, RefusesASpaceTooLarge) {
  std::vector<std::string> thousand;
  for (int i = 0; i < 1000; ++i) thousand.push_back(std::to_string(i));
  const std::vector<Vary> varies(3, Vary{"batch.seq_len", thousand});  // 1e9 points
  EXPECT_EQ(CountPoints(varies).status().code(), StatusCode::kInvalidInput);
}

TEST(SweepSpaceTest, ShardsAreNamedAndRefusedOutOfRange) {
  StatusOr<Shard> s = ParseShard("3/8");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->k, 3);
  EXPECT_EQ(s->n, 8);
  EXPECT_EQ(ShardName(*s), "3/8");
  EXPECT_EQ(ParseShard("9/8").status().message(), "--shard \"9/8\": shard 9 is out of range 1..8");
  EXPECT_EQ(ParseShard("0/8").status().message(), "--shard \"0/8\": shard 0 is out of range 1..8");
  EXPECT_EQ(ParseShard("2/0").status().message(), "--shard \"2/0\": N must be between 1 and 100000");
  EXPECT_EQ(ParseShard("a/2").status().message(),
            "--shard \"a/2\": K and N must be whole numbers (K/N, e.g. 2/8)");
  EXPECT_EQ(ParseShard("2").status().code(), StatusCode::kInvalidInput);
}

TEST(SweepSpaceTest, ShardsCoverEveryIndexOnce) {
  // 10 items over 4 shards: sizes 3, 3, 2, 2 (earlier shards larger).
  const std::vector<std::pair<int64_t, int64_t>> expected = {{0, 3}, {3, 6}, {6, 8}, {8, 10}};
  for (int64_t k = 1; k <= 4; ++k) EXPECT_EQ(ShardRange({k, 4}, 10), expected[k - 1]);
  for (int64_t n : {1, 3, 7, 10}) {
    std::set<int64_t> seen;
    for (int64_t k = 1; k <= n; ++k) {
      const auto [b, e] = ShardRange({k, n}, 10);
      for (int64_t i = b; i < e; ++i) EXPECT_TRUE(seen.insert(i).second);
    }
    EXPECT_EQ(seen.size(), 10u);
  }
}

}  // namespace
}  // namespace stepsim::sim
