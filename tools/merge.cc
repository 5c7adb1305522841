// stepsim merge: shard files of one sweep or fit back into the whole result.
#include <iostream>

#include "graph/scenario_text.h"
#include "sim/sweep_rows.h"
#include "tools/sweep_commands.h"

namespace stepsim::tools {

int RunMergeCommand(const std::vector<std::string>& files, const SearchOutputs& outputs) {
  std::vector<std::pair<std::string, SweepReport>> shards;
  for (const std::string& file : files) {
    StatusOr<std::string> text = ReadFile(file, std::uintmax_t{1} << 30);
    if (!text.ok()) return Report(text.status());
    SweepReport report;
    if (Status s = graph::ParseTextMessage(*text, file, &report); !s.ok()) return Report(s);
    if (report.command() != "sweep" && report.command() != "fit") {
      return Report(Status::Invalid(file + ": not the result of stepsim sweep or fit "
                                    "(command \"" + report.command() + "\")"));
    }
    shards.emplace_back(file, std::move(report));
  }
  StatusOr<SweepReport> merged = sim::MergeShards(shards);
  if (!merged.ok()) return Report(merged.status());
  SearchOutputs o = outputs;
  if (merged->command() == "fit" && o.top < 0) o.top = 10;
  const std::string title = merged->scenario() + ": " + merged->command() + " of " +
                            std::to_string(merged->total()) + " configurations, merged from " +
                            std::to_string(files.size()) + " shards";
  if (int code = WriteSearchOutputs(*merged, o, title); code != kExitOk) return code;
  return SearchExitCode(*merged);
}

}  // namespace stepsim::tools
