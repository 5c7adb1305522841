// stepsim plot: the figure is written, and the highest memory it draws for
// each rank, and where it marks the peak, are the report's.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "report.pb.h"
#include "tests/e2e/run_cli.h"

namespace stepsim::testing {
namespace {

namespace fs = std::filesystem;

struct Drawn {
  int64_t rank, bytes;
  double peak_us;
};

// "rank 0: drew at most 1074979904 bytes, peak marked at 451.297 us" lines.
std::vector<Drawn> DrawnLines(const std::string& out) {
  std::vector<Drawn> drawn;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    long long rank = 0, bytes = 0;
    double us = 0;
    if (std::sscanf(line.c_str(), "rank %lld: drew at most %lld bytes, peak marked at %lf us",
                    &rank, &bytes, &us) == 3) {
      drawn.push_back({rank, bytes, us});
    }
  }
  return drawn;
}

// "rank 0: drew reserved at most 44040192 bytes" lines, by rank.
std::map<int64_t, int64_t> ReservedLines(const std::string& out) {
  std::map<int64_t, int64_t> drawn;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    long long rank = 0, bytes = 0;
    if (std::sscanf(line.c_str(), "rank %lld: drew reserved at most %lld bytes", &rank,
                    &bytes) == 2) {
      drawn[rank] = bytes;
    }
  }
  return drawn;
}

RunReport ReportOf(const std::string& scenario) {
  const CliResult r = RunCli("run " + scenario + " --report -");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  RunReport report;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok());
  return report;
}

class PlotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/stepsim_plot_test_XXXXXX";
    dir_ = mkdtemp(dir_template);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PlotTest, PngOfEveryRankDrawsTheReportedPeaks) {
  const std::string png = (dir_ / "memory.png").string();
  const CliResult r = RunCli("plot scenarios/pp4_tiny.textproto -o '" + png + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string image = Slurp(png);
  EXPECT_EQ(image.substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_GT(image.size(), 20'000u);
  const RunReport report = ReportOf("scenarios/pp4_tiny.textproto");
  const std::vector<Drawn> drawn = DrawnLines(r.out);
  ASSERT_EQ(drawn.size(), 4u) << r.out;  // PP 4: every rank
  for (const Drawn& d : drawn) {
    const RankReport& k = report.ranks(static_cast<int>(d.rank));
    EXPECT_EQ(d.bytes, k.peak_bytes()) << d.rank;
    EXPECT_NEAR(d.peak_us, k.peak_time_us(), 1e-3) << d.rank;
  }
  // The reserved line: at every rank at least the live peak, at most the
  // reserved peak (the figure keeps each window's highest live row), and
  // on pp4_tiny, whose reservation only grows, the reserved peak itself.
  const std::map<int64_t, int64_t> reserved = ReservedLines(r.out);
  ASSERT_EQ(reserved.size(), 4u) << r.out;
  for (const auto& [rank, bytes] : reserved) {
    const RankReport& k = report.ranks(static_cast<int>(rank));
    EXPECT_EQ(bytes, k.reserved_peak_bytes()) << rank;
    EXPECT_GE(bytes, k.peak_bytes()) << rank;
  }
  // Nothing else is left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

// Without a caching allocator there is no reserved line to draw.
TEST_F(PlotTest, NoReservedLineWithoutAnAllocator) {
  const std::string png = (dir_ / "bare.png").string();
  const CliResult r =
      RunCli("plot scenarios/pp4_tiny.textproto --set allocator.kind=NONE -o '" + png + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DrawnLines(r.out).size(), 4u) << r.out;
  EXPECT_TRUE(ReservedLines(r.out).empty()) << r.out;
}

TEST_F(PlotTest, SvgOfChosenRanks) {
  const std::string svg = (dir_ / "ranks.svg").string();
  const CliResult r = RunCli("plot scenarios/deepseek_v3.textproto --ranks 15,1 -o '" + svg + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string image = Slurp(svg);
  EXPECT_NE(image.find("<svg"), std::string::npos);
  const RunReport report = ReportOf("scenarios/deepseek_v3.textproto");
  const std::vector<Drawn> drawn = DrawnLines(r.out);
  ASSERT_EQ(drawn.size(), 2u) << r.out;
  EXPECT_EQ(drawn[0].rank, 1);
  EXPECT_EQ(drawn[1].rank, 15);
  for (const Drawn& d : drawn) {
    EXPECT_EQ(d.bytes, report.ranks(static_cast<int>(d.rank)).peak_bytes()) << d.rank;
  }
  // Same input, same bytes (no date, fixed ids).
  const std::string again = (dir_ / "again.svg").string();
  ASSERT_EQ(
      RunCli("plot scenarios/deepseek_v3.textproto --ranks 15,1 -o '" + again + "'").exit_code, 0);
  EXPECT_TRUE(Slurp(again) == image);
}

TEST_F(PlotTest, RefusesWhatItCannotDraw) {
  const CliResult pdf =
      RunCli("plot scenarios/pp4_tiny.textproto -o '" + (dir_ / "m.pdf").string() + "'");
  EXPECT_EQ(pdf.exit_code, 2);
  EXPECT_EQ(pdf.err, "stepsim: -o: " + (dir_ / "m.pdf").string() + " must end in .png or .svg\n");
  const CliResult rank = RunCli("plot scenarios/pp4_tiny.textproto --ranks 0,4 -o '" +
                                (dir_ / "m.png").string() + "'");
  EXPECT_EQ(rank.exit_code, 2);
  EXPECT_EQ(rank.err, "stepsim: --ranks: \"4\" is not a pipeline rank (0..3)\n");
  EXPECT_TRUE(fs::is_empty(dir_));
}

}  // namespace
}  // namespace stepsim::testing
