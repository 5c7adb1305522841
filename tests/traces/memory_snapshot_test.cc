// The memory snapshot: pickle bytes written by hand from the opcode table
// of Python's Lib/pickle.py, then a real snapshot read by torch's own code
// (Debian's python3-torch) whose segment totals must equal the report's.
#include "traces/memory_snapshot.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <sstream>

#include "report.pb.h"
#include "tests/e2e/run_cli.h"

namespace stepsim::traces {
namespace {

using stepsim::testing::CliResult;
using stepsim::testing::RunCli;

std::string Pickled(const std::function<void(PickleWriter&)>& write) {
  std::ostringstream out;
  PickleWriter p(out);
  write(p);
  p.Stop();
  return out.str();
}

// {"a": 1}: PROTO 2, EMPTY_DICT, MARK, BINUNICODE len=1 "a", BININT1 1,
// SETITEMS, STOP.
TEST(PickleWriterTest, ADictOfOneInt) {
  const std::string bytes = Pickled([](PickleWriter& p) {
    p.BeginDict();
    p.Str("a");
    p.Int(1);
    p.EndDict();
  });
  EXPECT_EQ(bytes, std::string("\x80\x02}(X\x01\x00\x00\x00" "aK\x01u.", 14));
}

// Integers take the shortest opcode: BININT1 < 256, BININT2 < 65536,
// BININT (4-byte signed), else LONG1 with the fewest two's-complement bytes:
// 2^31 needs 5 (00 00 00 80 00), -2^31-1 needs 5 (ff ff ff 7f ff).
TEST(PickleWriterTest, IntegersTakeTheShortestOpcode) {
  const std::string bytes = Pickled([](PickleWriter& p) {
    p.BeginList();
    p.Int(255);
    p.Int(256);
    p.Int(-1);
    p.Int(int64_t{1} << 31);
    p.Int(-(int64_t{1} << 31) - 1);
    p.EndList();
  });
  const std::string expected(
      "\x80\x02]("
      "K\xff"
      "M\x00\x01"
      "J\xff\xff\xff\xff"
      "\x8a\x05\x00\x00\x00\x80\x00"
      "\x8a\x05\xff\xff\xff\x7f\xff"
      "e.",
      2 + 2 + 2 + 3 + 5 + 7 + 7 + 2);
  EXPECT_EQ(bytes, expected);
}

// BINFLOAT is big-endian: 1.0 = 3f f0 00 .. 00. Booleans, None, a tuple.
TEST(PickleWriterTest, FloatsBooleansNoneAndTuples) {
  const std::string bytes = Pickled([](PickleWriter& p) {
    p.BeginList();
    p.Float(1.0);
    p.Bool(true);
    p.Bool(false);
    p.None();
    p.Int(0);
    p.Int(0);
    p.Tuple2();
    p.EndList();
  });
  const std::string expected(
      "\x80\x02](G\x3f\xf0\x00\x00\x00\x00\x00\x00\x88\x89NK\x00K\x00\x86"
      "e.",
      23);
  EXPECT_EQ(bytes, expected);
}

// Lists go in batches of 1,000 (APPENDS then a new MARK), so readers that
// spread a batch onto their stack (MemoryViz.js) stay within bounds.
TEST(PickleWriterTest, LongListsAreBatched) {
  const std::string bytes = Pickled([](PickleWriter& p) {
    p.BeginList();
    for (int i = 0; i < 2500; ++i) p.Int(7);
    p.EndList();
  });
  // 2 header + "](" + 2500 * "K\x07" + two "e(" batch breaks + "e" + ".".
  EXPECT_EQ(bytes.size(), 2u + 2 + 2500 * 2 + 2 * 2 + 1 + 1);
  EXPECT_EQ(bytes.substr(4 + 1000 * 2, 2), "e(");
}

// torch 1.13's torch.cuda._memory_viz reads the snapshot of `rank` of the
// tiny scenario; its segments add up to the report's reserved peak, and
// the allocated blocks' requests to the live bytes then.
void ExpectTorchReadsTheSnapshot(int rank, const std::string& flags) {
  char dir_template[] = "/tmp/stepsim_snapshot_XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const CliResult run = RunCli("run scenarios/pp4_tiny.textproto --memory-snapshot " + dir +
                               "/s.pickle --snapshot-rank " + std::to_string(rank) +
                               " --report " + dir + "/report.json " + flags);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  stepsim::testing::Slurp(dir + "/report.json"), &report)
                  .ok());
  const std::string command = "/usr/bin/python3 '" + std::string(STEPSIM_SOURCE_DIR) +
                              "/tools/memory_snapshot_check.py' '" + dir + "/s.pickle' >" + dir +
                              "/check.json 2>" + dir + "/check.err";
  const int status = std::system(command.c_str());
  const std::string check = stepsim::testing::Slurp(dir + "/check.json");
  const std::string err = stepsim::testing::Slurp(dir + "/check.err");
  std::system(("rm -rf '" + dir + "'").c_str());
  ASSERT_EQ(status, 0) << "python3-torch missing? run tools/setup.sh\n" << err;
  const RankReport& k = report.ranks(rank);
  EXPECT_NE(check.find("\"reserved_bytes\": " + std::to_string(k.reserved_peak_bytes())),
            std::string::npos)
      << check;
  EXPECT_NE(check.find("\"requested_bytes\": " + std::to_string(k.reserved_peak_live_bytes())),
            std::string::npos)
      << check;
  EXPECT_EQ(check.find("\"trace_entries\": 0"), std::string::npos) << check;
  // Walking the trace back from the segments (as the viewer draws earlier
  // states) meets every block and segment and ends empty.
  EXPECT_NE(check.find("\"rewinds\": true"), std::string::npos) << check;
}

TEST(MemorySnapshotTest, TorchReadsItAndItsTotalsMatchTheReport) {
  ExpectTorchReadsTheSnapshot(1, "");
}

// Pages mapped into expandable segments (segment_map events).
TEST(MemorySnapshotTest, TorchReadsExpandableSegments) {
  ExpectTorchReadsTheSnapshot(2, "--set allocator.expandable_segments=true");
}

TEST(MemorySnapshotTest, RefusesARankOutsideThePipelineAndKindNone) {
  CliResult r = RunCli("run scenarios/pp4_tiny.textproto --memory-snapshot /dev/null "
                       "--snapshot-rank 4");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "stepsim: --snapshot-rank: 4 is not a pipeline rank (0..3)\n");
  r = RunCli("run scenarios/pp4_tiny.textproto --memory-snapshot /dev/null "
             "--set allocator.kind=NONE");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "stepsim: --memory-snapshot: needs allocator.kind CACHING\n");
  r = RunCli("run scenarios/pp4_tiny.textproto --snapshot-rank 1");
  EXPECT_EQ(r.exit_code, 2);  // CLI11: --snapshot-rank needs --memory-snapshot
}

}  // namespace
}  // namespace stepsim::traces
