// The CSV timeline (traces/timeline_csv.h) of the golden 1F1B run: a key per
// row, an end row per rank at the step's end, the op and step of each
// change, and a file pandas pivots.
#include "traces/timeline_csv.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "sim/engine.h"
#include "tests/test_util.h"

namespace stepsim::traces {
namespace {

std::vector<std::vector<std::string>> Rows(const std::string& csv) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(csv);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

sim::SimResult Golden() {
  const graph::Config c = testing::LoadScenario("pp4_1f1b_golden.textproto");
  StatusOr<sim::Schedule> schedule = sim::BuildSchedule(c);
  EXPECT_TRUE(schedule.ok());
  StatusOr<sim::SimResult> r = sim::Simulate(c, *schedule, sim::SimOptions{});
  EXPECT_TRUE(r.ok()) << r.status().message();
  return std::move(*r);
}

TEST(TimelineCsvTest, KeyedRowsWithOpsAndAnEndRowPerRank) {
  const sim::SimResult s = Golden();
  const auto rows = Rows(TimelineCsv(s));
  ASSERT_GT(rows.size(), 100u);
  // The key and what made the change, every category in bytes, the total.
  std::vector<std::string> header = {"rank", "seq", "time_us", "step", "op"};
  for (int k = 0; k < graph::kNumCategories; ++k) {
    header.push_back(graph::CategoryName(static_cast<graph::Category>(k)));
  }
  header.push_back("total");
  EXPECT_EQ(rows[0], header);
  const size_t total = header.size() - 1;
  std::set<std::pair<std::string, std::string>> keys;
  std::map<std::string, std::vector<std::string>> last;
  bool saw_fc2 = false;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    ASSERT_EQ(r.size(), header.size());
    EXPECT_TRUE(keys.insert({r[0], r[1]}).second) << "repeated key " << r[0] << "," << r[1];
    if (r[1] == "0") {
      EXPECT_EQ(r[4], "static state");
    }
    saw_fc2 = saw_fc2 || (r[3] == "BW0" && r[4] == "B L1.mlp.fc2" && r[0] == "1");
    last[r[0]] = r;
  }
  EXPECT_TRUE(saw_fc2);
  ASSERT_EQ(last.size(), 4u);
  for (const auto& [rank, r] : last) {
    EXPECT_EQ(r[2], "3300.000") << rank;  // (8 + 4 - 1) * 300 us
    EXPECT_EQ(r[4], "end") << rank;
    EXPECT_EQ(std::stoll(r[total]), sim::Total(s.ranks[std::stoi(rank)].static_bytes)) << rank;
  }
}

TEST(TimelineCsvTest, CoarseRowsKeepThePeakAndTheirKeys) {
  const sim::SimResult s = Golden();
  const auto rows = Rows(TimelineCsv(s, 1000));  // 1 ms windows
  std::map<std::string, int64_t> highest, count;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    EXPECT_EQ(std::stoll(r[1]), count[r[0]]++);  // numbered from 0 in each rank
    highest[r[0]] = std::max<int64_t>(highest[r[0]], std::stoll(r.back()));
  }
  for (const sim::RankRun& run : s.ranks) {
    EXPECT_EQ(highest[std::to_string(run.rank)], run.memory.peak.total) << run.rank;
    EXPECT_LE(count[std::to_string(run.rank)], 6);  // static, a row per window (4), end
  }
}

TEST(TimelineCsvTest, PandasPivotsIt) {
  const sim::SimResult s = Golden();
  const std::string path = "/tmp/stepsim_timeline_csv_test.csv";
  {
    std::ofstream out(path);
    WriteTimelineCsv(s, 0, out);
  }
  const std::string script =
      "import pandas as pd; df = pd.read_csv('" + path +
      "'); a = df.pivot(index='seq', columns='rank', values='total'); "
      "b = df.pivot(index=['time_us', 'seq'], columns='rank', values='total'); "
      "print(a.shape[1], int(a.max().max()), int(b.count().sum()) == len(df))";
  FILE* pipe = popen(("/usr/bin/python3 -c \"" + script + "\" 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[512] = {};
  const std::string out(buffer, std::fread(buffer, 1, sizeof buffer - 1, pipe));
  EXPECT_EQ(pclose(pipe), 0) << out;
  std::remove(path.c_str());
  int64_t highest = 0;
  for (const sim::RankRun& run : s.ranks) highest = std::max(highest, run.memory.peak.total);
  EXPECT_EQ(out, "4 " + std::to_string(highest) + " True\n");
}

}  // namespace
}  // namespace stepsim::traces
