// libFuzzer target: `stepsim merge` shard files (SweepReport in protobuf
// text, what `sweep --out` and `fit --out` write). An input is up to four
// shard files separated by lines "%%". Each must be refused with its name
// and place or read; what reads is merged as merge does, and the merged
// result (or, when merging refuses, each shard) is written as merge writes
// it: the sweep or fit table, CSV, JSON and protobuf text, which must read
// back the same.
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/scenario_text.h"
#include "sim/sweep_rows.h"
#include "tests/fuzz/fuzz_util.h"
#include "traces/json.h"
#include "traces/sweep_table.h"

namespace {

// What merge prints and writes of a report; its --out form must read back.
void Write(const stepsim::SweepReport& report) {
  (void)(report.command() == "fit" ? stepsim::traces::FormatFitTable(report, 10)
                                   : stepsim::traces::FormatSweepTable(report, -1));
  (void)stepsim::traces::SweepCsv(report);
  (void)stepsim::traces::ToJson(report);
  std::string text;
  google::protobuf::TextFormat::Printer().PrintToString(report, &text);
  stepsim::SweepReport back;
  const stepsim::Status read = stepsim::graph::ParseTextMessage(text, "out.textproto", &back);
  google::protobuf::util::DefaultFieldComparator numbers;
  numbers.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer same;
  same.set_field_comparator(&numbers);
  if (!read.ok() || !same.Compare(report, back)) {
    std::fprintf(stderr, "merge's --out does not read back: %s\n%s\n", read.message().c_str(),
                 text.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stepsim::fuzz::SetInput(data, size);
  namespace f = stepsim::fuzz;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<std::string, stepsim::SweepReport>> shards;
  while (shards.size() < 4) {
    const size_t split = rest.find("\n%%\n");
    const std::string name = "shard" + std::to_string(shards.size() + 1) + ".textproto";
    stepsim::SweepReport report;
    const stepsim::Status read =
        stepsim::graph::ParseTextMessage(rest.substr(0, split), name, &report);
    f::CheckNotFailed(read, "ParseTextMessage");
    f::CheckLocated(read, name, "ParseTextMessage", /*whole_file=*/true);
    if (!read.ok()) return 0;
    if (report.command() != "sweep" && report.command() != "fit") return 0;  // merge refuses it
    shards.emplace_back(name, std::move(report));
    if (split == std::string_view::npos) break;
    rest.remove_prefix(split + 4);
  }
  stepsim::StatusOr<stepsim::SweepReport> merged = stepsim::sim::MergeShards(shards);
  f::CheckNotFailed(merged.status(), "MergeShards");
  if (merged.ok()) {
    if (merged->configs_size() != merged->total()) {
      std::fprintf(stderr, "merged %d configurations of %lld\n", merged->configs_size(),
                   static_cast<long long>(merged->total()));
      std::abort();
    }
    Write(*merged);
  } else {
    for (const auto& [name, shard] : shards) Write(shard);
  }
  return 0;
}
