#include "traces/json.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "report.pb.h"

namespace stepsim::traces {
namespace {

TEST(JsonTest, UsesProtoNamesAndSortsMapKeys) {
  ParamsReport report;
  report.set_total_params(671026404352);
  StageParamsReport* stage = report.add_stages();
  auto& modules = *stage->mutable_device()->mutable_modules();
  // Insert in an order that is neither sorted nor reverse-sorted.
  for (const char* name : {"norms", "embedding", "moe", "head", "mla"}) modules[name] = 1;
  const std::string json = ToJson(report);
  EXPECT_NE(json.find("\"total_params\": \"671026404352\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"pp_rank\": \"0\""), std::string::npos);  // zeros are printed
  size_t last = 0;
  for (const char* name : {"embedding", "head", "mla", "moe", "norms"}) {
    const size_t at = json.find("\"" + std::string(name) + "\"");
    ASSERT_NE(at, std::string::npos);
    EXPECT_GT(at, last) << name;
    last = at;
  }
  // It round-trips.
  ParamsReport back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok());
  EXPECT_EQ(back.total_params(), 671026404352);
  EXPECT_EQ(back.stages(0).device().modules().size(), 5u);
}

// A report whose configurations carry maps, strings that need escaping (a
// newline, a quote) and numbers of every kind: converted element by element
// it must give exactly the bytes of one conversion of the whole.
SweepReport ManyConfigs(int n) {
  SweepReport report;
  report.set_scenario("deepseek_v3");
  report.set_command("fit");
  report.add_space("parallel.pp=1,2");
  report.add_space("odd \"quoted\"\nline");
  report.set_total(n);
  for (int i = 0; i < n; ++i) {
    SweepConfig* c = report.add_configs();
    c->set_index(i);
    (*c->mutable_overrides())["parallel.pp"] = std::to_string(1 << (i % 5));
    (*c->mutable_overrides())["a.first"] = "x";
    c->set_valid(i % 3 != 0);
    c->set_error(i % 3 == 0 ? "parallel.ep: 7 does not divide\n\"256\"" : "");
    c->set_fits(i % 2 == 0);
    c->set_max_peak_bytes(int64_t{81114826816} + i);
    c->set_step_time_us(22337777.54 / (i + 1));
    c->set_bubble_fraction(0.1 * i);
    c->set_min_headroom_bytes(-i);
  }
  (*report.mutable_reasons())["fits"] = n / 2;
  (*report.mutable_reasons())["does not fit (simulated)"] = n - n / 2;
  return report;
}

TEST(JsonTest, ElementByElementGivesTheBytesOfTheWhole) {
  for (int n : {1, 2, 3, 10}) {
    const SweepReport report = ManyConfigs(n);
    const std::string whole = ToJson(report);
    for (int threads : {1, 2, 3, 16}) {
      EXPECT_EQ(ToJsonByElement(report, "configs", threads), whole) << n << " configs, "
                                                                    << threads << " threads";
    }
  }
}

TEST(JsonTest, ElementByElementOfNothingOrOfAnotherFieldIsTheWhole) {
  SweepReport empty = ManyConfigs(0);
  EXPECT_EQ(ToJsonByElement(empty, "configs", 2), ToJson(empty));
  EXPECT_NE(ToJson(empty).find("\"configs\": []"), std::string::npos);
  const SweepReport report = ManyConfigs(3);
  // Not a repeated message field, or no field at all: converted whole.
  for (const char* field : {"space", "reasons", "scenario", "nothing"}) {
    EXPECT_EQ(ToJsonByElement(report, field, 2), ToJson(report)) << field;
  }
}

}  // namespace
}  // namespace stepsim::traces
