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
#include "sim/memory_stream.h"
#include "tests/test_util.h"
#include "tests/traces/reserved_run.h"

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

graph::Config GoldenConfig() { return testing::LoadScenario("pp4_1f1b_golden.textproto"); }

sim::SimResult Golden() {
  const graph::Config c = GoldenConfig();
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
    // (8 + 4 - 1) * 300 us, then rank 3's optimizer step (golden_test.cc).
    EXPECT_EQ(r[2], "3300.448") << rank;
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

// The reserved column holds the allocator's replay, row by row, as worked
// out by hand in tests/traces/reserved_run.h; two changes at 5 us reserve
// differently, so it follows changes, not instants.
TEST(TimelineCsvTest, ReservedColumnFromTheAllocatorReplay) {
  const sim::SimResult s = testing::ReservedRun();
  const std::vector<sim::AllocatorRun> allocators = testing::ReplayedReserved(s);
  ASSERT_EQ(allocators.size(), 1u);
  const auto rows = Rows(TimelineCsv(s, 0, allocators));
  ASSERT_EQ(rows.size(), 11u);  // header, static, 8 changes, end
  ASSERT_EQ(rows[0].back(), "reserved");
  ASSERT_EQ(rows[0][rows[0].size() - 2], "total");
  std::vector<int64_t> expected = testing::ReservedByHand();
  expected.push_back(expected.back());  // the end row
  const int64_t M = testing::kMiB;
  const std::vector<int64_t> totals = {1000, 1000 + M + 1, 1000 + 5 * M + 1, 1000 + 15 * M + 1,
                                       1000 + 14 * M, 1000 + 30 * M, 1000 + 14 * M,
                                       1000 + 4 * M, 1000, 1000};
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    ASSERT_EQ(r.size(), rows[0].size());
    EXPECT_EQ(std::stoll(r[r.size() - 2]), totals[i - 1]) << "row " << i;
    EXPECT_EQ(std::stoll(r.back()), expected[i - 1]) << "row " << i << " at " << r[2] << " us";
  }
  EXPECT_EQ(rows[5][2], "5.000");
  EXPECT_EQ(rows[6][2], "5.000");
  // Without an allocator (allocator.kind NONE) there is no such column.
  const auto bare = Rows(TimelineCsv(s));
  EXPECT_EQ(bare[0].back(), "total");
  EXPECT_EQ(bare[1].size(), bare[0].size());
}

// On a simulated run, reserved covers the live bytes on every row and its
// highest row is the allocator's reserved peak; coarse rows keep the key.
TEST(TimelineCsvTest, ReservedCoversTotalAndReachesThePeak) {
  const graph::Config c = GoldenConfig();
  const sim::SimResult s = Golden();
  StatusOr<std::vector<sim::AllocatorRun>> allocators = sim::ReplayAllocators(c, s);
  ASSERT_TRUE(allocators.ok()) << allocators.status().message();
  ASSERT_EQ(allocators->size(), s.ranks.size());
  for (double resolution : {0.0, 1000.0}) {
    const auto rows = Rows(TimelineCsv(s, resolution, *allocators));
    ASSERT_EQ(rows[0].back(), "reserved");
    std::map<std::string, int64_t> highest;
    std::set<std::pair<std::string, std::string>> keys;
    for (size_t i = 1; i < rows.size(); ++i) {
      const auto& r = rows[i];
      ASSERT_EQ(r.size(), rows[0].size());
      EXPECT_TRUE(keys.insert({r[0], r[1]}).second);
      EXPECT_GE(std::stoll(r.back()), std::stoll(r[r.size() - 2])) << "row " << i;
      highest[r[0]] = std::max<int64_t>(highest[r[0]], std::stoll(r.back()));
    }
    if (resolution > 0) continue;
    for (const sim::AllocatorRun& a : *allocators) {
      EXPECT_EQ(highest[std::to_string(a.rank)], a.reserved_peak) << a.rank;
    }
  }
}

TEST(TimelineCsvTest, PandasPivotsIt) {
  const sim::SimResult s = Golden();
  StatusOr<std::vector<sim::AllocatorRun>> allocators = sim::ReplayAllocators(GoldenConfig(), s);
  ASSERT_TRUE(allocators.ok()) << allocators.status().message();
  const std::string path = "/tmp/stepsim_timeline_csv_test.csv";
  {
    std::ofstream out(path);
    WriteTimelineCsv(s, 0, out, *allocators);
  }
  const std::string script =
      "import pandas as pd; df = pd.read_csv('" + path +
      "'); a = df.pivot(index='seq', columns='rank', values='total'); "
      "b = df.pivot(index=['time_us', 'seq'], columns='rank', values='total'); "
      "c = df.pivot(index='seq', columns='rank', values='reserved'); "
      "print(a.shape[1], int(a.max().max()), int(b.count().sum()) == len(df), "
      "int(c.max().max()))";
  FILE* pipe = popen(("/usr/bin/python3 -c \"" + script + "\" 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[512] = {};
  const std::string out(buffer, std::fread(buffer, 1, sizeof buffer - 1, pipe));
  EXPECT_EQ(pclose(pipe), 0) << out;
  std::remove(path.c_str());
  int64_t highest = 0;
  for (const sim::RankRun& run : s.ranks) highest = std::max(highest, run.memory.peak.total);
  int64_t reserved = 0;
  for (const sim::AllocatorRun& a : *allocators) reserved = std::max(reserved, a.reserved_peak);
  EXPECT_EQ(out, "4 " + std::to_string(highest) + " True " + std::to_string(reserved) + "\n");
}

}  // namespace
}  // namespace stepsim::traces
