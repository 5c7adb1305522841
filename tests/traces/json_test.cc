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

}  // namespace
}  // namespace stepsim::traces
